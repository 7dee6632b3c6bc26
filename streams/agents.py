"""Thin agents: decode each message, apply it to the customer's state, dead-letter the rest.

One agent per event topic, concurrency 1 (faust-streaming can commit past unprocessed
messages with more), at-least-once; the state step itself is idempotent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson

from churnstream.models.customer import CustomerState, apply_event
from churnstream.schemas.decoding import decode_event
from churnstream.schemas.errors import InvalidEvent
from churnstream.schemas.records import DeadLetter
from churnstream.streams.app import Wiring

log = logging.getLogger(__name__)


def load_state(wiring: Wiring, customer_id: str) -> CustomerState:
    raw = wiring.state.get(customer_id.encode())
    return CustomerState.from_dict(orjson.loads(raw)) if raw else CustomerState.new(customer_id)


def store_state(wiring: Wiring, state: CustomerState) -> None:
    wiring.state[state.customer_id.encode()] = orjson.dumps(state.to_dict())


async def send_dead_letter(wiring: Wiring, message: Any, code: str, reason: str) -> None:
    ts = datetime.fromtimestamp(message.timestamp, tz=UTC) if message.timestamp else None
    record = DeadLetter.from_message(
        message.value,
        key=message.key,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        code=code,
        reason=reason,
        message_ts=ts,
    )
    await wiring.dead_letter.send(key=message.key, value=record.model_dump_json().encode())
    wiring.metrics.events_invalid.labels(reason=code).inc()
    wiring.metrics.dead_letters.inc()


async def handle_message(wiring: Wiring, event_type: str, message: Any) -> None:
    """Process one raw message; never raises for anything the message contains."""
    metrics = wiring.metrics
    metrics.events_consumed.labels(type=event_type).inc()
    started = time.perf_counter()
    try:
        event = decode_event(
            message.value,
            key=message.key,
            topic_type=event_type,
            max_bytes=wiring.settings.max_message_bytes,
            rating_labels=wiring.settings.rating_labels,
        )
    except InvalidEvent as exc:
        await send_dead_letter(wiring, message, exc.code, exc.reason)
        return
    try:
        state = load_state(wiring, event.customer_id)
        if apply_event(state, event, (message.topic, message.partition, message.offset)):
            store_state(wiring, state)
            metrics.events_processed.labels(type=event_type).inc()
        else:
            metrics.events_duplicate.labels(type=event_type).inc()
    except Exception as exc:  # one bad message must not stop the worker
        log.exception(
            "processing %s:%s@%s failed", message.topic, message.partition, message.offset
        )
        await send_dead_letter(wiring, message, "processing_error", f"{type(exc).__name__}: {exc}")
        return
    metrics.processing_seconds.labels(type=event_type).observe(time.perf_counter() - started)


def register(wiring: Wiring) -> None:
    """Create one agent per event topic on the wiring's app."""
    for event_type, topic in wiring.event_topics.items():
        _register_one(wiring, event_type, topic)


def _register_one(wiring: Wiring, event_type: str, topic: Any) -> None:
    async def consume(stream: AsyncIterator[Any]) -> None:
        async for record in stream.events():  # type: ignore[attr-defined]
            await handle_message(wiring, event_type, record.message)

    consume.__name__ = f"{event_type}_events"
    consume.__qualname__ = consume.__name__
    wiring.app.agent(topic, name=f"churnstream.{event_type}-events", concurrency=1)(consume)
