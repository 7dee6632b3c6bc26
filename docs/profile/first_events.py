"""A worker's first seconds in the latency phase: when its first events were sent, fetched
and processed.

Runs the latency phase (`measure_latency`, a fresh worker on new topics) with the probe in
`batchprobe/` in the worker, then prints how many events were sent in each 50 ms from the
first, Faust's first fetches (and how long the oldest record of each had waited) and the
first batches (`o`: through the continuity check, `b`: `handle_batch`; the wait of the
oldest record when the batch began).

Run from the repository root with the local broker up (`deploy/local/kafka up`):

    .venv/bin/python docs/profile/first_events.py 2200 20      # events/s, seconds

Writes var/probe-first/ (the worker's log, the probe's files, samples.json).
"""

import collections
import json
import os
import shutil
import sys
import uuid
from pathlib import Path

from churnstream.streams.bench import free_port, measure_latency, trained_model_message
from churnstream.streams.settings import Settings
from churnstream.streams.topics import delete_topics

rate, seconds = float(sys.argv[1]), float(sys.argv[2])
out = Path("var/probe-first").resolve()
shutil.rmtree(out, ignore_errors=True)
out.mkdir(parents=True)
ns = f"lat{uuid.uuid4().hex[:6]}"
s = Settings(
    topic_prefix=ns, app_id=ns, topic_partitions=8, data_dir=out / ns, web_port=free_port()
)
model = trained_model_message(s)
# Only the worker started from here on carries the probe.
os.environ["PYTHONPATH"] = str(Path(__file__).resolve().parent / "batchprobe")
os.environ["BATCHPROBE_OUT"] = str(out / "batches.txt")
samples: list[tuple[float, float, float]] = []
try:
    summary = measure_latency(s, model, out, rate, seconds, samples=samples)
finally:
    delete_topics(s, ns)
print(json.dumps({k: summary[k] for k in ("events", "alerts", "p50_ms", "p99_ms", "max_ms")}))
alerts = sorted((at - lat, lat, stamped) for at, lat, stamped in samples)  # by send time
(out / "samples.json").write_text(json.dumps(alerts))

stamps = sorted(float(x) for x in (out / "batches.txt.ts").read_text().split())
t0 = stamps[0]  # the first event's send (its record timestamp)
per_50ms = collections.Counter(int((x - t0) / 0.05) for x in stamps)
print("events sent in each 50 ms from the first:", [per_50ms[i] for i in range(20)])
print("first alerts: s after the first send, latency ms, of which before the worker's send")
for sent, lat, stamped in alerts[:5]:
    print(f"  {sent - t0:7.3f} {lat * 1000:7.1f} {(stamped - sent) * 1000:7.1f}")
print("first fetches: s after the first send, ms, records, oldest record's wait ms")
fetches = [line.split()[1:5] for line in (out / "batches.txt.fetch").read_text().splitlines()]
for start, end, n, oldest in sorted(f for f in fetches if int(f[2]))[:12]:
    begun, ended = float(start), float(end)
    print(
        f"  {begun - t0:+7.3f} {(ended - begun) * 1000:7.1f} {n:>5} "
        f"{(ended - float(oldest)) * 1000:7.1f}"
    )
print("first batches: s after the first send, ms, kind:type, records, oldest record's wait ms")
batches = [line.split() for line in (out / "batches.txt").read_text().splitlines()]
for kind, start, end, event_type, n, oldest, _ in sorted(batches, key=lambda b: float(b[1]))[:30]:
    begun = float(start)
    print(
        f"  {begun - t0:+7.3f} {(float(end) - begun) * 1000:7.1f} {kind}:{event_type:14} {n:>5} "
        f"{(begun - float(oldest)) * 1000:7.1f}"
    )
