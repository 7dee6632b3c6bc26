from __future__ import annotations

from collections import Counter, defaultdict

from churnstream.schemas.events import parse_event_dict
from churnstream.streams.simulation import churned_customers, simulate


def test_seeded_and_reproducible_and_valid() -> None:
    a = list(simulate(customers=40, days=45, seed=11))
    assert a == list(simulate(customers=40, days=45, seed=11))
    assert a != list(simulate(customers=40, days=45, seed=12))
    assert len({e["event_id"] for e in a}) == len(a)
    types = Counter(parse_event_dict(e).type for e in a)
    assert set(types) == {"login", "usage", "ticket", "survey", "subscription"}


def test_churners_fade_before_they_cancel() -> None:
    events = list(simulate(customers=300, days=120, seed=5))
    cancel_day: dict[str, str] = {}
    for e in events:
        if e["type"] == "subscription" and e["action"] == "cancelled":
            cancel_day.setdefault(e["customer_id"], e["ts"][:10])
    assert len(cancel_day) > 20
    assert cancel_day.keys() == churned_customers(300, 120, 5)
    # Logins in the 14 days before cancelling are far fewer than in the customer's first weeks.
    logins: dict[str, list[str]] = defaultdict(list)
    for e in events:
        if e["type"] == "login":
            logins[e["customer_id"]].append(e["ts"][:10])
    early, late = 0, 0
    from datetime import date, timedelta

    for cid, day in cancel_day.items():
        end = date.fromisoformat(day)
        days = [date.fromisoformat(d) for d in logins[cid]]
        if not days:
            continue
        first = min(days)
        early += sum(first <= d < first + timedelta(days=14) for d in days)
        late += sum(end - timedelta(days=14) <= d < end for d in days)
    assert late < 0.6 * early
