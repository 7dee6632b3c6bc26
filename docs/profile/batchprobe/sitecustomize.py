"""A probe of a worker's first batches, loaded by every Python started with this folder on
PYTHONPATH and BATCHPROBE_OUT set to an output file (see docs/profile/first_events.py).

It writes:
- `o|b <start> <end> <type> <records> <oldest> <newest>`: each call of `handle_in_order`
  (`o`: the continuity check and the batch) and of `handle_batch` (`b`), with the oldest and
  newest of its records' timestamps (the producer's create times), unix seconds;
- `f <start> <end> <records> <oldest> <timeout> <partitions>` in `<out>.fetch`: each fetch
  Faust's consumer thread makes (`AIOKafkaConsumerThread._fetch_records`);
- every record timestamp of each batch, one line per batch, in `<out>.ts`.
"""

import os
import sys
import threading
import time

_OUT = os.environ.get("BATCHPROBE_OUT")


def _module(name, attribute):
    while name not in sys.modules or not hasattr(sys.modules[name], attribute):
        time.sleep(0.01)
    return sys.modules[name]


def _wrap_agents(path):
    agents = _module("churnstream.streams.agents", "_register_one")  # its last definition
    out, stamps = open(path, "a", buffering=1), open(path + ".ts", "a", buffering=1 << 16)  # noqa: SIM115

    def timed(kind, original, stamp):
        async def call(wiring, event_type, records):
            start = time.time()
            ts = [r.message.timestamp for r in records]
            try:
                return await original(wiring, event_type, records)
            finally:
                if stamp:
                    stamps.write(" ".join(f"{x:.4f}" for x in ts) + "\n")
                out.write(
                    f"{kind} {start:.4f} {time.time():.4f} {event_type} {len(ts)} "
                    f"{min(ts):.4f} {max(ts):.4f}\n"
                )

        return call

    agents.handle_batch = timed("b", agents.handle_batch, stamp=True)
    agents.handle_in_order = timed("o", agents.handle_in_order, stamp=False)


def _wrap_fetch(path):
    cls = _module(
        "faust.transport.drivers.aiokafka", "AIOKafkaConsumerThread"
    ).AIOKafkaConsumerThread
    original, out = cls._fetch_records, open(path + ".fetch", "a", buffering=1)  # noqa: SIM115

    async def fetch(self, consumer, active_partitions, timeout=None, max_records=None):
        start = time.time()
        found = await original(
            self, consumer, active_partitions, timeout=timeout, max_records=max_records
        )
        ts = [r.timestamp / 1000 for records in found.values() for r in records]
        out.write(
            f"f {start:.4f} {time.time():.4f} {len(ts)} {min(ts, default=0.0):.4f} "
            f"{timeout} {len(active_partitions or ())}\n"
        )
        return found

    cls._fetch_records = fetch


if _OUT:
    threading.Thread(target=_wrap_agents, args=(_OUT,), daemon=True).start()
    threading.Thread(target=_wrap_fetch, args=(_OUT,), daemon=True).start()
