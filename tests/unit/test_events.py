"""Every rule of the event contract, valid and invalid, and JSON round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from churnstream.schemas.events import (
    EVENT_ADAPTER,
    SurveyEvent,
    UsageEvent,
    event_to_json_dict,
    parse_event_dict,
)

BASE = {"event_id": "e-1", "customer_id": "cus_1", "ts": "2025-03-01T12:00:00Z"}
VALID = {
    "login": {},
    "usage": {"feature": "reports", "quantity": 3},
    "ticket": {"ticket_id": "t1", "status": "opened", "priority": "urgent", "subject": "x"},
    "survey": {"kind": "csat", "score": 4},
    "subscription": {"action": "upgraded", "plan": "growth", "mrr": 499.0},
}


def make(etype: str, **overrides: object) -> dict[str, object]:
    return {**BASE, "type": etype, **VALID[etype], **overrides}


@pytest.mark.parametrize("etype", sorted(VALID))
def test_each_type_validates_and_round_trips(etype: str) -> None:
    event = parse_event_dict(make(etype))
    assert event.type == etype
    again = parse_event_dict(orjson.loads(orjson.dumps(event_to_json_dict(event))))
    assert again == event


@pytest.mark.parametrize("field", ["event_id", "customer_id"])
@pytest.mark.parametrize("value", ["", "x" * 129])
def test_id_length_bounds(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field):
        parse_event_dict(make("login", **{field: value}))


def test_id_of_128_chars_is_fine() -> None:
    assert parse_event_dict(make("login", customer_id="c" * 128)).customer_id == "c" * 128


@pytest.mark.parametrize(
    "ts", ["2025-03-01T12:00:00", "2025-03-01", "yesterday", "2025-13-01T00:00:00Z", 1740830400]
)
def test_naive_or_malformed_timestamps_are_rejected(ts: object) -> None:
    with pytest.raises(ValidationError, match="ts"):
        parse_event_dict(make("login", ts=ts))


def test_timestamps_with_offsets_are_normalised_to_utc() -> None:
    e = parse_event_dict(make("login", ts="2025-03-01T12:00:00.123456789-05:00"))
    assert e.ts == datetime(2025, 3, 1, 17, 0, 0, 123456, tzinfo=UTC)


def test_unknown_fields_are_ignored_and_user_id_is_optional() -> None:
    e = parse_event_dict(make("login", browser="firefox", user_id="u9"))
    assert e.user_id == "u9"
    assert not hasattr(e, "browser")


def test_unknown_type_is_rejected() -> None:
    with pytest.raises(ValidationError):
        parse_event_dict({**BASE, "type": "pageview"})


def test_usage_quantity_defaults_to_one_and_must_be_non_negative() -> None:
    e = parse_event_dict({**BASE, "type": "usage", "feature": "api"})
    assert isinstance(e, UsageEvent) and e.quantity == 1.0
    for bad in (-1, float("inf"), "many", 1e10):
        with pytest.raises(ValidationError, match="quantity"):
            parse_event_dict(make("usage", quantity=bad))


@pytest.mark.parametrize("status", ["opened", "updated", "solved", "closed", "reopened"])
def test_ticket_statuses(status: str) -> None:
    assert parse_event_dict(make("ticket", status=status)).status == status


def test_ticket_defaults_and_rejections() -> None:
    e = parse_event_dict({**BASE, "type": "ticket", "ticket_id": "t", "status": "opened"})
    assert e.priority == "normal"
    with pytest.raises(ValidationError, match="status"):
        parse_event_dict(make("ticket", status="lost"))
    with pytest.raises(ValidationError, match="priority"):
        parse_event_dict(make("ticket", priority="critical"))


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [("nps", [0, 10], [-1, 11, 7.5]), ("csat", [1, 5], [0, 6]), ("ces", [1, 7], [0, 8])],
)
def test_survey_score_ranges(kind: str, good: list[float], bad: list[float]) -> None:
    for score in good:
        assert parse_event_dict(make("survey", kind=kind, score=score)).score == score
    for score in bad:
        with pytest.raises(ValidationError):
            parse_event_dict(make("survey", kind=kind, score=score))


def test_rating_labels_map_to_scores_with_defaults_and_configured_maps() -> None:
    e = parse_event_dict(make("survey", kind="csat", score=None, rating_label="Very Satisfied"))
    assert isinstance(e, SurveyEvent) and e.score == 5
    custom = {"csat": {"delighted": 5, "meh": 3}}
    assert (
        parse_event_dict(make("survey", kind="csat", score=None, rating_label="Meh"), custom).score
        == 3
    )
    with pytest.raises(ValidationError, match="not known"):
        parse_event_dict(make("survey", kind="csat", score=None, rating_label="delighted"))


def test_survey_needs_score_or_label() -> None:
    with pytest.raises(ValidationError, match="score or a rating_label"):
        parse_event_dict(make("survey", score=None))


@pytest.mark.parametrize(
    "action",
    ["trial_started", "started", "renewed", "upgraded", "downgraded", "cancelled", "reactivated"],
)
def test_subscription_actions(action: str) -> None:
    e = parse_event_dict(make("subscription", action=action))
    assert e.action == action and e.currency == "USD"


def test_subscription_rejections() -> None:
    for bad in ({"mrr": -1}, {"action": "paused"}, {"currency": "usd"}, {"plan": ""}):
        with pytest.raises(ValidationError):
            parse_event_dict(make("subscription", **bad))


@given(
    etype=st.sampled_from(sorted(VALID)),
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
    # Any id but one starting with NUL, which the state table keeps for its own keys.
    customer=st.text(min_size=1, max_size=128).filter(
        lambda s: s.strip() == s and not s.startswith("\x00")
    ),
)
def test_round_trip_property(etype: str, offset_minutes: int, customer: str) -> None:
    from datetime import timezone

    when = datetime(2024, 2, 29, 23, 59, tzinfo=timezone(timedelta(minutes=offset_minutes)))
    event = parse_event_dict(make(etype, ts=when.isoformat(), customer_id=customer))
    assert event.ts == when
    assert EVENT_ADAPTER.validate_json(orjson.dumps(event_to_json_dict(event))) == event
