"""The scoring step: `step(record, event, source, context) -> Outcome`, shared by the live
worker and the offline replay.

A record is a customer's whole state: features, risk, counts, and what was applied already
(offsets per source partition, recent event ids). The step is idempotent: a redelivered
message, or an event id seen among the customer's recent ones, changes nothing.

>>> from churnstream.schemas.events import parse_event_dict
>>> ctx = ScoringContext()
>>> rec = CustomerRecord.new("c1")
>>> e = parse_event_dict({"event_id": "e1", "customer_id": "c1", "type": "login",
...                       "ts": "2025-01-01T09:00:00Z"})
>>> step(rec, e, ("t", 0, 5), ctx).status, step(rec, e, ("t", 0, 5), ctx).status
('applied', 'duplicate')
>>> rec.counts, rec.risk.band
({'login': 1}, 'yellow')
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from churnstream.models.business import BusinessMetrics
from churnstream.models.delivery import AppliedOffsets
from churnstream.models.features import FeatureState, current_plan, derive
from churnstream.models.health import HealthConfig, HealthScore, health_score
from churnstream.models.labels import Snapshot
from churnstream.models.outbox import Outbox
from churnstream.models.peers import PeerBaseline
from churnstream.models.risk import Assessment, RiskState, assess, no_drivers, score_drivers
from churnstream.models.seen import SeenIds
from churnstream.models.segments import behaviour_segment, lifetime_value, size_segment
from churnstream.schemas.events import Event, SubscriptionEvent, SurveyEvent
from churnstream.schemas.records import Driver, RiskChange

DAY = 86_400.0

Source = tuple[str, int, int]
"""Where a message came from: topic, partition, offset."""


@dataclass(frozen=True, slots=True)
class ChurnPrediction:
    """A probability and its version; the drivers are worked out only when asked for (an
    alert or the API), which is rare next to predictions (one per event)."""

    probability: float
    model_version: str | None
    explain: Callable[[], tuple[Driver, ...]] = field(default=no_drivers, compare=False)

    @property
    def drivers(self) -> tuple[Driver, ...]:
        return self.explain()


ChurnPredictor = Callable[[dict[str, float]], ChurnPrediction | None]


@dataclass(slots=True)
class ScoringContext:
    """What scoring needs beyond the customer: configuration, peers, the churn model."""

    config: HealthConfig = field(default_factory=HealthConfig)
    # Usage baselines by peer group: a worker's are its partitions (`peer_group` gives a
    # customer's, `load_peers` reads a group's stored baseline); offline, one group unless
    # the caller partitions as Kafka does.
    peers: dict[int, PeerBaseline] = field(default_factory=dict)
    peer_group: Callable[[str], int] = field(default=lambda _customer_id: 0)
    load_peers: Callable[[int], PeerBaseline] = field(default=lambda _group: PeerBaseline())
    churn: ChurnPredictor | None = None
    base_monthly_retention: float = 0.97  # until the stream's own retention is known
    # A feature snapshot per active customer at most this often (event time), for learning;
    # None: no snapshots.
    snapshot_period: float | None = DAY

    def peers_for(self, customer_id: str) -> PeerBaseline:
        """The baseline `customer_id` is judged against and counted in."""
        group = self.peer_group(customer_id)
        baseline = self.peers.get(group)
        if baseline is None:
            baseline = self.peers[group] = self.load_peers(group)
        return baseline


@dataclass(slots=True)
class CustomerRecord:
    customer_id: str
    features: FeatureState = field(default_factory=FeatureState)
    risk: RiskState = field(default_factory=RiskState)
    counts: dict[str, int] = field(default_factory=dict)
    applied: AppliedOffsets = field(default_factory=AppliedOffsets)
    seen: SeenIds = field(default_factory=SeenIds)  # event ids within the lateness bound
    outbox: Outbox = field(default_factory=Outbox)  # what its updates have yet to publish

    @classmethod
    def new(cls, customer_id: str) -> CustomerRecord:
        return cls(customer_id=customer_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "features": self.features.to_dict(),
            "risk": self.risk.to_dict(),
            "counts": self.counts,
            "applied": self.applied.by_source,
            "seen": self.seen.to_dict(),
        } | ({"outbox": box} if (box := self.outbox.to_dict()) else {})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CustomerRecord:
        return cls(
            customer_id=d["customer_id"],
            features=FeatureState.from_dict(d["features"]),
            risk=RiskState.from_dict(d["risk"]),
            counts=dict(d["counts"]),
            applied=AppliedOffsets(dict(d["applied"])),
            seen=SeenIds.from_dict(d["seen"]),
            outbox=Outbox.from_dict(d.get("outbox")),
        )


@dataclass(frozen=True, slots=True)
class View:
    """The customer as scored at event time `now`."""

    now: float
    features: dict[str, float]
    health: HealthScore
    size: str
    plan: str | None
    churn: ChurnPrediction | None
    lifetime_value: float | None


# Why an event changed nothing as a duplicate (the `cause` label of the duplicate counter):
REDELIVERED = "redelivery"  # the same Kafka message again (its offset was applied)
REPEATED_ID = "event_id"  # another message repeating an event id applied already


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Literal["applied", "duplicate", "too_late"]
    alerts: list[RiskChange] = field(default_factory=list)
    view: View | None = None
    reason: str = ""
    snapshot: Snapshot | None = None  # features to label later (churn learning)
    cancelled_at: float | None = None  # this event cancelled the subscription


def model_features(f: dict[str, float], hs: HealthScore) -> dict[str, float]:
    """What the churn model reads: the features and the health score's view of them (the
    same at prediction time and in the snapshots it learns from)."""
    x = dict(f)
    x["health_score"] = hs.score
    x.update({f"health_{k}": c for k, c in hs.components.items()})
    return x


def view(record: CustomerRecord, ctx: ScoringContext, now: float | None = None) -> View:
    """Score the customer at `now` (default: their latest event time) without changing them."""
    fs = record.features
    at = now if now is not None else (fs.last_ts or 0.0)
    f = derive(fs, at)
    plan = current_plan(fs)
    z = (
        ctx.peers_for(record.customer_id).zscore(
            plan, f.get("usage_30d", 0.0), ctx.config.min_peers
        )
        if "days_since_usage" in f
        else None
    )
    hs = health_score(f, ctx.config, usage_z=z)
    churn = ctx.churn(model_features(f, hs)) if ctx.churn is not None else None
    ltv = None
    if "mrr" in f and not f.get("cancelled"):
        p = churn.probability if churn else None
        retention = 1.0 - p if p is not None else ctx.base_monthly_retention
        ltv = lifetime_value(
            f["mrr"], retention, ctx.config.margin, ctx.config.annual_discount_rate
        )
    return View(at, f, hs, size_segment(f.get("mrr")), plan, churn, ltv)


def step(
    record: CustomerRecord, event: Event, source: Source | None, ctx: ScoringContext
) -> Outcome:
    """Apply `event` (read from `source`, or None offline) to `record`; score; maybe alert."""
    if source is not None and not record.applied.first_time(*source):
        return Outcome("duplicate", reason=REDELIVERED)
    ts = event.ts.timestamp()
    # Behind the latest event of the same type: Kafka orders one customer's events within a
    # topic, so the verdict does not depend on how far the five topics drifted apart.
    latest = record.features.latest.get(event.type)
    bound = ctx.config.lateness_days * DAY
    if latest is not None and ts < latest - bound:
        behind = (latest - ts) / DAY
        return Outcome(
            "too_late",
            reason=f"event time is {behind:.1f} days behind the customer's latest {event.type} "
            f"event ({ctx.config.lateness_days:g}-day bound)",
        )
    if record.seen.contains(event.type, event.event_id):
        return Outcome("duplicate", reason=REPEATED_ID)
    record.seen.add(event.type, event.event_id, ts)
    latest_day = int(max(ts, latest or ts) // DAY)
    record.seen.prune(event.type, latest_day - math.ceil(ctx.config.lateness_days) - 1)
    record.counts[event.type] = record.counts.get(event.type, 0) + 1
    record.features.apply(event)
    now = record.features.last_ts or ts
    v = view(record, ctx, now)
    day = int(now // DAY)
    if event.type == "usage" and record.risk.peer_day != day:
        ctx.peers_for(record.customer_id).observe(v.plan, v.features.get("usage_30d", 0.0))
        record.risk.peer_day = day
    alerts = assess(
        record.risk,
        v.health,
        Assessment(
            customer_id=record.customer_id,
            event_id=event.event_id,
            now=now,
            segment=partial(segment_in, v),
            plan=v.plan,
            churn_probability=v.churn.probability if v.churn else None,
            churn_drivers=v.churn.explain if v.churn else no_drivers,
            model_version=v.churn.model_version if v.churn else None,
            lifetime_value=v.lifetime_value,
        ),
        ctx.config,
    )
    snap = None
    if (
        ctx.snapshot_period is not None
        and not v.features.get("cancelled")
        and (
            record.risk.snapshot_at is None or now - record.risk.snapshot_at >= ctx.snapshot_period
        )
    ):
        record.risk.snapshot_at = now
        snap = Snapshot(
            record.customer_id,
            now,
            model_features(v.features, v.health),
            v.churn.probability if v.churn else None,
            v.churn.model_version if v.churn else None,
            v.health.score,
        )
    cancelled_at = (
        ts if isinstance(event, SubscriptionEvent) and event.action == "cancelled" else None
    )
    return Outcome("applied", alerts, v, snapshot=snap, cancelled_at=cancelled_at)


def summary(record: CustomerRecord, ctx: ScoringContext) -> dict[str, Any]:
    """The customer as the API shows them."""
    v = view(record, ctx)
    r = record.risk
    drivers = score_drivers(v.health.contributions, v.health.components)
    return {
        "customer_id": record.customer_id,
        "as_of": v.now,
        "health_score": round(v.health.score, 2),
        "band": r.band,
        "band_since": r.band_since,
        "components": {k: round(c, 2) for k, c in v.health.components.items()},
        "contributions": {k: round(c, 2) for k, c in v.health.contributions.items()},
        "drivers": [d.model_dump() for d in drivers],
        "segment": behaviour_in(v, r.band),
        "size": v.size,
        "plan": v.plan,
        "change_7d": r.change(v.now, 7),
        "change_30d": r.change(v.now, 30),
        "churn_probability": v.churn.probability if v.churn else None,
        "model_version": v.churn.model_version if v.churn else None,
        "lifetime_value": None if v.lifetime_value is None else round(v.lifetime_value, 2),
        "features": {k: round(x, 4) for k, x in v.features.items()},
        "event_counts": dict(record.counts),
    }


def behaviour_in(v: View, band: str | None) -> str:
    """The customer's behaviour segment as scored in `v`, in risk band `band`.

    A view has no segment of its own: an event's view is scored before the event's
    assessment moves the band, and a segment taken from the band then was stale. Alerts
    and the per-segment counts ask for the band the assessment left: an alert that turns a
    customer red says "at-risk", and a customer whose last event took them out of red is no
    longer counted "at-risk" (a recount from the stored record, `restore`, agrees).
    """
    p = v.churn.probability if v.churn else None
    behaviour: str = behaviour_segment(v.features, band or "yellow", p)
    return behaviour


def segment_in(v: View, band: str | None) -> str:
    """The customer's "behaviour/size" segment as scored in `v`, in risk band `band`."""
    return f"{behaviour_in(v, band)}/{v.size}"


