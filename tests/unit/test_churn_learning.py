"""Delayed labels, the online churn model and its progressive validation."""

from __future__ import annotations

import math
import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnstream.models.churn import ChurnModel, expand
from churnstream.models.labels import DAY, ChurnLabeler, Snapshot
from churnstream.models.learning import ChurnLearner
from churnstream.models.quality import ModelQuality
from churnstream.models.replay import replay
from churnstream.models.scoring import ScoringContext
from churnstream.schemas.events import parse_event_dict
from churnstream.streams.simulation import simulate

H, LATE = 30 * DAY, 7 * DAY


def snap(customer: str, day: float, **features: float) -> Snapshot:
    return Snapshot(customer, day * DAY, features or {"x": day})


def labels(examples: list) -> list[tuple[str, float, bool]]:  # type: ignore[type-arg]
    return [(e.customer_id, e.snapshot.at / DAY, e.label) for e in examples]


def test_a_cancellation_marks_the_horizon_before_it_positive_and_older_ones_negative() -> None:
    """Day 10 is the horizon's edge for a cancellation on day 40: it counts."""
    lab = ChurnLabeler(horizon=H, lateness=LATE)
    for day in (0, 9, 10, 40, 41):
        lab.add(snap("c", day))
    # Cancelled on day 40: snapshots on days 10..40 are within 30 days before it.
    assert lab.cancelled("c", 40 * DAY) == 2
    lab.add(snap("c", 45))  # after the cancellation (came back): not about it
    # Day 76: the snapshots up to day 39 have matured (30-day horizon, 7 days' lateness).
    assert labels(lab.advance(76 * DAY)) == [("c", 0, False), ("c", 9, False), ("c", 10, True)]
    out = lab.advance(200 * DAY)
    assert labels(out) == [
        ("c", 40, True),
        ("c", 41, False),  # taken after the cancellation
        ("c", 45, False),
    ]


def test_examples_are_released_only_after_horizon_and_lateness_both_classes_alike() -> None:
    lab = ChurnLabeler(horizon=H, lateness=LATE)
    lab.add(snap("churner", 0))
    lab.add(snap("stayer", 0))
    lab.cancelled("churner", 5 * DAY)
    assert lab.advance(36.9 * DAY) == []  # the positive is known, but not released early
    assert labels(lab.advance(37 * DAY)) == [("churner", 0, True), ("stayer", 0, False)]


def test_a_late_cancellation_within_the_lateness_bound_still_counts() -> None:
    lab = ChurnLabeler(horizon=H, lateness=LATE)
    lab.add(snap("c", 0))
    assert lab.advance(33 * DAY) == []  # event time passed the horizon ...
    lab.cancelled("c", 29 * DAY)  # ... when the cancellation on day 29 arrives late
    assert labels(lab.advance(37 * DAY)) == [("c", 0, True)]


def test_no_label_uses_anything_after_the_horizon() -> None:
    lab = ChurnLabeler(horizon=H, lateness=LATE)
    lab.add(snap("c", 0))
    lab.cancelled("c", 30.5 * DAY)  # just after the horizon
    assert labels(lab.advance(100 * DAY)) == [("c", 0, False)]


def test_snapshots_delivered_twice_are_labelled_once() -> None:
    lab = ChurnLabeler(horizon=H, lateness=LATE)
    assert lab.add(snap("c", 0)) and not lab.add(snap("c", 0))
    assert len(lab.advance(100 * DAY)) == 1
    assert not lab.add(snap("c", 0))  # still remembered after it was labelled


@settings(max_examples=80, deadline=None)
@given(
    days=st.lists(st.integers(0, 120), min_size=1, max_size=30, unique=True),
    cancel=st.one_of(st.none(), st.integers(0, 150)),
)
def test_every_snapshot_gets_exactly_its_true_label(days: list[int], cancel: int | None) -> None:
    """Snapshots and the cancellation arrive in event-time order; every snapshot is
    labelled once, positive exactly when the cancellation falls within its horizon."""
    lab = ChurnLabeler(horizon=H, lateness=LATE)
    out = []
    for t in sorted({*days, *([cancel] if cancel is not None else [])}):
        if t in days:
            lab.add(snap("c", t))
        if t == cancel:
            lab.cancelled("c", t * DAY)
        out += lab.advance(t * DAY)
    out += lab.advance(400 * DAY)
    assert sorted(e.snapshot.at / DAY for e in out) == sorted(days)
    for e in out:
        s = e.snapshot.at / DAY
        assert e.label == (cancel is not None and s <= cancel <= s + 30), (s, cancel)


