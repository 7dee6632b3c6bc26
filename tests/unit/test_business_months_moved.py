"""A month's figures follow the customers: summed over workers they are the whole stream's
after partitions move between workers mid-month, a restarted worker has its month back, and
an event of last month that arrives late counts in last month."""

from __future__ import annotations

import zlib
from collections.abc import Callable

from churnstream.models.business import BusinessMetrics, Month, month_bounds
from churnstream.models.replay import replay
from churnstream.models.scoring import (
    CustomerRecord,
    ScoringContext,
    advance_month,
    restore,
    step,
    tally,
)
from churnstream.schemas.events import Event, parse_event_dict
from churnstream.streams.simulation import simulate
from churnstream.streams.stored import decode_record, encode_record


def ordered_stream(seed: int) -> list[Event]:
    events = [parse_event_dict(e) for e in simulate(customers=120, days=120, seed=seed)]
    return sorted(events, key=lambda e: (e.ts, e.event_id))


def summed(workers: list[BusinessMetrics], month: str) -> Month:
    total = Month()
    for business in workers:
        total.add(business.months.get(month, Month()))
    return total


def run(
    events: list[Event],
    owner: Callable[[str, bool], int],
    at: float,
    workers: list[BusinessMetrics],
    rebalance: Callable[[list[BusinessMetrics]], list[BusinessMetrics]],
) -> list[BusinessMetrics]:
    """Apply `events` in time order, each on the worker `owner(customer, moved)` names; at
    time `at`, `rebalance` the workers, and each counts again the stored customers it owns
    from then on (as `streams.gauges.recount` does)."""
    records: dict[str, CustomerRecord] = {}
    contexts = [ScoringContext() for _ in workers]
    moved = False
    for event in events:
        if not moved and event.ts.timestamp() >= at:
            moved = True
            workers = rebalance(workers)
            for i, business in enumerate(workers):
                business.forget_customers()
                latest = [
                    restore(business, decode_record(encode_record(record)), contexts[i])
                    for customer_id, record in records.items()
                    if owner(customer_id, True) == i
                ]
                advance_month(business, contexts[i], max(t for t in latest if t))
        i = owner(event.customer_id, moved)
        record = records.setdefault(event.customer_id, CustomerRecord.new(event.customer_id))
        outcome = step(record, event, None, contexts[i])
        tally(workers[i], record, event, outcome, contexts[i])
    return workers


def middle_of_last_month(events: list[Event]) -> tuple[str, float]:
    whole = replay(events).business
    start, _ = month_bounds(whole.current_month or "")
    return whole.current_month or "", (start + events[-1].ts.timestamp()) / 2


def test_customers_moved_mid_month_take_their_month_along() -> None:
    events = ordered_stream(seed=7)
    whole = replay(events).business
    month, at = middle_of_last_month(events)

    def owner(customer_id: str, moved: bool) -> int:
        part = zlib.crc32(customer_id.encode()) % 4  # four partitions, two workers
        return (part + moved) % 2  # the rebalance swaps them all

    # The moved customers' cancellations after the move are this month's churn.
    cancels = [
        e.customer_id
        for e in events
        if e.type == "subscription" and e.action == "cancelled" and e.ts.timestamp() >= at
    ]
    assert cancels and whole.months[month].churned_customers > 0

    workers = run(events, owner, at, [BusinessMetrics(), BusinessMetrics()], lambda w: w)
    for m in whole.live_months():
        assert summed(workers, m) == whole.months[m], m
    assert all(w.months[month].start_customers > 0 for w in workers)


def test_a_restarted_worker_has_its_month_back() -> None:
    events = ordered_stream(seed=8)
    whole = replay(events).business
    month, at = middle_of_last_month(events)
    assert whole.months[month].start_customers > 0

    def restarted(_: list[BusinessMetrics]) -> list[BusinessMetrics]:
        return [BusinessMetrics()]  # the memory of the one before is gone

    workers = run(events, lambda _c, _m: 0, at, [BusinessMetrics()], restarted)
    for m in whole.live_months():
        assert workers[0].months[m] == whole.months[m], m


def test_a_late_event_of_last_month_counts_in_last_month() -> None:
    """Cancelled on 30 January, the event read after February opened: January's figures
    (not in its opening cohort, started in it) and February's (not in its cohort either)."""
    ctx, business = ScoringContext(), BusinessMetrics()
    record = CustomerRecord.new("c1")
    other = CustomerRecord.new("c2")

    def apply(r: CustomerRecord, body: dict) -> None:  # type: ignore[type-arg]
        event = parse_event_dict(body | {"customer_id": r.customer_id})
        tally(business, r, event, step(r, event, None, ctx), ctx)

    started = {"type": "subscription", "plan": "pro", "mrr": 100.0}
    apply(record, started | {"event_id": "s", "action": "started", "ts": "2025-01-10T00:00:00Z"})
    apply(other, started | {"event_id": "o", "action": "started", "ts": "2025-01-11T00:00:00Z"})
    apply(other, {"event_id": "l", "type": "login", "ts": "2025-02-01T08:00:00Z"})
    late = started | {"event_id": "x", "action": "cancelled", "mrr": 0.0}
    apply(record, late | {"ts": "2025-01-30T00:00:00Z"})

    january, february = business.months["2025-01"], business.months["2025-02"]
    assert (january.new_customers, january.start_customers, january.churned_customers) == (2, 0, 0)
    assert (february.start_customers, february.start_cents, february.churned_customers) == (
        1,
        10_000,
        0,
    )
    assert february.report()["logo_churn_rate"] == 0.0
    # A worker that counts the two again from their records has the same months.
    again = BusinessMetrics()
    latest = [restore(again, r, ctx) for r in (record, other)]
    advance_month(again, ctx, max(t for t in latest if t))
    assert {m: again.months[m] for m in again.live_months()} == {
        m: business.months[m] for m in business.live_months()
    }