def counted_segment(record: CustomerRecord, v: View) -> str:
    """The segment a customer is counted in: `v`'s, with the band the record holds now."""
    return segment_in(v, record.risk.band)


def restore(business: BusinessMetrics, record: CustomerRecord, ctx: ScoringContext) -> float | None:
    """Count a stored customer in the per-customer aggregates (band, segment, lifetime value,
    the live months' figures) as of their latest event, as `tally` left them: a worker
    recounts the customers it owns after a rebalance (after `BusinessMetrics.forget_customers`,
    and then `advance_month` to the latest of the times this returns: their latest event's)."""
    v = view(record, ctx)
    business.observe_customer(
        record.customer_id, record.risk.band, counted_segment(record, v), v.lifetime_value
    )
    business.set_history(record.customer_id, record.features.subscriptions)
    latest: float | None = record.features.last_ts
    return latest


def advance_month(business: BusinessMetrics, ctx: ScoringContext, ts: float) -> None:
    """Move the aggregates to the month of event time `ts`, when that is a later one."""
    month = business.current_month
    business.advance(ts)
    if business.current_month != month:
        # A month closed: lifetime values use the stream's own observed retention from now on.
        ctx.base_monthly_retention = business.monthly_retention(ctx.base_monthly_retention)


def tally(
    business: BusinessMetrics,
    record: CustomerRecord,
    event: Event,
    outcome: Outcome,
    ctx: ScoringContext,
) -> None:
    """Count an applied event in the customer-success aggregates."""
    if outcome.status != "applied" or outcome.view is None:
        return
    ts = event.ts.timestamp()
    advance_month(business, ctx, ts)
    if isinstance(event, SurveyEvent) and event.score is not None:
        business.observe_survey(event.kind, event.score)
    elif isinstance(event, SubscriptionEvent):
        at = (ts, event.event_id)
        business.observe_subscription(
            record.customer_id, event.action, at, record.features.subscriptions
        )
    v = outcome.view
    business.observe_customer(
        record.customer_id, record.risk.band, counted_segment(record, v), v.lifetime_value
    )
