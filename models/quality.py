"""Progressive validation: each example is scored before the model learns it, as labels mature.

Over a sliding window and since the start: ROC AUC, log loss, Brier score and expected
calibration error (10 equal-width bins); an ADWIN detector on the log loss reports drift.

>>> q = ModelQuality(window=100)
>>> for i in range(200):
...     q.update(i % 10 == 0, 0.9 if i % 10 == 0 else 0.05)
>>> r = q.report()
>>> r["total"]["roc_auc"] > 0.99, r["total"]["examples"], r["window"]["examples"]
(True, 200, 100)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from river import drift, metrics, stats, utils

BINS = 10
EPS = 1e-12


@dataclass
class Calibration:
    """Expected calibration error: |mean predicted - observed rate| weighted by bin size."""

    counts: list[int] = field(default_factory=lambda: [0] * BINS)
    predicted: list[float] = field(default_factory=lambda: [0.0] * BINS)
    observed: list[float] = field(default_factory=lambda: [0.0] * BINS)

    def update(self, y: bool, p: float, sign: int = 1) -> None:
        b = min(BINS - 1, int(p * BINS))
        self.counts[b] += sign
        self.predicted[b] += sign * p
        self.observed[b] += sign * float(y)

    def error(self) -> float | None:
        n = sum(self.counts)
        if n == 0:
            return None
        return (
            sum(abs(self.predicted[b] - self.observed[b]) for b in range(BINS) if self.counts[b])
            / n
        )


@dataclass
class _Scores:
    auc: Any
    log_loss: Any
    brier: Any
    calibration: Calibration = field(default_factory=Calibration)
    n: int = 0

    def report(self) -> dict[str, Any]:
        return {
            "examples": self.n,
            "roc_auc": float(self.auc.get()) if self.n else None,
            "log_loss": float(self.log_loss.get()) if self.n else None,
            "brier": float(self.brier.get()) if self.n else None,
            "calibration_error": self.calibration.error(),
        }


class ModelQuality:
    def __init__(self, window: int = 5000) -> None:
        self.window = window
        self.total = _Scores(metrics.ROCAUC(n_thresholds=100), metrics.LogLoss(), stats.Mean())
        self.recent = _Scores(
            utils.Rolling(metrics.ROCAUC(n_thresholds=100), window),
            utils.Rolling(metrics.LogLoss(), window),
            utils.Rolling(stats.Mean(), window),
        )
        self._window: deque[tuple[bool, float]] = deque()
        self.adwin = drift.ADWIN()
        self.drifts = 0

    def update(self, y: bool, p: float) -> None:
        """One matured example: the label and the probability given before learning it."""
        p = min(1 - EPS, max(EPS, p))
        for s in (self.total, self.recent):
            s.auc.update(y, p)
            s.log_loss.update(y, p)
            s.brier.update((p - float(y)) ** 2)
            s.n += 1
        self.recent.n = min(self.recent.n, self.window)
        self.total.calibration.update(y, p)
        self.recent.calibration.update(y, p)
        self._window.append((y, p))
        if len(self._window) > self.window:
            old_y, old_p = self._window.popleft()
            self.recent.calibration.update(old_y, old_p, sign=-1)
        loss = -math.log(p if y else 1 - p)
        self.adwin.update(loss)
        if self.adwin.drift_detected:
            self.drifts += 1

    def report(self) -> dict[str, Any]:
        return {
            "total": self.total.report(),
            "window": self.recent.report(),
            "drifts_detected": self.drifts,
        }
