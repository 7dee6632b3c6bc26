"""`churnstream evaluate`: backtest the churn model on simulated history.

For each seed: simulate customers over months, replay them through the live learning path
(the online model learns from labels as they mature and scores with what it knew then), and
compare, on snapshots taken in the later months, the AUC of

- the online model (its probability at snapshot time),
- the health score alone (100 - score as the risk),
- a batch gradient-boosted model (scikit-learn's HistGradientBoostingClassifier) trained
  offline on the earlier months' labelled snapshots, with the same features.

Only snapshots whose label had matured by the end of the history count.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from churnstream.models.churn import ChurnModel, model_input
from churnstream.models.labels import DAY, Example
from churnstream.models.learning import ChurnLearner
from churnstream.models.replay import replay
from churnstream.models.scoring import ScoringContext
from churnstream.schemas.events import parse_event_dict
from churnstream.streams.simulation import DEFAULT_START, simulate


@dataclass(frozen=True)
class SeedResult:
    seed: int
    events: int
    train_examples: int
    test_examples: int
    test_positives: int
    auc_online: float
    auc_health: float
    auc_batch: float
    calibration_error_online: float | None
    seconds: float


def _auc(labels: list[bool], scores: list[float]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def evaluate_seed(customers: int, days: int, seed: int, split_day: int) -> SeedResult:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.feature_extraction import DictVectorizer

    started = time.monotonic()
    events = [parse_event_dict(e) for e in simulate(customers, days, seed)]
    learner = ChurnLearner(ChurnModel(), record=[])
    replay(events, ScoringContext(), learner=learner)
    examples: list[Example] = learner.record or []
    split = DEFAULT_START.timestamp() + split_day * DAY
    train = [e for e in examples if e.snapshot.at < split]
    test = [
        e
        for e in examples
        if e.snapshot.at >= split
        and e.snapshot.probability is not None
        and e.snapshot.model_version not in (None, "prior")
    ]
    labels = [e.label for e in test]
    online = [e.snapshot.probability or 0.0 for e in test]
    health = [100.0 - (e.snapshot.health_score or 0.0) for e in test]
    vec = DictVectorizer(sparse=False)
    x_train = vec.fit_transform([model_input(e.snapshot.features) for e in train])
    gbm = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, random_state=seed)
    gbm.fit(x_train, [e.label for e in train])
    batch = gbm.predict_proba(vec.transform([model_input(e.snapshot.features) for e in test]))[:, 1]
    from churnstream.models.quality import ModelQuality

    q = ModelQuality(window=len(test) or 1)
    for y, p in zip(labels, online, strict=True):
        q.update(y, p)
    return SeedResult(
        seed=seed,
        events=len(events),
        train_examples=len(train),
        test_examples=len(test),
        test_positives=sum(labels),
        auc_online=_auc(labels, online),
        auc_health=_auc(labels, health),
        auc_batch=_auc(labels, list(batch)),
        calibration_error_online=q.report()["total"]["calibration_error"],
        seconds=time.monotonic() - started,
    )


def summarise(results: list[SeedResult]) -> dict[str, Any]:
    def mean(name: str) -> float:
        return statistics.fmean(getattr(r, name) for r in results)

    return {
        "seeds": [r.seed for r in results],
        "auc_online": mean("auc_online"),
        "auc_health": mean("auc_health"),
        "auc_batch": mean("auc_batch"),
        "test_examples": sum(r.test_examples for r in results),
        "test_positives": sum(r.test_positives for r in results),
    }
