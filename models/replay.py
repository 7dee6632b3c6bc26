"""Offline replay: the live worker's step functions over a history of events, in event time.

Events are sorted by `(ts, event_id)` and a repeated `event_id` is applied once. Snapshots
are taken at each period boundary of event time for every active customer: from their first
started/trial_started subscription event (or their first event when they have none) until
they cancel.

>>> from churnstream.streams.simulation import simulate
>>> from churnstream.schemas.events import parse_event_dict
>>> events = [parse_event_dict(e) for e in simulate(customers=20, days=30, seed=2)]
>>> result = replay(events, snapshot_every=7 * 86400.0)
>>> len(result.records), len(result.snapshots) > 0
(20, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from churnstream.models.business import BusinessMetrics
from churnstream.models.learning import ChurnLearner
from churnstream.models.scoring import (
    CustomerRecord,
    ScoringContext,
    counted_segment,
    step,
    tally,
    view,
)
from churnstream.schemas.events import Event
from churnstream.schemas.records import RiskChange


@dataclass(slots=True)
class ReplayResult:
    records: dict[str, CustomerRecord] = field(default_factory=dict)
    alerts: list[RiskChange] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    business: BusinessMetrics = field(default_factory=BusinessMetrics)
    duplicates: int = 0
    too_late: int = 0


def is_active(record: CustomerRecord) -> bool:
    """Between the first start (or first event, without subscriptions) and a cancellation."""
    subs = record.features.subscriptions
    if not subs:
        return record.features.first_ts is not None
    return record.features.customer_since is not None and subs[-1][2] != "cancelled"


def snapshot(record: CustomerRecord, ctx: ScoringContext, at: float) -> dict[str, Any]:
    v = view(record, ctx, at)
    return {
        "customer_id": record.customer_id,
        "at": datetime.fromtimestamp(at, tz=UTC).isoformat().replace("+00:00", "Z"),
        "health_score": round(v.health.score, 4),
        "band": record.risk.band,
        "segment": counted_segment(record, v),
        "churn_probability": v.churn.probability if v.churn else None,
        "lifetime_value": None if v.lifetime_value is None else round(v.lifetime_value, 2),
    }


def parse_period(text: str) -> float:
    """'7d', '12h', '2w' -> seconds.

    >>> parse_period("7d"), parse_period("12h"), parse_period("2w")
    (604800.0, 43200.0, 1209600.0)
    """
    units = {"h": 3600.0, "d": 86400.0, "w": 604800.0}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) == 0:
        msg = f"period {text!r}: use a whole number and h, d or w, e.g. 7d"
        raise ValueError(msg)
    return int(text[:-1]) * units[text[-1]]


def replay(
    events: Iterable[Event],
    ctx: ScoringContext | None = None,
    snapshot_every: float | None = None,
    on_alert: Callable[[RiskChange], None] | None = None,
    on_snapshot: Callable[[dict[str, Any]], None] | None = None,
    learner: ChurnLearner | None = None,
) -> ReplayResult:
    """Apply `events` in (ts, event_id) order. Alerts and snapshots are collected, or passed
    to the callbacks when given (to stream them to files without holding them).

    With a `learner`, the churn model learns as the live system does: from feature snapshots
    whose labels have matured by each event's time, and scores with what it learned so far.
    """
    ctx = ctx or ScoringContext()
    if learner is not None:
        ctx.churn = learner.predictor()
    result = ReplayResult()
    ordered = sorted(events, key=lambda e: (e.ts, e.event_id))
    seen: set[str] = set()
    next_boundary: float | None = None
    for event in ordered:
        ts = event.ts.timestamp()
        if snapshot_every:
            if next_boundary is None:
                next_boundary = math.floor(ts / snapshot_every) * snapshot_every + snapshot_every
            while ts >= next_boundary:
                for record in result.records.values():
                    if is_active(record):
                        snap = snapshot(record, ctx, next_boundary)
                        (on_snapshot or result.snapshots.append)(snap)
                next_boundary += snapshot_every
        if event.event_id in seen:
            result.duplicates += 1
            continue
        seen.add(event.event_id)
        record = result.records.get(event.customer_id)
        if record is None:
            record = result.records[event.customer_id] = CustomerRecord.new(event.customer_id)
        outcome = step(record, event, None, ctx)
        if outcome.status == "too_late":
            result.too_late += 1
            continue
        if outcome.status == "duplicate":
            result.duplicates += 1
            continue
        tally(result.business, record, event, outcome, ctx)
        for alert in outcome.alerts:
            (on_alert or result.alerts.append)(alert)
        if learner is not None:
            if outcome.snapshot is not None:
                learner.snapshot(outcome.snapshot)
            if outcome.cancelled_at is not None:
                learner.cancelled(event.customer_id, outcome.cancelled_at)
            learner.advance(ts)
    return result
