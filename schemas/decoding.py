"""Turn one Kafka message into an event, or an `InvalidEvent` that says why not.

>>> raw = b'{"event_id":"e1","customer_id":"c1","type":"login","ts":"2025-01-01T00:00:00Z"}'
>>> decode_event(raw, key=b"c1", topic_type="login").customer_id
'c1'
>>> decode_event(b'{"event_id":"e1"', key=None, topic_type="login")
Traceback (most recent call last):
...
churnstream.schemas.errors.InvalidEvent: bad_json: not valid JSON: unexpected end of data: line 1 column 17 (char 16)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import ValidationError

from churnstream.schemas.errors import InvalidEvent
from churnstream.schemas.events import EVENT_ADAPTER, Event

DEFAULT_MAX_BYTES = 256 * 1024


def describe_validation_error(error: ValidationError, limit: int = 5) -> str:
    """A one-line, readable summary of a pydantic error: `field: message; ...`."""
    parts = []
    for item in error.errors()[:limit]:
        # The union's tag appears as the first location element; it says nothing to people.
        loc = [str(p) for p in item["loc"] if p not in EVENT_ADAPTER_TAGS]
        where = ".".join(loc) or "event"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


EVENT_ADAPTER_TAGS = frozenset({"login", "usage", "ticket", "survey", "subscription"})


def decode_event(
    payload: bytes | None,
    *,
    key: bytes | None,
    topic_type: str | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    rating_labels: Mapping[str, Mapping[str, float]] | None = None,
) -> Event:
    """Decode and validate `payload` read from the topic of `topic_type` with `key`.

    Raises `InvalidEvent` for: a payload over `max_bytes`; invalid UTF-8 or JSON; JSON that is
    not an object; a schema violation; a `type` that is not the topic's; a key that is not the
    event's `customer_id` (it would sit in the wrong partition). `key=None` skips that check.
    """
    if payload is None:
        raise InvalidEvent("bad_json", "empty message (no value)")
    if len(payload) > max_bytes:
        raise InvalidEvent("oversize", f"{len(payload)} bytes is over the {max_bytes}-byte limit")
    try:
        data: Any = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("bad_json", f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidEvent("not_object", f"a JSON {type(data).__name__} is not an event object")
    if topic_type is not None and data.get("type") != topic_type:
        got = data.get("type")
        shown = repr(got)[:40] if got is not None else "no type"
        raise InvalidEvent("wrong_topic", f"{shown} on the {topic_type} topic")
    context = {"rating_labels": rating_labels} if rating_labels else None
    try:
        event = EVENT_ADAPTER.validate_python(data, context=context)
    except ValidationError as exc:
        raise InvalidEvent("schema", describe_validation_error(exc)) from None
    if key is not None and key != event.customer_id.encode():
        raise InvalidEvent(
            "key_mismatch",
            f"message key {key[:60]!r} is not the event's customer_id {event.customer_id[:60]!r}",
        )
    return event
