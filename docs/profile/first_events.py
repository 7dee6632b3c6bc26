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
import sys
from pathlib import Path

from latency_probe import batch_probed_alerts

out = Path("var/probe-first").resolve()
alerts = batch_probed_alerts(out, float(sys.argv[1]), float(sys.argv[2]))

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
