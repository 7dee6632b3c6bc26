"""Write event objects to the event topics (kafka-python) or to a JSON Lines file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import orjson
from kafka import KafkaProducer

from churnstream.streams.settings import Settings


def make_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": f"{settings.app_id}-producer",
        "acks": "all",
        "linger_ms": 20,
        "batch_size": 256 * 1024,
        "compression_type": None,
        "max_request_size": 2 * 1024 * 1024,
        **settings.kafka_python_security(),
    }
    options.update(overrides)
    return KafkaProducer(**options)


def produce_events(
    settings: Settings, events: Iterable[dict[str, Any]], producer: KafkaProducer | None = None
) -> int:
    """Send each event to its type's topic keyed by customer_id; returns how many were sent."""
    own = producer is None
    producer = producer or make_producer(settings)
    topics = settings.event_topics()
    sent = 0
    try:
        for event in events:
            producer.send(
                topics[event["type"]], key=event["customer_id"].encode(), value=orjson.dumps(event)
            )
            sent += 1
        producer.flush()
    finally:
        if own:
            producer.close()
    return sent


def write_jsonl(events: Iterable[dict[str, Any]], out: IO[bytes]) -> int:
    n = 0
    for event in events:
        out.write(orjson.dumps(event) + b"\n")
        n += 1
    return n


def read_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    with path.open("rb") as f:
        for line in f:
            if line.strip():
                yield orjson.loads(line)
