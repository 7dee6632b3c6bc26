"""Turning a customer's successive health scores into risk-change alerts.

Alerts: `band_change` (either direction), `score_drop` (the score fell by at least
`score_drop_points` against its value 7 days earlier), `churn_risk` (the churn probability
crossed `churn_threshold` upwards). The same kind for the same customer is not sent again
within `alert_cooldown_hours` of event time unless it got worse. Alert ids derive from the
customer, the kind and the event, so a redelivered event yields the same id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from churnstream.models.health import BAND_ORDER, Band, HealthConfig, HealthScore, next_band
from churnstream.schemas.records import Driver, RiskChange

DAY = 86_400.0
HISTORY_DAYS = 31


@dataclass(slots=True)
class RiskState:
    band: Band | None = None
    band_since: float | None = None
    score: float | None = None
    contributions: dict[str, float] = field(default_factory=dict)
    churn_probability: float | None = None
    history: list[list[float]] = field(default_factory=list)  # [day, last score that day]
    last_alert: dict[str, list[float]] = field(default_factory=dict)  # kind -> [ts, severity]
    peer_day: int = -1  # last day this customer was counted in the peer baseline
    snapshot_at: float | None = None  # event time of the last feature snapshot for learning
    alerts: int = 0  # alerts raised for this customer so far

    def record(self, now: float, score: float) -> None:
        day = float(int(now // DAY))
        if self.history and self.history[-1][0] == day:
            self.history[-1][1] = score
        elif not self.history or self.history[-1][0] < day:
            self.history.append([day, score])
        self.history = [h for h in self.history if h[0] > day - HISTORY_DAYS]

    def score_days_ago(self, now: float, days: int) -> float | None:
        """The last score recorded on or before the day `days` before `now`."""
        target = int(now // DAY) - days
        found = None
        for day, score in self.history:
            if day <= target:
                found = score
        return found

    def change(self, now: float, days: int) -> float | None:
        then = self.score_days_ago(now, days)
        return None if then is None or self.score is None else self.score - then

    def to_dict(self) -> dict[str, Any]:
        return {
            "band": self.band,
            "band_since": self.band_since,
            "score": self.score,
            "contributions": self.contributions,
            "churn_probability": self.churn_probability,
            "history": self.history,
            "last_alert": self.last_alert,
            "peer_day": self.peer_day,
            "snapshot_at": self.snapshot_at,
            "alerts": self.alerts,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RiskState:
        return cls(
            band=d["band"],
            band_since=d["band_since"],
            score=d["score"],
            contributions=dict(d["contributions"]),
            churn_probability=d["churn_probability"],
            history=[list(h) for h in d["history"]],
            last_alert=dict(d["last_alert"]),
            peer_day=d["peer_day"],
            snapshot_at=d.get("snapshot_at"),
            alerts=d.get("alerts", 0),
        )


def no_drivers() -> tuple[Driver, ...]:
    """No churn drivers: no model, or a prediction that has none."""
    return ()


@dataclass(frozen=True, slots=True)
class Assessment:
    """What the scoring step knows about the customer now, beyond the health score."""

    customer_id: str
    event_id: str
    now: float
    segment: Callable[[str], str]  # the segment, given the band the assessment leaves
    plan: str | None = None
    churn_probability: float | None = None
    churn_drivers: Callable[[], tuple[Driver, ...]] = no_drivers  # asked only for an alert
    model_version: str | None = None
    lifetime_value: float | None = None


def alert_id(customer_id: str, kind: str, event_id: str) -> str:
    return hashlib.sha256(f"{customer_id}\x1f{kind}\x1f{event_id}".encode()).hexdigest()[:32]


def change_drivers(before: dict[str, float], after: dict[str, float], top: int = 3) -> list[Driver]:
    """The components whose contribution moved most between two scores."""
    names = set(before) | set(after)
    deltas = {n: after.get(n, 0.0) - before.get(n, 0.0) for n in names}
    ranked = sorted(deltas.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:top]
    return [
        Driver(name=n, contribution=round(d, 3), direction="up" if d >= 0 else "down")
        for n, d in ranked
        if abs(d) > 1e-9
    ]


def score_drivers(
    contributions: dict[str, float], components: dict[str, float], top: int = 3
) -> list[Driver]:
    """The weakest components of a score: what pulls it down from 100."""
    gaps = {k: components[k] - 100.0 for k in components}
    ranked = sorted(gaps.items(), key=lambda kv: (kv[1], kv[0]))[:top]
    return [
        Driver(name=k, contribution=round(g, 3), direction="down" if g < 0 else "up")
        for k, g in ranked
    ]


def assess(
    risk: RiskState, hs: HealthScore, a: Assessment, config: HealthConfig
) -> list[RiskChange]:
    """Update `risk` with the new score and return the alerts it calls for (maybe none)."""
    previous_score, previous_band = risk.score, risk.band
    previous_contrib, previous_prob = risk.contributions, risk.churn_probability
    band = next_band(previous_band, risk.band_since, hs.score, a.now, config)
    if band != previous_band:
        risk.band, risk.band_since = band, a.now
    risk.score, risk.contributions = hs.score, dict(hs.contributions)
    risk.churn_probability = a.churn_probability
    week_ago = risk.score_days_ago(a.now, 7)
    risk.record(a.now, hs.score)

    candidates: list[tuple[str, float]] = []
    if previous_band is not None and band != previous_band:
        candidates.append(("band_change", float(BAND_ORDER[band])))
    if week_ago is not None and week_ago - hs.score >= config.score_drop_points:
        candidates.append(("score_drop", week_ago - hs.score))
    if (
        a.churn_probability is not None
        and a.model_version not in (None, "prior")  # the base rate alone never alerts
        and a.churn_probability >= config.churn_threshold
        and (previous_prob is None or previous_prob < config.churn_threshold)
    ):
        candidates.append(("churn_risk", a.churn_probability))

    alerts = []
    cooldown = config.alert_cooldown_hours * 3600
    for kind, severity in candidates:
        last = risk.last_alert.get(kind)
        if last is not None and a.now - last[0] < cooldown and severity <= last[1]:
            continue
        risk.last_alert[kind] = [a.now, severity]
        risk.alerts += 1
        drivers = change_drivers(previous_contrib, hs.contributions) if previous_contrib else []
        if kind == "churn_risk":
            drivers = list(a.churn_drivers()) or drivers
        if not drivers:
            drivers = score_drivers(hs.contributions, hs.components)
        alerts.append(
            RiskChange(
                alert_id=alert_id(a.customer_id, kind, a.event_id),
                customer_id=a.customer_id,
                ts=datetime.fromtimestamp(a.now, tz=UTC),
                kind=kind,
                health_score=round(hs.score, 2),
                previous_health_score=None if previous_score is None else round(previous_score, 2),
                band=band,
                previous_band=previous_band,
                churn_probability=a.churn_probability,
                drivers=drivers,
                segment=a.segment(band),
                model_version=a.model_version,
                score_change_7d=None if week_ago is None else round(hs.score - week_ago, 2),
                lifetime_value=None if a.lifetime_value is None else round(a.lifetime_value, 2),
                plan=a.plan,
            )
        )
    return alerts
