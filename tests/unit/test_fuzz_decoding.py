"""Fuzzing: whatever bytes arrive, decoding gives an event or InvalidEvent, and scoring a
decoded event never raises."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnstream.models.business import BusinessMetrics
from churnstream.models.scoring import CustomerRecord, ScoringContext, step, summary, tally
from churnstream.schemas.decoding import decode_event
from churnstream.schemas.errors import InvalidEvent
from churnstream.schemas.events import EVENT_TYPES
from churnstream.schemas.records import RiskChange
from churnstream.streams.stored import decode_record, encode_record

GOOD: dict[str, dict[str, Any]] = {
    "login": {},
    "usage": {"feature": "reports", "quantity": 3},
    "ticket": {"ticket_id": "t1", "status": "opened", "priority": "urgent", "body": "broken"},
    "survey": {"kind": "nps", "score": 3},
    "subscription": {"action": "started", "plan": "growth", "mrr": 300},
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
absurd = st.sampled_from(
    [
        1e308,
        -1e308,
        1e-308,
        -1,
        0,
        2**63,
        "",
        "x" * 5000,
        "2025-01-01T00:00:00",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "2025-13-45T99:99:99Z",
        [],
        {},
        None,
        True,
    ]
)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    etype = draw(st.sampled_from(sorted(EVENT_TYPES)))
    event: dict[str, Any] = {
        "event_id": draw(st.text(min_size=1, max_size=20)),
        "customer_id": "c1",
        "type": etype,
        "ts": "2025-03-01T10:00:00Z",
        **GOOD[etype],
    }
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from([*event, "extra", "rating_label", "quantity", "score", "mrr"]))
        action = draw(st.sampled_from(["drop", "json", "absurd"]))
        if action == "drop":
            event.pop(key, None)
        else:
            event[key] = draw(json_values if action == "json" else absurd)
    topic = draw(st.sampled_from([etype, *sorted(EVENT_TYPES)]))
    return topic, json.dumps(event).encode()  # stdlib: big integers too


def decode_or_invalid(raw: bytes, topic: str) -> Any:
    try:
        return decode_event(raw, key=b"c1", topic_type=topic, max_bytes=4096)
    except InvalidEvent as err:
        assert err.code and err.reason
        return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=300), topic=st.sampled_from(sorted(EVENT_TYPES)))
def test_any_bytes_decode_or_are_invalid(raw: bytes, topic: str) -> None:
    decode_or_invalid(raw, topic)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=st.lists(mutated(), min_size=1, max_size=8))
def test_mutated_events_decode_or_are_invalid_and_scoring_never_raises(messages) -> None:  # type: ignore[no-untyped-def]
    ctx = ScoringContext()
    record = CustomerRecord.new("c1")
    business = BusinessMetrics()
    for topic, raw in messages:
        event = decode_or_invalid(raw, topic)
        if event is None:
            continue
        outcome = step(record, event, None, ctx)
        tally(business, record, event, outcome, ctx)
        for alert in outcome.alerts:  # what the worker publishes stays valid JSON
            assert RiskChange.model_validate_json(alert.model_dump_json()) == alert
    # The stored record and the API view survive JSON.
    stored = decode_record(encode_record(record))
    orjson.dumps(summary(stored, ctx))
    orjson.dumps(business.report())
