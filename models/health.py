"""The explainable health score: six components, 0-100 each, combined with weights.

Components (each 0-100; a component without data drops out and the others' weights are
renormalised):

- activity: decayed login days (7-day half-life) and days since the last login;
- depth: decayed usage (30-day half-life) against peers on the same plan (a z-score through the
  normal CDF), or an absolute curve until there are enough peers;
- breadth: distinct features used in the last four weeks, and its trend;
- support: open and urgent tickets, reopens, resolution time and ticket sentiment;
- satisfaction: decayed NPS, CSAT and CES averages (absent until a survey arrives);
- commercial: trial, cancellation, upgrades and downgrades, MRR movement (absent until a
  subscription event arrives).

A new customer starts from a neutral prior (`prior_score`, default 60) that the data replaces
linearly over `prior_days` (default 14) of tenure. Every score carries each component's
contribution in points, so the change between two scores can be explained.

>>> cfg = HealthConfig()
>>> hs = health_score({"login_days_7d": 4.0, "days_since_login": 0.5, "usage_30d": 300.0,
...                    "breadth_30d": 6.0, "open_tickets": 0.0, "tenure_days": 60.0}, cfg)
>>> hs.score > 70, sorted(hs.components) == ["activity", "breadth", "depth", "support"]
(True, True)
>>> abs(sum(hs.contributions.values()) - hs.score) < 1e-9
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

COMPONENTS = ("activity", "depth", "breadth", "support", "satisfaction", "commercial")
Band = Literal["green", "yellow", "red"]
BAND_ORDER: dict[str, int] = {"green": 0, "yellow": 1, "red": 2}


class HealthConfig(BaseModel):
    """Weights, band thresholds and alert rules. Set from settings or a YAML file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    weights: dict[str, float] = Field(
        default_factory=lambda: {
            "activity": 0.25,
            "depth": 0.20,
            "breadth": 0.15,
            "support": 0.15,
            "satisfaction": 0.15,
            "commercial": 0.10,
        }
    )
    green_at: float = Field(default=70.0, description="score at or above: green")
    red_below: float = Field(default=40.0, description="score below: red")
    hysteresis: float = Field(default=4.0, ge=0, description="points past a threshold to move")
    min_dwell_hours: float = Field(default=24.0, ge=0, description="event time in a band first")
    prior_score: float = Field(default=60.0, ge=0, le=100)
    prior_days: float = Field(default=14.0, ge=0)
    min_peers: int = Field(default=30, ge=1, description="peers on a plan before judging by them")
    score_drop_points: float = Field(default=15.0, gt=0, description="a fall this large in 7 days")
    churn_threshold: float = Field(default=0.5, gt=0, lt=1)
    alert_cooldown_hours: float = Field(default=72.0, ge=0)
    lateness_days: float = Field(
        default=7.0,
        gt=0,
        le=30,
        description="events older than this behind the latest of their type dead-letter",
    )
    margin: float = Field(default=0.8, gt=0, le=1, description="gross margin for lifetime value")
    annual_discount_rate: float = Field(default=0.10, ge=0, lt=1)

    @model_validator(mode="after")
    def _check(self) -> HealthConfig:
        unknown = set(self.weights) - set(COMPONENTS)
        if unknown:
            msg = f"unknown health components {sorted(unknown)}; known: {list(COMPONENTS)}"
            raise ValueError(msg)
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            msg = "health weights must be non-negative and not all zero"
            raise ValueError(msg)
        if not self.red_below < self.green_at:
            msg = "red_below must be below green_at"
            raise ValueError(msg)
        return self

    @classmethod
    def from_yaml(cls, path: Path) -> HealthConfig:
        return cls.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


@dataclass(frozen=True, slots=True)
class HealthScore:
    score: float
    components: dict[str, float]  # component -> 0..100
    contributions: dict[str, float]  # component -> points of the score (with the prior's share)


def _sat(x: float, scale: float) -> float:
    """0 at 0, approaching 1: how much of `scale` is 'enough'."""
    return 1.0 - math.exp(-max(0.0, x) / scale)


def _clip(x: float) -> float:
    return max(0.0, min(100.0, x))


def normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def components(f: dict[str, float], usage_z: float | None = None) -> dict[str, float]:
    """Each component with data, 0-100, from a feature dict (see `features.derive`)."""
    c: dict[str, float] = {}
    if "days_since_login" in f or f.get("login_days_7d", 0) > 0:
        recency = 2.0 ** (-f.get("days_since_login", 60.0) / 7.0)
        level = _sat(f.get("login_days_7d", 0.0), 2.5)
        # Momentum against the customer's own last month weighs as much as the level: a big
        # account that lost most of its logins is still "busy" in absolute terms.
        momentum = min(1.0, f.get("logins_momentum", 1.0))
        c["activity"] = _clip(100 * (0.35 * level + 0.25 * recency + 0.4 * momentum))
    if "days_since_usage" in f or "days_since_login" in f:
        if usage_z is not None:
            depth = normal_cdf(usage_z)
        else:
            depth = _sat(f.get("usage_30d", 0.0), 120.0)
        momentum = min(1.0, f.get("usage_momentum", 1.0))
        trend = max(-0.25, min(0.15, 0.15 * f.get("usage_trend", 0.0)))
        c["depth"] = _clip(100 * (0.5 * depth + 0.5 * momentum + trend))
        breadth = _sat(f.get("breadth_30d", 0.0), 3.0)
        c["breadth"] = _clip(100 * breadth + 5.0 * max(-3.0, min(2.0, f.get("breadth_trend", 0.0))))
    support = 100.0
    support -= 10.0 * f.get("open_tickets", 0.0)
    support -= 12.0 * f.get("urgent_open_tickets", 0.0)
    support -= 8.0 * f.get("reopens_30d", 0.0)
    support -= 25.0 * max(0.0, -f.get("ticket_sentiment", 0.0))
    support -= 1.5 * max(0.0, f.get("resolution_days", 0.0) - 2.0)
    support -= 1.0 * max(0.0, f.get("oldest_open_ticket_days", 0.0) - 5.0)
    c["support"] = _clip(support)
    sat = []
    if "nps_avg" in f:
        sat.append(f["nps_avg"] / 10.0)
    if "csat_avg" in f:
        sat.append((f["csat_avg"] - 1.0) / 4.0)
    if "ces_avg" in f:
        sat.append((f["ces_avg"] - 1.0) / 6.0)
    if sat:
        c["satisfaction"] = _clip(100 * sum(sat) / len(sat))
    if "mrr" in f:
        if f.get("cancelled"):
            commercial = 0.0
        else:
            commercial = 55.0 if f.get("in_trial") else 75.0
            commercial += 10.0 * f.get("upgrades_90d", 0.0) - 20.0 * f.get("downgrades_90d", 0.0)
            commercial += 20.0 * max(-1.0, min(1.0, f.get("mrr_change_90d", 0.0)))
        c["commercial"] = _clip(commercial)
    return c


def health_score(
    f: dict[str, float], config: HealthConfig, usage_z: float | None = None
) -> HealthScore:
    """Score 0-100 with components and contributions; weights renormalised over present ones."""
    comps = components(f, usage_z)
    weights = {k: config.weights.get(k, 0.0) for k in comps}
    total = sum(weights.values())
    confidence = (
        1.0 if config.prior_days == 0 else min(1.0, f.get("tenure_days", 0.0) / config.prior_days)
    )
    contributions: dict[str, float] = {}
    if total > 0:
        for k, v in comps.items():
            contributions[k] = confidence * v * weights[k] / total
    else:
        confidence = 0.0
    if confidence < 1.0:
        contributions["prior"] = (1.0 - confidence) * config.prior_score
    score = _clip(sum(contributions.values()))
    return HealthScore(score=score, components=comps, contributions=contributions)


def band_for(score: float, config: HealthConfig) -> Band:
    """The band a score falls in, without hysteresis."""
    if score >= config.green_at:
        return "green"
    if score < config.red_below:
        return "red"
    return "yellow"


def next_band(
    current: Band | None, since: float | None, score: float, now: float, config: HealthConfig
) -> Band:
    """The band after `score` at `now`, with hysteresis and a minimum dwell time.

    A customer leaves its band only when the score is past the threshold by `hysteresis`
    points, and only after `min_dwell_hours` of event time in it.

    >>> cfg = HealthConfig(green_at=70, red_below=40, hysteresis=4, min_dwell_hours=0)
    >>> next_band("green", 0, 68, 10, cfg), next_band("green", 0, 65, 10, cfg)
    ('green', 'yellow')
    >>> next_band("yellow", 0, 72, 10, cfg), next_band("yellow", 0, 75, 10, cfg)
    ('yellow', 'green')
    """
    plain = band_for(score, config)
    if current is None:
        return plain
    if plain == current:
        return current
    if since is not None and now - since < config.min_dwell_hours * 3600:
        return current
    shifted = band_for(score + config.hysteresis, config)  # worse only if still worse when raised
    if BAND_ORDER[plain] > BAND_ORDER[current]:
        return shifted if BAND_ORDER[shifted] > BAND_ORDER[current] else current
    shifted = band_for(score - config.hysteresis, config)
    return shifted if BAND_ORDER[shifted] < BAND_ORDER[current] else current
