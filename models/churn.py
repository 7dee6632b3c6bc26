"""The online churn model: River's scaler, then logistic regression over each standardised
feature and piecewise-linear hat functions of it (an additive model), learning online.

It predicts with a running average of the weights the optimizer visits (Polyak-Ruppert
averaging; exponential over the last `average_window` examples once that many have been
learned), which is much less noisy than the last step's weights: on `churnstream evaluate`'s
backtest it lifts the AUC from 0.852 to 0.862, above the batch gradient-boosted model (see
docs/EVALUATION.md and docs/model_search/).

`probability` means: this customer cancels within the horizon (30 days) from now. A logistic
loss without class weights keeps the probabilities calibrated (reweighting the rare class
would inflate them); the intercept starts at the log-odds of the prior base rate so the first
predictions are sane, and has a learning rate of its own. Until `min_examples` labels have
matured the model answers the observed base rate (version "prior"), and the health score
drives the alerts.

The model travels as JSON (scaler statistics, weights), never as a pickle: a worker loads what
the trainer publishes on a Kafka topic, and JSON cannot run code.

>>> m = ChurnModel()
>>> for i in range(400):
...     m.learn({"days_since_login": 20.0, "usage_7d": 1.0}, True)
...     m.learn({"days_since_login": 0.5, "usage_7d": 40.0}, False)
>>> m.predict({"days_since_login": 25.0, "usage_7d": 0.0}).probability > 0.8
True
>>> m.predict({"days_since_login": 0.2, "usage_7d": 50.0}).probability < 0.2
True
>>> ChurnModel.from_json(m.to_json()).predict({"days_since_login": 25.0}) == m.predict(
...     {"days_since_login": 25.0})
True
"""

from __future__ import annotations

import functools
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from river import linear_model, optim, preprocessing

from churnstream.schemas.records import Driver

# Features the model reads (what `features.derive` gives, minus ones that leak the label).
EXCLUDED = frozenset({"cancelled"})
PRIOR_BASE_RATE = 0.05  # cancellations within 30 days among active customers, before data
SCHEMA_VERSION = (
    2  # 2: averaged weights travel too (1 is read; its average starts from the weights)
)

# Which health component each feature belongs to, for suggested weights.
COMPONENT_OF = {
    "days_since_login": "activity",
    "login_days_7d": "activity",
    "login_days_30d": "activity",
    "logins_7d": "activity",
    "logins_30d": "activity",
    "logins_momentum": "activity",
    "active_days_30d": "activity",
    "days_since_usage": "depth",
    "usage_7d": "depth",
    "usage_30d": "depth",
    "usage_momentum": "depth",
    "usage_trend": "depth",
    "breadth_30d": "breadth",
    "breadth_trend": "breadth",
    "open_tickets": "support",
    "urgent_open_tickets": "support",
    "reopens_30d": "support",
    "tickets_30d": "support",
    "resolution_days": "support",
    "ticket_sentiment": "support",
    "oldest_open_ticket_days": "support",
    "nps_avg": "satisfaction",
    "nps_latest": "satisfaction",
    "csat_avg": "satisfaction",
    "csat_latest": "satisfaction",
    "ces_avg": "satisfaction",
    "ces_latest": "satisfaction",
    "mrr": "commercial",
    "in_trial": "commercial",
    "upgrades_90d": "commercial",
    "downgrades_90d": "commercial",
    "mrr_change_90d": "commercial",
    "months_since_start": "commercial",
}


def model_input(features: dict[str, float]) -> dict[str, float]:
    """The model's view of a feature dict: numbers only, no label leaks, log of heavy tails."""
    x = {}
    for k, v in features.items():
        if k in EXCLUDED or v is None:
            continue
        v = float(v)
        if k in ("usage_7d", "usage_30d", "logins_7d", "logins_30d", "mrr"):
            v = math.log1p(max(0.0, v))
        x[k] = v
    return x


@dataclass(frozen=True, slots=True)
class Prediction:
    probability: float
    model_version: str
    drivers: tuple[Driver, ...] = ()


# Hat functions over each standardised feature, one per integer from -2 to 3.
CENTRES = (-2, -1, 0, 1, 2, 3)
_LOWEST, _HIGHEST = CENTRES[0], CENTRES[-1]
# A feature's mean and standard deviation, linear weight, and its hat functions' weights.
Terms = tuple[float, float, float, tuple[float, ...]]


