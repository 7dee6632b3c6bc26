"""Record, once per seed, the labelled snapshots of `churnstream evaluate`'s replay with the
event time each label was released, so model variants can be compared without replaying
2 million events each time (`compare.py` replays only the learning).

    .venv/bin/python docs/model_search/collect.py 1 2 3   # -> .cache/model_search/seed<N>.json
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from churnstream.models.churn import ChurnModel
from churnstream.models.learning import ChurnLearner
from churnstream.models.replay import replay
from churnstream.models.scoring import ScoringContext
from churnstream.schemas.events import parse_event_dict
from churnstream.streams.simulation import simulate

CUSTOMERS, DAYS = 2000, 180
OUT = Path(".cache/model_search")


class RecordingLearner(ChurnLearner):
    """The evaluation's learner, also noting the event time at which each example matured."""

    def __init__(self) -> None:
        super().__init__(ChurnModel(), record=[])
        self.released: list[float] = []

    def advance(self, watermark: float) -> int:
        n = super().advance(watermark)
        self.released.extend([watermark] * n)
        return n


def collect(seed: int) -> Path:
    events = [parse_event_dict(e) for e in simulate(CUSTOMERS, DAYS, seed)]
    learner = RecordingLearner()
    replay(events, ScoringContext(), learner=learner)
    rows = [
        (
            e.snapshot.features,
            e.label,
            e.snapshot.at,
            released,
            e.snapshot.health_score,
            e.snapshot.probability,
            e.snapshot.model_version,
        )
        for e, released in zip(learner.record or [], learner.released, strict=True)
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"seed{seed}.json"
    path.write_bytes(orjson.dumps(rows))
    return path


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(collect(int(arg)))
