"""The feature state: each feature, and independence from arrival order."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from churnstream.models.features import DAY, FeatureState, derive
from churnstream.schemas.events import parse_event_dict

T0 = datetime(2025, 6, 2, tzinfo=UTC)  # a Monday


def ev(i: int, etype: str, at: datetime, **fields: Any):  # type: ignore[no-untyped-def]
    return parse_event_dict(
        {"event_id": f"e{i}", "customer_id": "c", "type": etype, "ts": at.isoformat(), **fields}
    )


def close(a: Any, b: Any) -> bool:
    """Equal, with floats compared to 1e-9 relative (sums may round differently)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


EVENT_KINDS = st.sampled_from(
    [
        ("login", {}),
        ("usage", {"feature": "reports", "quantity": 3}),
        ("usage", {"feature": "api", "quantity": 1}),
        ("ticket", {"ticket_id": "t1", "status": "opened", "priority": "urgent", "body": "broken"}),
        ("ticket", {"ticket_id": "t1", "status": "solved"}),
        ("ticket", {"ticket_id": "t1", "status": "reopened"}),
        ("ticket", {"ticket_id": "t2", "status": "opened", "subject": "thanks, great"}),
        ("survey", {"kind": "nps", "score": 0}),
        ("survey", {"kind": "csat", "score": 5}),
        ("subscription", {"action": "started", "plan": "growth", "mrr": 300}),
        ("subscription", {"action": "upgraded", "plan": "growth", "mrr": 450}),
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    kinds=st.lists(st.tuples(EVENT_KINDS, st.integers(0, 6 * 24 * 60)), min_size=1, max_size=25),
    order=st.randoms(use_true_random=False),
)
def test_state_does_not_depend_on_arrival_order(kinds, order) -> None:  # type: ignore[no-untyped-def]
    events = [ev(i, t, T0 + timedelta(minutes=m), **f) for i, ((t, f), m) in enumerate(kinds)]
    shuffled = list(events)
    order.shuffle(shuffled)
    a, b = FeatureState(), FeatureState()
    for e in sorted(events, key=lambda e: (e.ts, e.event_id)):
        a.apply(e)
    for e in shuffled:
        b.apply(e)
    assert close(a.to_dict(), b.to_dict())
    now = max(e.ts for e in events).timestamp() + DAY
    assert close(derive(a, now), derive(b, now))
    # Through JSON, as the table stores it (orjson writes -inf as null).
    stored = FeatureState.from_dict(orjson.loads(orjson.dumps(a.to_dict())))
    assert close(stored.to_dict(), a.to_dict())
    for e in events:  # the stored state goes on taking events
        stored.apply(e)
        a.apply(e)
    assert close(stored.to_dict(), a.to_dict())


def test_activity_recency_and_breadth() -> None:
    s = FeatureState()
    for d in range(10):
        s.apply(ev(d, "login", T0 + timedelta(days=d, hours=9)))
        s.apply(ev(100 + d, "login", T0 + timedelta(days=d, hours=15)))  # same day: counts once
    for i, feat in enumerate(["a", "b", "c"]):
        s.apply(ev(200 + i, "usage", T0 + timedelta(days=9), feature=feat, quantity=10))
    now = (T0 + timedelta(days=10)).timestamp()
    f = derive(s, now)
    assert f["active_days_30d"] == 10
    assert math.isclose(f["days_since_login"], 1 - 15 / 24)
    # Ten login days, the latest a day ago: decayed with a 7-day half-life.
    expected = sum(2 ** (-(10 - d) / 7) for d in range(10))
    assert math.isclose(f["login_days_7d"], expected, rel_tol=1e-9)
    assert f["breadth_30d"] == 3
    assert math.isclose(f["usage_7d"], 30 * 2 ** (-(1 / 7)), rel_tol=1e-9)


def test_usage_trend_and_breadth_trend_compare_four_week_windows() -> None:
    s = FeatureState()
    for w in range(8):
        at = T0 + timedelta(weeks=w)
        feats = ["a", "b", "c", "d"] if w < 4 else ["a"]
        for j, feat in enumerate(feats):
            s.apply(ev(w * 10 + j, "usage", at, feature=feat, quantity=10))
    f = derive(s, (T0 + timedelta(weeks=7, days=1)).timestamp())
    assert f["breadth_30d"] == 1 and f["breadth_trend"] == -3
    assert math.isclose(f["usage_trend"], (40 - 160) / 161)


def test_tickets_open_urgent_reopened_resolution_sentiment() -> None:
    s = FeatureState()
    s.apply(
        ev(
            1,
            "ticket",
            T0,
            ticket_id="t1",
            status="opened",
            priority="urgent",
            body="Broken again, very frustrating",
        )
    )
    s.apply(
        ev(2, "ticket", T0 + timedelta(days=2), ticket_id="t1", status="solved", priority="urgent")
    )
    s.apply(
        ev(
            3,
            "ticket",
            T0 + timedelta(days=3),
            ticket_id="t1",
            status="reopened",
            priority="urgent",
        )
    )
    s.apply(
        ev(
            4,
            "ticket",
            T0 + timedelta(days=3),
            ticket_id="t2",
            status="opened",
            priority="low",
            subject="Thanks, works great",
        )
    )
    s.apply(
        ev(5, "ticket", T0 + timedelta(days=4), ticket_id="t2", status="closed", priority="low")
    )
    f = derive(s, (T0 + timedelta(days=5)).timestamp())
    assert f["open_tickets"] == 1 and f["urgent_open_tickets"] == 1 and f["reopens_30d"] == 1
    assert f["resolution_days"] == 1.0  # only t2 is resolved now: one day
    assert f["ticket_sentiment"] == 0.0  # one angry (-1), one happy (+1)
    assert f["oldest_open_ticket_days"] == 5.0


def test_resolved_tickets_leave_after_thirty_days() -> None:
    s = FeatureState()
    s.apply(ev(1, "ticket", T0, ticket_id="t1", status="opened"))
    s.apply(ev(2, "ticket", T0 + timedelta(days=1), ticket_id="t1", status="solved"))
    s.apply(ev(3, "login", T0 + timedelta(days=40)))
    f = derive(s, (T0 + timedelta(days=40)).timestamp())
    assert f["reopens_30d"] == 0 and "resolution_days" not in f and f["tickets_30d"] == 0
    s.apply(ev(4, "ticket", T0 + timedelta(days=41), ticket_id="t2", status="opened"))
    assert list(s.tickets) == ["t2"]  # pruned on the next ticket event


def test_surveys_latest_and_decayed_average() -> None:
    s = FeatureState()
    s.apply(ev(1, "survey", T0, kind="nps", score=0))
    s.apply(ev(2, "survey", T0, kind="nps", score=10))
    s.apply(ev(3, "survey", T0 + timedelta(days=1), kind="csat", rating_label="Satisfied"))
    f = derive(s, (T0 + timedelta(days=1)).timestamp())
    assert f["nps_latest"] == 10  # same time: the larger event id wins (e2)
    assert math.isclose(f["nps_avg"], 5.0)
    assert f["csat_latest"] == 4 and math.isclose(f["csat_avg"], 4.0)
    assert "ces_avg" not in f


def test_subscription_mrr_movement_trial_and_tenure() -> None:
    s = FeatureState()
    s.apply(ev(1, "subscription", T0, action="trial_started", plan="starter", mrr=0))
    assert derive(s, T0.timestamp())["in_trial"] == 1
    s.apply(
        ev(2, "subscription", T0 + timedelta(days=14), action="started", plan="starter", mrr=100)
    )
    s.apply(
        ev(3, "subscription", T0 + timedelta(days=110), action="upgraded", plan="growth", mrr=150)
    )
    f = derive(s, (T0 + timedelta(days=120)).timestamp())
    assert f["mrr"] == 150 and f["in_trial"] == 0 and f["upgrades_90d"] == 1
    assert math.isclose(f["mrr_change_90d"], 0.5)
    assert math.isclose(f["months_since_start"], 120 / 30.4375)
    s.apply(
        ev(4, "subscription", T0 + timedelta(days=121), action="cancelled", plan="growth", mrr=0)
    )
    assert derive(s, (T0 + timedelta(days=121)).timestamp())["cancelled"] == 1


@settings(max_examples=100, deadline=None)
@given(
    kinds=st.lists(st.tuples(EVENT_KINDS, st.integers(0, 200 * 24)), min_size=1, max_size=40),
    order=st.randoms(use_true_random=False),
)
def test_topics_drifting_far_apart_give_the_same_state(kinds, order) -> None:  # type: ignore[no-untyped-def]
    """A worker catching up on a backlog reads the five topics at different speeds: one
    customer's logins may run months ahead of their tickets. Within a topic Kafka keeps the
    order, so any merge of the per-type time-ordered streams must give the same state."""
    events = [ev(i, t, T0 + timedelta(hours=h), **f) for i, ((t, f), h) in enumerate(kinds)]
    events.sort(key=lambda e: (e.ts, e.event_id))
    by_type: dict[str, list[Any]] = {}
    for e in events:
        by_type.setdefault(e.type, []).append(e)
    merged = []
    while any(by_type.values()):
        merged.append(by_type[order.choice([t for t, q in by_type.items() if q])].pop(0))
    a, b = FeatureState(), FeatureState()
    for e in events:
        a.apply(e)
    for e in merged:
        b.apply(e)
    assert close(a.to_dict(), b.to_dict())
    now = events[-1].ts.timestamp() + DAY
    assert close(derive(a, now), derive(b, now))