def test_the_model_learns_separable_churn_and_stays_calibrated_on_a_base_rate() -> None:
    rng = random.Random(3)
    m = ChurnModel(min_examples=50)
    assert m.predict({"days_since_login": 1.0}).model_version == "prior"
    for _ in range(6000):  # it predicts with averaged weights, which lag the first thousands
        churner = rng.random() < 0.1
        gap = rng.uniform(8, 30) if churner else rng.uniform(0, 10)
        m.learn({"days_since_login": gap, "usage_7d": rng.uniform(0, 50)}, churner)
    p_hi = m.predict({"days_since_login": 25.0, "usage_7d": 20.0})
    p_lo = m.predict({"days_since_login": 1.0, "usage_7d": 20.0})
    assert p_hi.probability > 0.7
    assert p_lo.probability < 0.05
    assert p_hi.drivers[0].name == "days_since_login" and p_hi.drivers[0].direction == "up"
    # Calibrated on average: the mean prediction is near the base rate.
    xs = [{"days_since_login": rng.uniform(0, 30), "usage_7d": 10.0} for _ in range(500)]
    mean_p = sum(m.raw_probability(x) for x in xs) / len(xs)
    assert 0.0 < mean_p < 0.6


def test_it_predicts_with_the_mean_of_the_weights_it_visited_then_a_moving_average() -> None:
    rng = random.Random(5)
    m = ChurnModel(min_examples=1, average_window=50)
    visited: list[dict[str, float]] = []
    intercepts: list[float] = []
    for i in range(120):
        m.learn({"a": rng.random(), "b": rng.random() * 5}, rng.random() < 0.3)
        visited.append(dict(m.lr._weights))
        intercepts.append(m.lr.intercept)
        if i + 1 == 50:  # the plain mean of every step so far
            for k in m.weights:
                mean = sum(w.get(k, 0.0) for w in visited) / len(visited)
                assert math.isclose(m.weights[k], mean, rel_tol=1e-9, abs_tol=1e-12)
            assert math.isclose(m.intercept, sum(intercepts) / 50, rel_tol=1e-9)
    # After the window, older steps fade: the average follows the last ones, not the first.
    last = sum(visited[-1].values())
    first = sum(visited[0].values())
    assert abs(sum(m.weights.values()) - last) < abs(sum(m.weights.values()) - first)
    # And it is what predicts: the probability is the logistic of the averaged weights.
    x = {"a": 0.5, "b": 2.5}
    assert m.raw_probability(x) == _design_probability(m, x)
    assert m.raw_probability(x) != m.lr.predict_proba_one(m._design(x))[True]


def test_a_schema_1_model_loads_with_its_average_starting_at_its_weights() -> None:
    rng = random.Random(2)
    m = ChurnModel(min_examples=10)
    for _ in range(200):
        m.learn({"a": rng.random()}, rng.random() < 0.3)
    old = m.to_json()
    old["schema"] = 1
    del old["average"], old["params"]["average_window"]
    back = ChurnModel.from_json(old)
    assert back.weights == m.lr.weights and back.intercept == m.lr.intercept
    assert back.predict({"a": 0.9}).model_version == m.predict({"a": 0.9}).model_version
    with pytest.raises(ValueError, match="schema 9"):
        ChurnModel.from_json({**old, "schema": 9})


def test_the_model_travels_as_json_and_predicts_the_same() -> None:
    rng = random.Random(1)
    m = ChurnModel(min_examples=10, version=7)
    for _ in range(300):
        m.learn({"a": rng.random(), "b": rng.random() * 5}, rng.random() < 0.3)
    wire = orjson.dumps(m.to_json())
    back = ChurnModel.from_json(orjson.loads(wire))
    x = {"a": 0.4, "b": 2.0}
    assert back.predict(x) == m.predict(x) and back.version_name == "churn-lr-v7"
    # It goes on learning identically (the optimizer's state travelled too).
    for model in (m, back):
        model.learn(x, True)
    assert math.isclose(back.raw_probability(x), m.raw_probability(x), rel_tol=1e-12)


