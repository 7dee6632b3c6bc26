"""A corpus of malformed messages, each with the error code the worker must give it.

Used by the integration tests, the fuzz run and the demo to prove that bad input is
dead-lettered with a reason and never stops the worker.

>>> items = malformed_messages(count=20, seed=3)
>>> len(items), sorted({m.expected_code for m in items}) == sorted(EXPECTED_CODES)
(20, True)
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from churnstream.schemas.events import EVENT_TYPES


@dataclass(frozen=True, slots=True)
class Malformed:
    topic_type: str  # the event topic it is written to
    key: bytes
    value: bytes
    expected_code: str
    what: str


def _valid(i: int, etype: str = "login") -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": f"bad-{i}",
        "customer_id": f"cus_bad_{i % 7}",
        "type": etype,
        "ts": "2025-02-01T10:00:00Z",
    }
    extra = {
        "login": {},
        "usage": {"feature": "api"},
        "ticket": {"ticket_id": "t1", "status": "opened"},
        "survey": {"kind": "nps", "score": 7},
        "subscription": {"action": "started", "plan": "starter", "mrr": 10},
    }[etype]
    return {**base, **extra}


def _dump(obj: Any) -> bytes:
    return orjson.dumps(obj)


_BUILDERS: list[tuple[str, str, Callable[[int, random.Random], tuple[str, bytes]]]] = [
    ("bad_json", "invalid UTF-8", lambda i, r: ("login", b'{"event_id": "\xff\xfe"}')),
    ("bad_json", "truncated JSON", lambda i, r: ("usage", _dump(_valid(i, "usage"))[:-5])),
    ("bad_json", "empty value", lambda i, r: ("login", b"")),
    ("not_object", "JSON array", lambda i, r: ("login", b"[1, 2, 3]")),
    ("not_object", "JSON string", lambda i, r: ("survey", b'"hello"')),
    (
        "schema",
        "missing customer_id",
        lambda i, r: ("login", _dump({k: v for k, v in _valid(i).items() if k != "customer_id"})),
    ),
    (
        "schema",
        "naive timestamp",
        lambda i, r: ("login", _dump({**_valid(i), "ts": "2025-02-01T10:00:00"})),
    ),
    (
        "schema",
        "timestamp as number",
        lambda i, r: ("login", _dump({**_valid(i), "ts": 1738404000})),
    ),
    (
        "schema",
        "negative quantity",
        lambda i, r: ("usage", _dump({**_valid(i, "usage"), "quantity": -3})),
    ),
    (
        "schema",
        "absurd quantity",
        lambda i, r: ("usage", _dump({**_valid(i, "usage"), "quantity": 1e300})),
    ),
    (
        "schema",
        "nps out of range",
        lambda i, r: ("survey", _dump({**_valid(i, "survey"), "score": 11})),
    ),
    (
        "schema",
        "unknown rating label",
        lambda i, r: (
            "survey",
            _dump({**_valid(i, "survey"), "score": None, "rating_label": "meh"}),
        ),
    ),
    (
        "schema",
        "bad ticket status",
        lambda i, r: ("ticket", _dump({**_valid(i, "ticket"), "status": "exploded"})),
    ),
    (
        "schema",
        "mrr as text",
        lambda i, r: ("subscription", _dump({**_valid(i, "subscription"), "mrr": "lots"})),
    ),
    (
        "schema",
        "huge event id",
        lambda i, r: ("login", _dump({**_valid(i), "event_id": "x" * 500})),
    ),
    ("wrong_topic", "usage on login topic", lambda i, r: ("login", _dump(_valid(i, "usage")))),
    (
        "wrong_topic",
        "no type",
        lambda i, r: (
            "ticket",
            _dump({k: v for k, v in _valid(i, "ticket").items() if k != "type"}),
        ),
    ),
    (
        "oversize",
        "huge body",
        lambda i, r: ("ticket", _dump({**_valid(i, "ticket"), "body": "a" * 400_000})),
    ),
]
EXPECTED_CODES = sorted({code for code, _, _ in _BUILDERS})


def malformed_messages(count: int, seed: int = 0) -> list[Malformed]:
    """`count` malformed messages cycling through every kind, keyed as a producer would."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        code, what, build = _BUILDERS[i % len(_BUILDERS)]
        topic_type, value = build(i, rng)
        assert topic_type in EVENT_TYPES  # noqa: S101 - corpus invariant
        out.append(Malformed(topic_type, f"cus_bad_{i % 7}".encode(), value, code, what))
    return out
