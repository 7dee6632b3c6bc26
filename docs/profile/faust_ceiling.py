"""How fast Faust itself delivers the worker's messages, with nothing else to do.

Loads N simulated events into fresh topics (as `profile_worker.py` does), then runs a Faust
app with the worker's consumer settings and one agent per event topic taking batches as the
worker does (`stream.take_events(500, within=0.05)`), in one of six modes:

- `bare`: count the messages, nothing else;
- `decode`: also decode and validate each event (`decode_event`);
- `table`: instead of decoding, read each event's customer from a RocksDB table (the
  worker's options) and write a 1,900-byte value per customer per batch, which goes to the
  changelog, as the worker did until the changelog was batched; `get` and `set` do only the
  read or only the write;
- `changelog`: the read, and the write as the worker does it now: into the table's store,
  with the batch's changelog records sent together and awaited (`streams.changelog`).

The table has the worker's RocksDB options (`streams.app.rocksdb_options`).

Run from the repository root with the local broker up (`deploy/local/kafka up`):

    .venv/bin/python docs/profile/faust_ceiling.py 200000 5000 bare decode get set table changelog

Each mode runs in its own process on the same topics (its own consumer group) and prints
events/s from its first message to its last.
"""

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import faust

from churnstream.schemas.decoding import decode_event
from churnstream.streams.agents import acting_for
from churnstream.streams.app import CHANGELOG_BATCH_BYTES, rocksdb_options
from churnstream.streams.bench import events, free_port, make_producer
from churnstream.streams.changelog import Changelog
from churnstream.streams.producing import produce_events
from churnstream.streams.settings import Settings
from churnstream.streams.topics import create_topics

STATE_BYTES = b"x" * 1900  # about one customer's state (docs/BENCHMARKS.md)


def settings(ns: str, data_dir: Path) -> Settings:
    return Settings(
        topic_prefix=ns, app_id=ns, topic_partitions=8, data_dir=data_dir, web_port=free_port()
    )


def run(ns: str, total: int, mode: str) -> None:
    group = f"{ns}-{mode}-{uuid.uuid4().hex[:4]}"  # a new consumer group reads from the start
    s = settings(ns, Path("var/profile") / group)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        group,
        broker=s.broker,
        store="rocksdb://",
        datadir=str(s.data_dir),
        web_port=s.web_port,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=8,
        producer_max_batch_size=CHANGELOG_BATCH_BYTES,
    )
    table = app.Table(
        "state",
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=8,
        options=rocksdb_options(s),
    )
    changelog = Changelog.of(table)
    seen = {"n": 0, "first": 0.0}

    def tally(n: int) -> None:
        if not seen["n"]:
            seen["first"] = time.perf_counter()
        seen["n"] += n
        if seen["n"] >= total:
            secs = time.perf_counter() - seen["first"]
            line = f"{mode}: {seen['n']} events in {secs:.1f}s = {seen['n'] / secs:.0f} ev/s\n"
            os.write(1, line.encode())  # Faust sends sys.stdout to its log
            os._exit(0)

    for kind, name in s.event_topics().items():
        topic = app.topic(name, key_type=bytes, value_type=bytes, partitions=8)

        async def consume(stream: Any, kind: str = kind) -> None:
            async for batch in stream.take_events(500, within=0.05):
                if mode in ("decode", "table"):
                    for e in batch:
                        decode_event(e.message.value, key=e.message.key, topic_type=kind)
                if mode == "changelog":
                    last = {e.message.key: e for e in batch}
                    for k, e in last.items():
                        with acting_for(e):
                            table.get(k)
                            changelog.put(e.message, k, STATE_BYTES)
                    await changelog.flush()
                if mode in ("get", "set", "table"):  # the worker: one read, one write a customer
                    last = {e.message.key: e for e in batch}
                    for k, e in last.items():
                        with acting_for(e):
                            if mode != "set":
                                table.get(k)
                            if mode != "get":
                                table[k] = STATE_BYTES
                tally(len(batch))
                await asyncio.sleep(0)

        consume.__name__ = f"{kind}_{mode}"
        app.agent(topic, name=f"{ns}.{kind}.{mode}", concurrency=1)(consume)
    sys.argv = [sys.argv[0], "worker", "-l", "info", "--without-web"]
    app.main()


def main() -> None:
    if sys.argv[1] == "run":
        run(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    total, customers, modes = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    ns = f"ceil{uuid.uuid4().hex[:6]}"
    s = settings(ns, Path("var/profile") / ns)
    create_topics(s)
    p = make_producer(s)
    sent = produce_events(s, events(total, customers, seed=1), producer=p)
    p.close()
    print("loaded", sent, flush=True)
    for mode in modes:
        subprocess.run(  # noqa: S603
            [sys.executable, __file__, "run", ns, str(sent), mode], check=True, timeout=3600
        )


if __name__ == "__main__":
    main()
