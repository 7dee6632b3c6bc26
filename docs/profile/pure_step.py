"""Events per second of the pure scoring path, no Kafka: decode, load the state from JSON,
step, tally, store to JSON (run: .venv/bin/python docs/profile/pure_step.py).

It scores with the churn model `churnstream bench` publishes, as a worker does once a model
is out (until 2026-11-26 it scored with none: see docs/BENCHMARKS.md); `--no-model` scores
with none, as before.

`--model PATH` reads that model's message from PATH instead of training it (45 s here).

`--go PATH` waits, once set up, until PATH exists, after creating `PATH.ready-<pid>`; it then
also prints the loop's start and end (epoch seconds), so that `two_at_once.py` can start
several copies' loops together.

`--recount` then also times what a worker does for each stored customer after a rebalance
(`streams.gauges.recount`): decode the record and count it again (`models.scoring.restore`).
"""

import os
import sys
import time
from pathlib import Path

import orjson

from churnstream.models.business import BusinessMetrics
from churnstream.models.churn import ChurnModel
from churnstream.models.learning import predictor_for
from churnstream.models.scoring import CustomerRecord, ScoringContext, restore, step, tally
from churnstream.schemas.decoding import decode_event
from churnstream.streams.bench import trained_model_message
from churnstream.streams.settings import Settings
from churnstream.streams.simulation import simulate
from churnstream.streams.stored import decode_record, encode_record

s = Settings()
raw = [orjson.dumps(e) for e in simulate(customers=300, days=60, seed=3)]
types = [orjson.loads(r)["type"] for r in raw]
ctx = ScoringContext(config=s.health_settings(), snapshot_period=86400.0)
if "--no-model" not in sys.argv:
    if "--model" in sys.argv:  # the message `trained_model_message` gave, saved to a file
        message = orjson.loads(Path(sys.argv[sys.argv.index("--model") + 1]).read_bytes())
    else:
        message = orjson.loads(trained_model_message(s))
    ctx.churn = predictor_for(ChurnModel.from_json(message["model"]))
business = BusinessMetrics()
records: dict[str, bytes] = {}
if "--go" in sys.argv:
    go = Path(sys.argv[sys.argv.index("--go") + 1])
    Path(f"{go}.ready-{os.getpid()}").touch()
    while not go.exists():
        time.sleep(0.01)
began = time.time()
started = time.perf_counter()
for i, (r, t) in enumerate(zip(raw, types, strict=True)):
    ev = decode_event(
        r, key=None, topic_type=t, max_bytes=s.max_message_bytes, rating_labels=s.rating_labels
    )
    stored = records.get(ev.customer_id)
    rec = decode_record(stored) if stored else CustomerRecord.new(ev.customer_id)
    tally(business, rec, ev, step(rec, ev, ("t", 0, i), ctx), ctx)
    records[ev.customer_id] = encode_record(rec)
rate = len(raw) / (time.perf_counter() - started)
print(f"{'no model' if ctx.churn is None else 'model'}: {len(raw)} events, {rate:.0f} events/s")
if "--go" in sys.argv:
    print(f"loop {began:.3f} {time.time():.3f}")
if "--recount" in sys.argv:
    started = time.perf_counter()
    for _ in range(10):
        business.forget_customers()
        for stored in records.values():
            restore(business, decode_record(stored), ctx)
    per = (time.perf_counter() - started) / (10 * len(records))
    print(f"recount: {per * 1e6:.0f} µs per stored customer ({len(records)} customers, 10 passes)")
