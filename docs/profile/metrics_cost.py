"""What one read of a worker's /metrics costs: the whole page against the bench's progress
read (`?name[]=` for the three samples `wait_processed` uses), in the worker's CPU and the
reader's.

One worker applies N simulated events (so that its page has the label series of a real run),
then goes idle; the script reads each URL READS times, back to back, and subtracts the
worker's CPU over an equally long idle stretch. Run from the repository root with the local
broker up (`deploy/local/kafka up`):

    .venv/bin/python docs/profile/metrics_cost.py 50000 5000 300
"""

import sys
import time
import urllib.request
from pathlib import Path

from loaded import loaded

from churnstream.streams.bench import Worker, process_cpu_seconds, wait_processed
from churnstream.streams.demo import sums, text_samples
from churnstream.streams.topics import delete_topics

out = Path("var/profile")
out.mkdir(parents=True, exist_ok=True)
total, customers, reads = (int(a) for a in sys.argv[1:4])
s, sent = loaded(out, "mcost", total, customers)
w = Worker(s, "mcost", out)


def read(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - our own loopback URL
        body = resp.read()
    sums(text_samples(body.decode()))  # what the bench does with a page
    return len(body)


try:
    wait_processed([w], sent)
    time.sleep(6)  # the gauges' first refresh after the phase
    pid = w.proc.pid
    for name, url in (("whole page", w.url), ("progress read", w.progress_url)):
        size = read(url)
        worker_from, own_from, start = (
            process_cpu_seconds(pid),
            time.process_time(),
            time.monotonic(),
        )
        for _ in range(reads):
            read(url)
        seconds, worker_to = time.monotonic() - start, process_cpu_seconds(pid)
        worker, own = worker_to - worker_from, time.process_time() - own_from
        time.sleep(seconds)  # as long, without reads: the worker's idle CPU
        idle = process_cpu_seconds(pid) - worker_to
        per_worker_ms = (worker - idle) / reads * 1000
        per_reader_ms = own / reads * 1000
        print(
            f"{name}: {size} bytes; per read: worker {per_worker_ms:.2f} ms CPU "
            f"(idle subtracted: {idle:.2f} s over {seconds:.1f} s), reader {per_reader_ms:.2f} ms"
            f" CPU; at 5 reads/s: worker {per_worker_ms * 5 / 1000:.4f} cores, reader "
            f"{per_reader_ms * 5 / 1000:.4f} cores per worker read",
            flush=True,
        )
finally:
    w.stop()
    delete_topics(s, s.topic_prefix)
