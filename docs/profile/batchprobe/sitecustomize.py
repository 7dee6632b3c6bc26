"""A probe of a worker's first batches, loaded by every Python started with this folder on
PYTHONPATH and BATCHPROBE_OUT set to an output file (see docs/profile/first_events.py).

It writes:
- `o|b <start> <end> <type> <records> <oldest> <newest>`: each call of `handle_in_order`
  (`o`: the continuity check and the batch) and of `handle_batch` (`b`), with the oldest and
  newest of its records' timestamps (the producer's create times), unix seconds;
- `f <start> <end> <records> <oldest> <timeout> <partitions>` in `<out>.fetch`: each fetch
  Faust's consumer thread makes (`AIOKafkaConsumerThread._fetch_records`);
- every record timestamp of each batch, one line per batch, in `<out>.ts`;
- in `<out>.awaits`, where each `handle_batch` spends its time, one line per call, all
  `<task> <start> <end>` with the calling task's id: `batch ... <type> <records>`,
  `send_later ...`, `flush ... <sent>` (`Changelog.flush`), `publish ... <messages>`
  (`publish_outbox`); `confirm <task> <start> <own> <end>` (the flush's `_confirm` task,
  with the id of the task whose flush made it: its own record batches' acks at `<own>`,
  the earlier flushes' by `<end>`); and `produce - <start> <end> <batches> <records>
  <oldest>` for each produce request the producers send (`<oldest>`: how long its oldest
  record batch had waited in the accumulator, seconds).
"""

import asyncio
import contextvars
import os
import sys
import threading
import time

_OUT = os.environ.get("BATCHPROBE_OUT")
# Line-buffered: the worker is stopped without flushing its files (a 64 KB buffer lost the
# last seconds of a run).
_AWAITS = open(_OUT + ".awaits", "a", buffering=1) if _OUT else None  # noqa: SIM115
_BATCH = contextvars.ContextVar("batch", default=0)  # the task of the flush's handle_batch


def _task():
    return id(asyncio.current_task())


def _log(kind, task, start, *rest):
    _AWAITS.write(" ".join([kind, str(task), f"{start:.5f}", *map(str, rest)]) + "\n")


def _timed_await(name, original, count):
    async def call(*args, **kwargs):
        start, result = time.time(), None
        try:
            result = await original(*args, **kwargs)
            return result
        finally:
            _log(name, _task(), start, f"{time.time():.5f}", count(args, result))

    return call


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

    by_batch = _timed_await("batch", agents.handle_batch, lambda a, r: f"{a[1]} {len(a[2])}")
    agents.handle_batch = timed("b", by_batch, stamp=True)
    agents.handle_in_order = timed("o", agents.handle_in_order, stamp=False)
    agents.send_later = _timed_await("send_later", agents.send_later, lambda a, r: "-")
    agents.publish_outbox = _timed_await("publish", agents.publish_outbox, lambda a, r: len(a[1]))


def _wrap_changelog():
    cls = _module("churnstream.streams.changelog", "Changelog").Changelog
    flush, confirm = _timed_await("flush", cls.flush, lambda a, r: r), cls._confirm

    async def flushing(self):
        _BATCH.set(_task())  # the _confirm task this flush may create inherits it
        return await flush(self)

    async def confirming(self, before, topic, sent):
        start = time.time()
        if isinstance(sent, list):
            await asyncio.gather(*(f for _, _, f in sent), return_exceptions=True)
        own = time.time()
        try:
            return await confirm(self, before, topic, sent)
        finally:
            _log("confirm", _BATCH.get(), start, f"{own:.5f}", f"{time.time():.5f}")

    cls.flush, cls._confirm = flushing, confirming


def _wrap_produce():
    cls = _module("aiokafka.producer.sender", "SendProduceReqHandler").SendProduceReqHandler
    original = cls.do

    async def do(self, node_id):
        start, now = time.time(), time.monotonic()
        batches = list(self._batches.values())
        oldest = max((now - b._ctime for b in batches), default=0.0)
        records = sum(b.record_count for b in batches)
        try:
            return await original(self, node_id)
        finally:
            _log(
                "produce", "-", start, f"{time.time():.5f}", len(batches), records, f"{oldest:.5f}"
            )

    cls.do = do


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
    threading.Thread(target=_wrap_changelog, daemon=True).start()
    threading.Thread(target=_wrap_produce, daemon=True).start()
