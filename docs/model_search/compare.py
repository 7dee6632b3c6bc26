"""Compare churn model variants on the labelled snapshots `collect.py` recorded: each variant
learns the examples in the order, and at the event time, they matured in the replay, and
scores each test snapshot (taken on or after the split day) with what it had learned by the
snapshot's time, as `churnstream evaluate` does (the default model reproduces its online AUC).

    .venv/bin/python docs/model_search/compare.py --seeds 1,2,3 default hat \\
        cm:l2=0.0001,average_window=1 cm:learning_rate=0.02,replay=1

`cm:<ChurnModel keyword>=<value>,...` varies the model's parameters (`average_window=1` is
the model without weight averaging); `replay=k` also relearns k earlier examples per example.
"""

from __future__ import annotations

import argparse
import bisect
import math
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from river import forest, tree
from sklearn.metrics import roc_auc_score

from churnstream.models.churn import ChurnModel, model_input
from churnstream.models.quality import ModelQuality
from churnstream.streams.simulation import DEFAULT_START

DAY = 86400.0
OUT = Path(".cache/model_search")


class Replayed:
    """Learns each new example, then `k` examples drawn from a reservoir of earlier ones."""

    def __init__(self, model: ChurnModel, k: int, size: int = 20000) -> None:
        self.model, self.k, self.size = model, k, size
        self.buffer: list[tuple[dict[str, float], bool]] = []
        self.seen = 0
        self.rng = random.Random(0)  # noqa: S311 - sampling, not security

    def learn(self, features: dict[str, float], label: bool) -> None:
        self.model.learn(features, label)
        for _ in range(min(self.k, len(self.buffer))):
            f, y = self.buffer[self.rng.randrange(len(self.buffer))]
            self.model.learn(f, y)
        self.seen += 1
        if len(self.buffer) < self.size:
            self.buffer.append((features, label))
        elif (j := self.rng.randrange(self.seen)) < self.size:
            self.buffer[j] = (features, label)

    def raw_probability(self, features: dict[str, float]) -> float:
        return self.model.raw_probability(features)


class RiverModel:
    """Any River classifier over the model's view of the features."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def learn(self, features: dict[str, float], label: bool) -> None:
        self.model.learn_one(model_input(features), label)

    def raw_probability(self, features: dict[str, float]) -> float:
        return float(self.model.predict_proba_one(model_input(features)).get(True, 0.0))


class Blend:
    """The mean of the members' log-odds."""

    def __init__(self, *members: Any) -> None:
        self.members = members

    def learn(self, features: dict[str, float], label: bool) -> None:
        for m in self.members:
            m.learn(features, label)

    def raw_probability(self, features: dict[str, float]) -> float:
        z = statistics.fmean(
            math.log(max(p, 1e-6) / max(1 - p, 1e-6))
            for p in (m.raw_probability(features) for m in self.members)
        )
        return 1 / (1 + math.exp(-z))


def _hat() -> RiverModel:
    return RiverModel(tree.HoeffdingAdaptiveTreeClassifier(grace_period=200, seed=1))


def _arf(n: int) -> RiverModel:
    return RiverModel(forest.ARFClassifier(n_models=n, seed=1))


VARIANTS: dict[str, Callable[[], Any]] = {
    "default": ChurnModel,
    "hat": _hat,
    "arf5": lambda: _arf(5),
    "lr+hat": lambda: Blend(ChurnModel(), _hat()),
    "lr+arf5": lambda: Blend(ChurnModel(), _arf(5)),
}


def variant(name: str) -> Callable[[], Any]:
    """A named variant, or `cm:learning_rate=0.02,l2=0.001` for ChurnModel's parameters."""
    if name in VARIANTS:
        return VARIANTS[name]
    kind, _, params = name.partition(":")
    if kind != "cm":
        msg = f"unknown variant {name}"
        raise SystemExit(msg)
    kwargs: dict[str, Any] = {
        k: (int(v) if k in ("average_window", "replay") else float(v))
        for k, v in (p.split("=") for p in params.split(",") if p)
    }
    replays = kwargs.pop("replay", 0)
    if replays:
        return lambda: Replayed(ChurnModel(**kwargs), replays)
    return lambda: ChurnModel(**kwargs)


def run(seed: int, factory: Callable[[], Any], split_day: int = 90) -> dict[str, Any]:
    rows = orjson.loads((OUT / f"seed{seed}.json").read_bytes())
    split = DEFAULT_START.timestamp() + split_day * DAY
    released = [r[3] for r in rows]
    test = sorted((r for r in rows if r[2] >= split), key=lambda r: r[2])
    model = factory()
    learned = 0
    labels, probs, recorded = [], [], []
    started = time.monotonic()
    for features, label, at, _, _, probability, _ in test:
        upto = bisect.bisect_left(released, at)  # matured before the snapshot was taken
        for features_l, label_l, *_ in rows[learned:upto]:
            model.learn(features_l, label_l)
        learned = max(learned, upto)
        labels.append(label)
        probs.append(model.raw_probability(features))
        recorded.append(probability or 0.0)
    q = ModelQuality(window=len(test))
    for y, p in zip(labels, probs, strict=True):
        q.update(y, p)
    return {
        "auc": float(roc_auc_score(labels, probs)),
        "auc_recorded": float(roc_auc_score(labels, recorded)),
        "ece": q.report()["total"]["calibration_error"],
        "seconds": time.monotonic() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("variants", nargs="+")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    for name in args.variants:
        results = [run(s, variant(name)) for s in seeds]
        aucs = " ".join(f"{r['auc']:.4f}" for r in results)
        print(
            f"{name:40s} auc {statistics.fmean(r['auc'] for r in results):.4f} [{aucs}] "
            f"recorded {statistics.fmean(r['auc_recorded'] for r in results):.4f} "
            f"ece {statistics.fmean(r['ece'] for r in results):.4f} "
            f"({sum(r['seconds'] for r in results):.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
