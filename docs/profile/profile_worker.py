"""One worker on N simulated events, optionally sampled by py-spy; prints events/s and RSS.

As in `churnstream bench`, a churn model trained on a separate simulated history is on the
models topic first, so that the worker predicts with it on every event (until 2026-11-26 this
script published none, and its figures left the prediction out: see docs/BENCHMARKS.md).

Run from the repository root with the local broker up (`deploy/local/kafka up`):

    .venv/bin/python docs/profile/profile_worker.py 200000 5000          # rate and RSS
    .venv/bin/python docs/profile/profile_worker.py 200000 5000 40       # + 40 s of py-spy
    python3 docs/profile/main_thread_shares.py var/profile/out.txt       # the shares table

(py-spy: `.venv/bin/pip install py-spy`.) Worker logs and the profile go to var/profile.
"""

import subprocess
import sys
import time
from pathlib import Path

from loaded import loaded

from churnstream.streams.bench import Worker, wait_processed
from churnstream.streams.topics import delete_topics

out = Path("var/profile")
out.mkdir(parents=True, exist_ok=True)
total, customers = int(sys.argv[1]), int(sys.argv[2])
s, sent = loaded(out, "prof", total, customers)
print("loaded", sent, flush=True)
w = Worker(s, "w", out)
spy = None
if len(sys.argv) > 3:
    time.sleep(8)
    spy = subprocess.Popen(  # noqa: S603
        [".venv/bin/py-spy", "record", "-d", sys.argv[3], "-p", str(w.proc.pid)]
        + ["-f", "raw", "-o", str(out / "out.txt"), "-r", "50"]
    )
try:
    phase = wait_processed([w], sent)
    secs = phase.seconds
    print(f"processed {sent} in {secs:.1f}s = {sent / secs:.0f} ev/s", flush=True)
    print(f"worker {phase.worker_cores()[0]} cores, machine {phase.machine_cores()}", flush=True)
    time.sleep(6)
    print("rss MB", w.rss_bytes() / 2**20, flush=True)
finally:
    if spy:
        spy.wait()
    w.stop()
    delete_topics(s, s.topic_prefix)  # 200k events and their changelog, gone from the broker
