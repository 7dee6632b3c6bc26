"""The health score, bands with hysteresis and dwell, alerts, cooldown, idempotence."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from churnstream.models.health import (
    HealthConfig,
    HealthScore,
    band_for,
    components,
    health_score,
    next_band,
)
from churnstream.models.risk import Assessment, RiskState, alert_id, assess
from churnstream.models.scoring import (
    REDELIVERED,
    REPEATED_ID,
    CustomerRecord,
    ScoringContext,
    behaviour_in,
    counted_segment,
    step,
)
from churnstream.schemas.events import parse_event_dict
from churnstream.streams.simulation import simulate

HEALTHY = {
    "login_days_7d": 5.0,
    "days_since_login": 0.2,
    "days_since_usage": 0.2,
    "usage_30d": 500.0,
    "breadth_30d": 7.0,
    "open_tickets": 0.0,
    "tenure_days": 200.0,
    "mrr": 300.0,
    "nps_avg": 9.0,
    "csat_avg": 5.0,
}
FADING = {
    "login_days_7d": 0.2,
    "days_since_login": 12.0,
    "days_since_usage": 15.0,
    "usage_30d": 5.0,
    "breadth_30d": 1.0,
    "breadth_trend": -4.0,
    "open_tickets": 3.0,
    "urgent_open_tickets": 2.0,
    "reopens_30d": 2.0,
    "ticket_sentiment": -0.8,
    "tenure_days": 200.0,
    "mrr": 100.0,
    "downgrades_90d": 1.0,
    "mrr_change_90d": -0.4,
    "nps_avg": 2.0,
}


def test_healthy_is_green_and_fading_is_red_with_contributions_summing_to_score() -> None:
    cfg = HealthConfig()
    good, bad = health_score(HEALTHY, cfg), health_score(FADING, cfg)
    assert band_for(good.score, cfg) == "green" and band_for(bad.score, cfg) == "red"
    for hs in (good, bad):
        assert math.isclose(sum(hs.contributions.values()), hs.score)
        assert all(0 <= v <= 100 for v in hs.components.values())


def test_missing_components_drop_out_and_weights_renormalise() -> None:
    cfg = HealthConfig()
    f = {k: v for k, v in HEALTHY.items() if k not in ("nps_avg", "csat_avg", "mrr")}
    hs = health_score(f, cfg)
    assert "satisfaction" not in hs.components and "commercial" not in hs.components
    present = {k: cfg.weights[k] for k in hs.components}
    expected = sum(hs.components[k] * w for k, w in present.items()) / sum(present.values())
    assert math.isclose(hs.score, expected)


def test_configured_weights_change_the_score() -> None:
    only_support = HealthConfig(weights={"support": 1.0})
    hs = health_score(FADING, only_support)
    assert math.isclose(hs.score, components(FADING)["support"])


def test_new_customer_starts_at_the_prior_and_data_replaces_it() -> None:
    cfg = HealthConfig(prior_score=60, prior_days=14)
    day0 = health_score({**FADING, "tenure_days": 0.0}, cfg)
    assert day0.score == 60 and day0.contributions["prior"] == 60
    assert all(v == 0 for k, v in day0.contributions.items() if k != "prior")
    half = health_score({**FADING, "tenure_days": 7.0}, cfg)
    full = health_score(FADING, cfg)
    assert math.isclose(half.score, 30 + full.score / 2)


def test_peer_zscore_drives_depth() -> None:
    low = components(HEALTHY, usage_z=-2.0)["depth"]
    high = components(HEALTHY, usage_z=2.0)["depth"]
    # Half of depth is the peer percentile: Φ(2) - Φ(-2) = 0.954, so about 48 points apart.
    assert math.isclose(high - low, 50 * 0.9545, abs_tol=0.1)


def test_config_validation_and_yaml(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="unknown health components"):
        HealthConfig(weights={"vibes": 1.0})
    with pytest.raises(ValidationError):
        HealthConfig(green_at=30, red_below=40)
    path = tmp_path / "health.yaml"
    path.write_text("weights: {activity: 2, support: 1}\ngreen_at: 80\nhysteresis: 2\n")
    cfg = HealthConfig.from_yaml(path)
    assert cfg.green_at == 80 and cfg.weights == {"activity": 2, "support": 1}


@given(st.lists(st.floats(min_value=60, max_value=80), min_size=2, max_size=60))
def test_hysteresis_stops_flapping_near_a_threshold(scores: list[float]) -> None:
    """Scores wobbling within the margin around green_at never change the band."""
    cfg = HealthConfig(green_at=70, hysteresis=4, min_dwell_hours=0)
    band = "green"
    for i, s in enumerate(scores):
        wobble = 66.5 + (s - 60) / 20 * 7  # 66.5..73.5: inside 70 ± 3.5
        band = next_band(band, 0, wobble, float(i), cfg)
        assert band == "green"


def test_dwell_time_holds_a_band() -> None:
    cfg = HealthConfig(hysteresis=0, min_dwell_hours=24)
    assert next_band("green", 0, 10, 3600 * 23, cfg) == "green"
    assert next_band("green", 0, 10, 3600 * 24, cfg) == "red"


def _assessment(now: float, eid: str = "e") -> Assessment:
    return Assessment(customer_id="c1", event_id=eid, now=now, segment="{}/smb".format)


def _hs(score: float, **contrib: float) -> HealthScore:
    return HealthScore(score, {"activity": score}, contrib or {"activity": score})


def test_band_change_alert_with_drivers_and_deterministic_id() -> None:
    cfg = HealthConfig(min_dwell_hours=0)
    r = RiskState()
    assert assess(r, _hs(80, activity=50, support=30), _assessment(0), cfg) == []
    alerts = assess(r, _hs(30, activity=10, support=20), _assessment(3600, "e2"), cfg)
    assert [a.kind for a in alerts] == ["band_change"]
    a = alerts[0]
    assert (a.previous_band, a.band, a.previous_health_score, a.health_score) == (
        "green",
        "red",
        80,
        30,
    )
    assert [d.name for d in a.drivers] == ["activity", "support"]
    assert a.drivers[0].direction == "down" and a.drivers[0].contribution == -40
    assert a.alert_id == alert_id("c1", "band_change", "e2")
    assert a.segment == "red/smb"  # the segment is asked for with the band the alert moved to


def test_score_drop_within_seven_days_and_cooldown_unless_worse() -> None:
    cfg = HealthConfig(
        min_dwell_hours=0, score_drop_points=15, hysteresis=0, alert_cooldown_hours=72
    )
    r = RiskState()
    day = 86_400.0
    assess(r, _hs(69), _assessment(0), cfg)
    first = assess(r, _hs(52), _assessment(7 * day, "e2"), cfg)
    assert [a.kind for a in first] == ["score_drop"] and first[0].score_change_7d == -17
    # A day later, the same drop: within the cooldown and no worse, so nothing.
    assert assess(r, _hs(52), _assessment(8 * day, "e3"), cfg) == []
    # Worse: falls further (into red as well): both kinds go out.
    worse = assess(r, _hs(35), _assessment(8 * day + 60, "e4"), cfg)
    assert sorted(a.kind for a in worse) == ["band_change", "score_drop"]


def test_churn_probability_crossing_alerts_once() -> None:
    cfg = HealthConfig(churn_threshold=0.5)
    r = RiskState()
    assert assess(r, _hs(60), Assessment("c1", "e1", 0, str, churn_probability=0.3), cfg) == []
    out = assess(
        r, _hs(60), Assessment("c1", "e2", 10, str, churn_probability=0.7, model_version="v3"), cfg
    )
    assert [x.kind for x in out] == ["churn_risk"] and out[0].model_version == "v3"
    assert assess(r, _hs(60), Assessment("c1", "e3", 20, str, churn_probability=0.8), cfg) == []


def _event(i: int, at: datetime, etype: str = "login", **f: Any):  # type: ignore[no-untyped-def]
    return parse_event_dict(
        {"event_id": f"e{i}", "customer_id": "c1", "type": etype, "ts": at.isoformat(), **f}
    )


def test_step_is_idempotent_by_offset_and_by_event_id() -> None:
    ctx, rec = ScoringContext(), CustomerRecord.new("c1")
    t = datetime(2025, 1, 1, tzinfo=UTC)
    assert step(rec, _event(1, t), ("topic", 0, 1), ctx).status == "applied"
    before = rec.to_dict()
    again = step(rec, _event(1, t), ("topic", 0, 1), ctx)
    assert (again.status, again.reason) == ("duplicate", REDELIVERED)
    # The same event produced twice: another offset, the same event id.
    copy = step(rec, _event(1, t), ("topic", 0, 2), ctx)
    assert (copy.status, copy.reason) == ("duplicate", REPEATED_ID)
    after = rec.to_dict()
    assert after["features"] == before["features"] and after["counts"] == {"login": 1}


def test_events_older_than_the_lateness_bound_are_refused() -> None:
    ctx = ScoringContext(config=HealthConfig(lateness_days=7))
    rec = CustomerRecord.new("c1")
    t = datetime(2025, 3, 1, tzinfo=UTC)
    step(rec, _event(1, t), None, ctx)
    assert step(rec, _event(2, t - timedelta(days=6)), None, ctx).status == "applied"
    late = step(rec, _event(3, t - timedelta(days=8)), None, ctx)
    assert late.status == "too_late" and "8.0 days behind" in late.reason
    # History from years ago is fine: only the customer's own latest time matters.
    old = CustomerRecord.new("c2")
    assert step(old, _event(4, datetime(2015, 1, 1, tzinfo=UTC)), None, ctx).status == "applied"


def test_record_round_trips() -> None:
    ctx, rec = ScoringContext(), CustomerRecord.new("c1")
    t = datetime(2025, 1, 1, tzinfo=UTC)
    step(rec, _event(1, t, "subscription", action="started", plan="growth", mrr=300), None, ctx)
    step(rec, _event(2, t, "ticket", ticket_id="x", status="opened", body="broken"), None, ctx)
    assert CustomerRecord.from_dict(rec.to_dict()).to_dict() == rec.to_dict()


def test_the_shipped_health_yaml_lists_every_key_with_its_default() -> None:
    path = Path(__file__).resolve().parents[2] / "deploy" / "health.yaml"
    listed = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert set(listed) == set(HealthConfig.model_fields)
    assert HealthConfig.from_yaml(path) == HealthConfig()


def test_an_event_id_sent_again_hundreds_of_events_later_is_recognised() -> None:
    ctx, rec = ScoringContext(), CustomerRecord.new("c1")
    t = datetime(2025, 1, 1, tzinfo=UTC)
    first = _event(0, t, "usage", feature="api")
    assert step(rec, first, None, ctx).status == "applied"
    for i in range(1, 500):  # five days of busy usage
        step(rec, _event(i, t + timedelta(minutes=15 * i), "usage", feature="api"), None, ctx)
    assert step(rec, first, None, ctx).status == "duplicate"
    assert rec.counts["usage"] == 500
    # Once the copy is older than the lateness bound, it is too late, not counted either.
    step(rec, _event(999, t + timedelta(days=9), "usage", feature="api"), None, ctx)
    assert step(rec, first, None, ctx).status == "too_late"
    # The memory of ids stays bounded to the window.
    assert len(rec.seen.buckets["usage"]) <= 9


def test_an_alert_carries_the_segment_of_the_band_it_moved_to() -> None:
    """Alerts used the segment of the band from before the event: one that turned a
    customer red said "active". Each alert's segment is now the one the customer is counted
    in after its event, and red means "at-risk" unless the customer is new, dormant or gone.
    (Bands set high so that established customers turn red within 120 simulated days.)"""
    ctx = ScoringContext(config=HealthConfig(green_at=85, red_below=65))
    records: dict[str, CustomerRecord] = {}
    events = sorted(
        (parse_event_dict(e) for e in simulate(150, 120, seed=5)), key=lambda e: (e.ts, e.event_id)
    )
    into_red = 0
    for event in events:
        record = records.setdefault(event.customer_id, CustomerRecord.new(event.customer_id))
        outcome = step(record, event, None, ctx)
        assert outcome.view is not None or not outcome.alerts
        for a in outcome.alerts:
            assert outcome.view is not None
            assert a.band == record.risk.band
            assert a.segment == counted_segment(record, outcome.view)
            behaviour = a.segment.split("/")[0]
            if a.band == "red":
                assert behaviour in ("at-risk", "new", "dormant", "churned")
            if a.kind == "band_change" and a.band == "red" and a.previous_band != "red":
                # in the band from before (the one its view was scored in): "active"
                into_red += behaviour == "at-risk" != behaviour_in(outcome.view, a.previous_band)
    assert into_red >= 5  # alerts whose segment the band from before had got wrong (7)
