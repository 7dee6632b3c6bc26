"""Shares of the worker's main thread in a py-spy raw profile (see profile_worker.py)."""

import collections
import sys
from pathlib import Path

CATEGORIES = [
    ("idle (event loop waiting in select)", "EpollSelector.select"),
    ("scoring step (models/)", "step (models/scoring.py"),
    ("reading state (table get + JSON decode)", "load_record (streams/agents.py"),
    ("writing state (table put, RocksDB, changelog enqueue)", "store_record (streams/agents.py"),
    ("decoding + validating events", "decode_event"),
    ("producer buffer (changelog/alerts/snapshots)", "ProducerBuffer._handle_pending"),
    ("Faust consumer delivery (drain loop)", "Consumer._drain_messages"),
]
total, shares = 0, collections.Counter()
for line in Path(sys.argv[1]).read_text().splitlines():
    if not line.strip():
        continue
    stack, n = line.rsplit(" ", 1)
    # The main thread only: its stacks start at the CLI module (on uvloop, whose
    # run_until_complete is C code, no Python frame names the event loop).
    if "_run_module_as_main" not in stack:
        continue
    total += int(n)
    name = next((c for c, pattern in CATEGORIES if pattern in stack), "other (Faust/aiokafka)")
    shares[name] += int(n)
print("main-thread samples", total)
for name, n in shares.most_common():
    print(f"{100 * n / total:5.1f}%  {name}")
