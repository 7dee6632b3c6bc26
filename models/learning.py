"""The learning path shared by the trainer and the offline replay.

Snapshots and cancellations go into the labeler; matured examples are first scored (the
probability the model gave when the snapshot was taken, so the validation has the labels'
real delay) and then learned. `predictor()` is what scoring calls.

>>> from churnstream.models.labels import DAY, Snapshot
>>> learner = ChurnLearner(ChurnModel(min_examples=2))
>>> learner.snapshot(Snapshot("c1", 0.0, {"days_since_login": 9.0}))
>>> learner.snapshot(Snapshot("c2", 0.0, {"days_since_login": 0.5}))
>>> learner.cancelled("c1", 10 * DAY), learner.advance(40 * DAY)
(1, 2)
>>> learner.model.labels[True], learner.model.labels[False], learner.predictor()({}).model_version
(1, 1, 'churn-lr-v0')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

from churnstream.models.churn import ChurnModel
from churnstream.models.labels import ChurnLabeler, Example, Snapshot
from churnstream.models.quality import ModelQuality
from churnstream.models.scoring import ChurnPrediction, ChurnPredictor


def predictor_for(model: ChurnModel) -> ChurnPredictor:
    """What scoring calls: the model's probability, version and drivers for a feature dict."""

    def predict(features: dict[str, float]) -> ChurnPrediction:
        if not model.ready:
            return ChurnPrediction(model.base_rate, "prior")
        return ChurnPrediction(
            model.raw_probability(features), model.version_name, partial(model.explain, features)
        )

    return predict


@dataclass
class ChurnLearner:
    model: ChurnModel = field(default_factory=ChurnModel)
    labeler: ChurnLabeler = field(default_factory=ChurnLabeler)
    quality: ModelQuality = field(default_factory=ModelQuality)
    learned: int = 0
    record: list[Example] | None = None  # keep every matured example here (evaluation)

    def snapshot(self, snap: Snapshot) -> None:
        self.labeler.add(snap)

    def cancelled(self, customer_id: str, at: float) -> int:
        return int(self.labeler.cancelled(customer_id, at))

    def advance(self, watermark: float) -> int:
        return self.learn(self.labeler.advance(watermark))

    def learn(self, examples: list[Example]) -> int:
        for e in examples:
            if e.snapshot.probability is not None and e.snapshot.model_version not in (
                None,
                "prior",
            ):
                self.quality.update(e.label, e.snapshot.probability)
            self.model.learn(e.snapshot.features, e.label)
        self.learned += len(examples)
        if self.record is not None:
            self.record.extend(examples)
        return len(examples)

    def predictor(self) -> ChurnPredictor:
        return predictor_for(self.model)

    def report(self) -> dict[str, Any]:
        return {
            "model_version": self.model.version_name,
            "examples": self.model.examples,
            "positives": self.model.labels[True],
            "base_rate": self.model.base_rate,
            "pending_snapshots": len(self.labeler),
            "quality": self.quality.report(),
        }
