"""Customer-state writes with one Kafka batch per changelog partition.

A Faust table write (`table[key] = value`) is a RocksDB put plus one changelog record that
Faust hands to aiokafka on its own: a future, a buffer task and a delivery callback per
record, about 170 µs a write where the put alone is about 12 µs (docs/BENCHMARKS.md, "What
Faust itself costs"). The worker writes each customer once per batch of messages, so it
instead puts the values into the table's store (`table.data`, the same RocksDB or memory
store Faust reads and recovers into) and sends the batch's changelog records itself: one
aiokafka record batch per changelog partition, through Faust's own producer.

The records, keys and partitions are those Faust would write, so Faust's recovery, standby
replicas and `table[key]` reads see no difference. `send` returns once Kafka has every record,
and only then are the batch's messages acknowledged, so a committed offset never runs ahead
of the changelog; afterwards the store remembers the changelog offset it holds (Faust's
"persisted offset"), so that a restart with its data directory replays only the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from faust.types import TP


class BatchProducer(Protocol):
    """The part of `aiokafka.AIOKafkaProducer` used here."""

    def create_batch(self) -> Any: ...

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any: ...


class ChangelogNotWritten(RuntimeError):
    """Kafka did not take a batch of changelog records (after aiokafka's own retries)."""


@dataclass(frozen=True)
class Write:
    """One key's new value, in the changelog partition of the message it came from."""

    partition: int
    key: bytes
    value: bytes


@dataclass(frozen=True)
class Changelog:
    """Writes to `table`'s store and its changelog topic.

    `producer` returns the producer to send with when called (Faust's, which exists once
    the worker has started).
    """

    table: Any  # faust.Table
    producer: Callable[[], BatchProducer]

    @classmethod
    def of(cls, table: Any) -> Changelog:
        """Through the table's app's own aiokafka producer, which Faust's commits flush
        (private, and started with the worker: hence looked up at each send)."""
        return cls(table, lambda: table.app.producer._ensure_producer())

    def get(self, key: bytes) -> bytes | None:
        """The stored value of `key` in the partition of Faust's current event: one store
        lookup, where `table.get` makes two (`key in table`, then `table[key]`)."""
        value: bytes | None = self.table.data.get(key)
        return value

    def put(self, message: Any, key: bytes, value: bytes) -> Write:
        """Store `value` under `key` in the partition of `message`, which must be Faust's
        current event (`streams.agents.acting_for`); the changelog record is for `send`."""
        self.table.data[key] = value
        return Write(message.partition, key, value)

    async def send(self, writes: Sequence[Write]) -> int:
        """Send `writes` to the changelog, in order, and wait until Kafka has them all;
        returns the number of records. Raises `ChangelogNotWritten` if Kafka refused any."""
        if not writes:
            return 0
        producer = self.producer()
        topic = self.table.changelog_topic.get_topic_name()
        by_partition: dict[int, list[Write]] = {}
        for w in writes:
            by_partition.setdefault(w.partition, []).append(w)
        sent: list[tuple[int, int, Any]] = []  # partition, records, delivery future
        for partition, items in by_partition.items():
            batch, count = producer.create_batch(), 0
            for w in items:
                if batch.append(key=w.key, value=w.value, timestamp=None) is None:  # full
                    sent.append(
                        (partition, count, await _submit(producer, batch, topic, partition))
                    )
                    batch, count = producer.create_batch(), 0
                    batch.append(key=w.key, value=w.value, timestamp=None)
                count += 1
            sent.append((partition, count, await _submit(producer, batch, topic, partition)))
        results = await asyncio.gather(*(f for _, _, f in sent), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            msg = f"{len(failed)} batch(es) to {topic}: {failed[0]!r}"
            raise ChangelogNotWritten(msg)
        # A partition's batches were sent in order: its last one ends at its last offset.
        last = {
            partition: metadata.offset + count - 1
            for (partition, count, _), metadata in zip(sent, results, strict=True)
        }
        for partition, offset in last.items():
            self.table.data.set_persisted_offset(TP(topic, partition), offset)
        return len(writes)


async def _submit(producer: BatchProducer, batch: Any, topic: str, partition: int) -> Any:
    try:
        return await producer.send_batch(batch, topic, partition=partition)
    except Exception as exc:  # closed producer, metadata timeout
        msg = f"{topic}[{partition}]: {exc!r}"
        raise ChangelogNotWritten(msg) from exc