def test_hat_functions_sum_to_one_inside_the_knots() -> None:
    for z in (-1.7, -0.2, 0.0, 1.3, 2.9):
        hats = {k: v for k, v in expand({"f": z}).items() if "~" in k}
        assert math.isclose(sum(hats.values()), 1.0)


@given(st.floats(allow_nan=False, allow_infinity=True) | st.integers(-5, 5).map(float))
def test_expand_is_the_hat_definition(z: float) -> None:
    """`expand` visits only the two centres around z; it must equal trying every centre."""
    expected = {"f": z} | {f"f~{c}": 1.0 - abs(z - c) for c in range(-2, 4) if 1.0 - abs(z - c) > 0}
    assert expand({"f": z}) == expected
    assert list(expand({"f": z})) == list(expected)  # same order, so same sums


def test_progressive_quality_and_drift() -> None:
    rng = random.Random(2)
    q = ModelQuality(window=500)
    for _ in range(3000):  # a good model ...
        y = rng.random() < 0.2
        q.update(y, 0.7 if y else 0.1)
    before = q.report()
    assert before["window"]["roc_auc"] > 0.95 and before["window"]["calibration_error"] < 0.15
    for _ in range(3000):  # ... whose world changed: now it is wrong
        y = rng.random() < 0.2
        q.update(y, 0.1 if y else 0.7)
    after = q.report()
    assert (
        after["window"]["roc_auc"] < 0.1
        and after["window"]["log_loss"] > before["window"]["log_loss"]
    )
    assert after["drifts_detected"] > before["drifts_detected"]
    assert after["total"]["examples"] == 6000 and after["window"]["examples"] == 500


def test_replay_learns_in_event_time_and_scores_with_what_it_knew_then() -> None:
    events = [parse_event_dict(e) for e in simulate(customers=150, days=120, seed=5)]
    learner = ChurnLearner(ChurnModel(min_examples=100), record=[])
    result = replay(events, ScoringContext(), learner=learner)
    examples = learner.record or []
    assert learner.model.ready and learner.model.labels[True] > 20
    # Every example matured before it was learned, and none before its horizon.
    assert all(e.labelled_at >= e.snapshot.at + H for e in examples)
    # Early snapshots have the prior (the base rate); later ones the model and its version.
    assert examples[0].snapshot.model_version == "prior"
    versions = {e.snapshot.model_version for e in examples}
    assert "churn-lr-v0" in versions
    # The model beats chance on the examples it was scored on before learning them.
    report = learner.report()["quality"]["total"]
    assert report["examples"] > 500 and report["roc_auc"] > 0.65
    # Customers carry the probability in the records the replay ends with.
    assert any(a.churn_probability is not None for a in result.alerts[-50:])


def _design_probability(m: ChurnModel, x: dict[str, float]) -> float:
    """The probability the long way: the design dict (River's scaling, the hat functions),
    its terms added one by one (Python 3.12's `sum` of floats compensates, which may differ
    in the last bit)."""
    total = 0.0
    for k, v in m._design(x).items():
        total += m.weights.get(k, 0.0) * v
    z = m.intercept + total
    return 1 / (1 + math.exp(-min(30.0, max(-30.0, z))))


def test_the_one_pass_probability_is_the_design_dicts_to_the_last_bit() -> None:
    rng = random.Random(5)
    m = ChurnModel(min_examples=10)
    for _ in range(300):
        m.learn({"a": rng.gauss(0, 1), "b": rng.random() * 5, "flat": 1.0}, rng.random() < 0.3)
    # Values on and between the knots, beyond them, a feature with no variance ("flat"), one
    # the model never saw ("new"), the log-scaled ones and a None.
    xs = [
        {"a": rng.gauss(0, 2), "b": rng.random() * 8, "flat": 1.0, "new": 3.0, "mrr": 90.0}
        for _ in range(500)
    ]
    xs += [{"a": float(k), "b": None} for k in range(-4, 5)]  # type: ignore[dict-item]
    assert [m.raw_probability(x) for x in xs] == [_design_probability(m, x) for x in xs]
    # Learning again changes the weights: the next prediction uses them, not a stale copy.
    before = m.raw_probability(xs[0])
    m.learn(xs[0], True)
    assert m.raw_probability(xs[0]) == _design_probability(m, xs[0]) != before
