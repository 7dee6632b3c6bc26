"""Event-to-alert latency of one fresh worker at a fixed rate (the bench's latency phase
without the throughput phases), to compare commits at the same load.

Run from the repository root with the local broker up (`deploy/local/kafka up`):

    .venv/bin/python docs/profile/latency_at.py 1500 60      # events/s, seconds

Prints the latency summary as JSON; the worker's log goes to var/profile/latency.log.
"""

import json
import sys
from pathlib import Path

from latency_probe import fresh_phase

from churnstream.streams.bench import measure_latency

rate, seconds = float(sys.argv[1]), float(sys.argv[2])
out = Path("var/profile")
with fresh_phase(out) as (s, model):  # this run's topics, gone from the broker afterwards
    print(json.dumps(measure_latency(s, model, out, rate, seconds)), flush=True)