def expand(z: dict[str, float]) -> dict[str, float]:
    """Each standardised feature as itself plus piecewise-linear hat functions: a linear
    model over these is an additive model, so a feature can matter most in the middle or at
    one end (a login gap of 10 days is worse than 1 and no better than 60).

    >>> sorted(expand({"a": 0.25}).items())
    [('a', 0.25), ('a~0', 0.75), ('a~1', 0.25)]
    """
    out = {}
    lowest, highest = CENTRES[0], CENTRES[-1]
    for k, v in z.items():
        out[k] = v
        if lowest - 1 < v < highest + 1:  # only the two centres around v can be non-zero
            names = _hat_names(k)
            below = math.floor(v)
            for c in (below, below + 1):
                h = 1.0 - abs(v - c)
                if h > 0 and lowest <= c <= highest:
                    out[names[c - lowest]] = h
    return out


@functools.cache
def _hat_names(feature: str) -> tuple[str, ...]:
    """The names of a feature's hat terms, formatted once (formatting them on every
    prediction was most of its cost)."""
    return tuple(f"{feature}~{c:g}" for c in CENTRES)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


class ChurnModel:
    """Standard scaling, then logistic regression; learns one example at a time and predicts
    with its averaged weights."""

    def __init__(
        self,
        learning_rate: float = 0.1,
        l2: float = 0.01,
        min_examples: int = 200,
        version: int = 0,
        average_window: int = 10_000,
    ) -> None:
        self.learning_rate, self.l2, self.min_examples = learning_rate, l2, min_examples
        self.average_window = average_window
        self.scaler = preprocessing.StandardScaler()
        self.lr = linear_model.LogisticRegression(
            # AdaGrad: a rate per weight suits the sparse hat features (best of SGD, Adam and
            # AdaGrad in `churnstream evaluate`).
            optimizer=optim.AdaGrad(learning_rate),
            l2=l2,
            intercept_init=_logit(PRIOR_BASE_RATE),
            intercept_lr=learning_rate / 2,
        )
        self.labels: Counter[bool] = Counter()
        self.version = version
        # The averaged weights and intercept: what `predict` and `explain` use.
        self.weights: dict[str, float] = {}
        self.intercept = self.lr.intercept
        self._terms: dict[str, Terms] | None = None  # `raw_probability`'s, until the next learn

    @property
    def examples(self) -> int:
        return self.labels[True] + self.labels[False]

    @property
    def base_rate(self) -> float:
        """Observed share of positives, smoothed towards the prior."""
        return (self.labels[True] + 20 * PRIOR_BASE_RATE) / (self.examples + 20)

    @property
    def ready(self) -> bool:
        return self.examples >= self.min_examples and self.labels[True] > 0

    @property
    def version_name(self) -> str:
        return f"churn-lr-v{self.version}" if self.ready else "prior"

    def _design(self, features: dict[str, float]) -> dict[str, float]:
        return expand(self.scaler.transform_one(model_input(features)))

    def learn(self, features: dict[str, float], label: bool) -> None:
        self.scaler.learn_one(model_input(features))
        self.lr.learn_one(self._design(features), label)
        self.labels[label] += 1
        self._average()
        self._terms = None

    def _average(self) -> None:
        rate = max(1.0 / self.examples, 1.0 / self.average_window)
        avg = self.weights
        for k, w in self.lr._weights.items():
            a = avg.get(k, 0.0)
            avg[k] = a + rate * (w - a)
        self.intercept += rate * (self.lr.intercept - self.intercept)

    def raw_probability(self, features: dict[str, float]) -> float:
        """The logistic of the intercept plus the averaged weights times `_design(features)`,
        without building the design: each feature's scaling and weights are looked up once
        (`_compile`). A worker predicts on every event; this takes 17 µs where the design
        dict took 31 (docs/BENCHMARKS.md). Same terms in the same order: the same float."""
        if self._terms is None:
            self._terms = self._compile()
        terms, total = self._terms, 0.0
        for k, x in model_input(features).items():
            term = terms.get(k)
            if term is None:  # a feature the model never saw: scaled to 0, no weight
                continue
            mean, std, linear, hats = term
            v = (x - mean) / std if std else 0.0
            total += linear * v
            if _LOWEST - 1 < v < _HIGHEST + 1:  # the two hat functions around v (`expand`)
                below = math.floor(v)
                if (h := 1.0 - (v - below)) > 0 and _LOWEST <= below <= _HIGHEST:
                    total += hats[below - _LOWEST] * h
                if (h := 1.0 - (below + 1 - v)) > 0 and _LOWEST <= below + 1 <= _HIGHEST:
                    total += hats[below + 1 - _LOWEST] * h
        z = self.intercept + total
        return 1.0 / (1.0 + math.exp(-min(30.0, max(-30.0, z))))

    def _compile(self) -> dict[str, Terms]:
        """Per feature the scaler has seen: its mean and deviation (River's scaling), its
        linear weight and its hat functions' weights."""
        w, means, variances = self.weights, self.scaler.means, self.scaler.vars
        return {
            k: (
                means.get(k, 0.0),
                variances.get(k, 0.0) ** 0.5,
                w.get(k, 0.0),
                tuple(w.get(name, 0.0) for name in _hat_names(k)),
            )
            for k in means
        }

    def predict(self, features: dict[str, float], top: int = 3) -> Prediction:
        """The probability of cancelling within the horizon, and what raised it most."""
        if not self.ready:
            return Prediction(self.base_rate, "prior")
        return Prediction(
            self.raw_probability(features), self.version_name, self.explain(features, top)
        )

    def explain(self, features: dict[str, float], top: int = 3) -> tuple[Driver, ...]:
        """The features that moved the probability most: weight x scaled value, a feature's
        linear and hat terms together."""
        x = self._design(features)
        weights = self.weights
        contributions: dict[str, float] = defaultdict(float)
        for k, v in x.items():
            contributions[k.split("~", 1)[0]] += weights.get(k, 0.0) * v
        ranked = sorted(contributions.items(), key=lambda kv: -abs(kv[1]))[:top]
        return tuple(
            Driver(name=k, contribution=round(c, 4), direction="up" if c > 0 else "down")
            for k, c in ranked
            if c != 0
        )

    def suggested_weights(self) -> dict[str, Any]:
        """Health component weights implied by the model: each component's share of the
        absolute standardised weights of its features, and the data they rest on."""
        totals: dict[str, float] = defaultdict(float)
        for k, w in self.weights.items():
            name = k.split("~", 1)[0]
            component = COMPONENT_OF.get(name) or (
                name.removeprefix("health_") if name.startswith("health_") else None
            )
            if component is not None:
                totals[component] += abs(w)
        s = sum(totals.values())
        return {
            "weights": {k: round(v / s, 4) for k, v in sorted(totals.items())} if s else {},
            "examples": self.examples,
            "positives": self.labels[True],
            "model_version": self.version_name,
            "note": "suggestions only: the health score keeps its configured weights",
        }

    # -- JSON -------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "version": self.version,
            "params": {
                "learning_rate": self.learning_rate,
                "l2": self.l2,
                "min_examples": self.min_examples,
                "average_window": self.average_window,
            },
            "labels": {"positive": self.labels[True], "negative": self.labels[False]},
            "scaler": {
                "counts": dict(self.scaler.counts),
                "means": dict(self.scaler.means),
                "vars": dict(self.scaler.vars),
            },
            "weights": dict(self.lr.weights),
            "intercept": self.lr.intercept,
            "optimizer": {"g2": dict(self.lr.optimizer.g2), "n": self.lr.optimizer.n_iterations},
            "average": {"weights": dict(self.weights), "intercept": self.intercept},
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ChurnModel:
        if d.get("schema") not in (1, SCHEMA_VERSION):
            msg = f"churn model schema {d.get('schema')!r}, expected {SCHEMA_VERSION}"
            raise ValueError(msg)
        m = cls(version=d["version"], **d["params"])
        m.labels = Counter({True: d["labels"]["positive"], False: d["labels"]["negative"]})
        m.scaler.counts.update(d["scaler"]["counts"])
        m.scaler.means.update(d["scaler"]["means"])
        m.scaler.vars.update(d["scaler"]["vars"])
        for k, w in d["weights"].items():
            m.lr._weights[k] = w
        m.lr.intercept = d["intercept"]
        m.lr.optimizer.g2.update(d["optimizer"]["g2"])
        m.lr.optimizer.n_iterations = d["optimizer"]["n"]
        average = d.get("average") or {"weights": d["weights"], "intercept": d["intercept"]}
        m.weights = dict(average["weights"])
        m.intercept = average["intercept"]
        return m
