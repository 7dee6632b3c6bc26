"""Event-to-alert latency of one fresh worker at a fixed rate (the bench's latency phase
without the throughput phases), to compare commits at the same load.

Run from the repository root with the local broker up (`deploy/local/kafka up`):

    .venv/bin/python docs/profile/latency_at.py 1500 60      # events/s, seconds

Prints the latency summary as JSON; the worker's log goes to var/profile/latency.log.
"""

import json
import sys
import uuid
from pathlib import Path

from churnstream.streams.bench import free_port, measure_latency, trained_model_message
from churnstream.streams.settings import Settings
from churnstream.streams.topics import delete_topics

rate, seconds = float(sys.argv[1]), float(sys.argv[2])
out = Path("var/profile")
ns = f"lat{uuid.uuid4().hex[:6]}"
s = Settings(
    topic_prefix=ns, app_id=ns, topic_partitions=8, data_dir=out / ns, web_port=free_port()
)
try:
    print(json.dumps(measure_latency(s, trained_model_message(s), out, rate, seconds)), flush=True)
finally:
    delete_topics(s, ns)  # this run's topics, gone from the broker
