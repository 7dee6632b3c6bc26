"""How long a worker's first batches wait for the continuity reader to say where each
partition begins (`streams.continuity`): new topics of `topic_partitions` partitions, then
each event topic's first batch (a message per partition) through `Continuity.in_order`,
after `Reader.connect` as the worker does at its start.

Run from the repository root with the local broker up (`deploy/local/kafka up`):

    .venv/bin/python docs/profile/first_batches.py 3        # runs

Before `067d7cd` there was no `Reader.connect`, and each partition was asked for on its own.
The figures of that code in docs/BENCHMARKS.md ("A worker's first batches") came from a
one-off copy of this loop that imported e54d015's `streams/continuity.py` and had no
connect.
"""

import asyncio
import sys
import time
import uuid
from types import SimpleNamespace

from churnstream.streams.continuity import Continuity, Reader
from churnstream.streams.settings import Settings
from churnstream.streams.topics import create_topics, delete_topics


def once() -> str:
    ns = "firstbatch" + uuid.uuid4().hex[:6]
    settings = Settings(broker="kafka://127.0.0.1:19092", topic_prefix=ns, app_id=ns)
    create_topics(settings)
    try:
        topics = settings.event_topics()
        reader = Reader(settings)
        started = time.perf_counter()
        reader.connect()
        connect = time.perf_counter() - started
        continuity = Continuity(reader, {t: k for k, t in topics.items()}, stall_seconds=60)

        async def batches() -> list[float]:
            took = []
            for topic in topics.values():
                batch = [
                    SimpleNamespace(message=SimpleNamespace(topic=topic, partition=p, offset=0))
                    for p in range(settings.topic_partitions)
                ]
                started = time.perf_counter()
                await continuity.in_order(batch)
                took.append(time.perf_counter() - started)
            return took

        took = asyncio.run(batches())
        reader.close()
    finally:
        delete_topics(settings, ns)
    each = ", ".join(f"{t * 1000:.1f}" for t in took)
    return (
        f"connect {connect * 1000:.1f} ms; each topic's first batch of "
        f"{settings.topic_partitions} partitions: {each} ms; total {sum(took) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
        print(once())
