"""Latency of one churn prediction (run: .venv/bin/python docs/predict_latency.py)."""

import timeit

from churnstream.models.churn import ChurnModel
from churnstream.models.learning import ChurnLearner
from churnstream.models.replay import replay
from churnstream.models.scoring import ScoringContext, model_features, view
from churnstream.schemas.events import parse_event_dict
from churnstream.streams.simulation import simulate

learner = ChurnLearner(ChurnModel())
r = replay([parse_event_dict(e) for e in simulate(300, 150, 1)], ScoringContext(), learner=learner)
ctx = ScoringContext()
xs = []
for rec in list(r.records.values())[:200]:
    v = view(rec, ctx)
    xs.append(model_features(v.features, v.health))
m = learner.model
n = 20000
print("features per input", sum(len(x) for x in xs) / len(xs))
print(
    "predict with drivers µs",
    timeit.timeit(lambda: [m.predict(x) for x in xs], number=n // len(xs)) / n * 1e6,
)
print(
    "probability only µs",
    timeit.timeit(lambda: [m.raw_probability(x) for x in xs], number=n // len(xs)) / n * 1e6,
)
