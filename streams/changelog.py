"""Customer-state writes with one Kafka batch per changelog partition.

A Faust table write (`table[key] = value`) is a RocksDB put plus one changelog record that
Faust hands to aiokafka on its own: a future, a buffer task and a delivery callback per
record, about 170 µs a write where the put alone is about 12 µs (docs/BENCHMARKS.md, "What
Faust itself costs"). The worker writes each customer once per batch of messages, so it
instead puts the values into the table's store (`table.data`, the same RocksDB or memory
store Faust reads and recovers into) and sends the changelog records itself: one aiokafka
record batch per changelog partition, through Faust's own producer.

The records, keys and partitions are those Faust would write, so Faust's recovery, standby
replicas and `table[key]` reads see no difference. The changelog receives the records in the
order they were put into the store, whichever agent put them: the five agents (one per event
type) update the same customers, and a changelog whose last record for a customer is not the
store's last value would rebuild that customer stale. `flush` returns once Kafka has every
record put so far, and only then are a batch's messages acknowledged, so a committed offset
never runs ahead of the changelog; afterwards the store remembers the changelog offset it
holds (Faust's "persisted offset"), so that a restart with its data directory replays only
the rest.
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


class Changelog:
    """Writes to `table`'s store and its changelog topic.

    `producer` returns the producer to send with when called (Faust's, which exists once
    the worker has started).
    """

    def __init__(self, table: Any, producer: Callable[[], BatchProducer]) -> None:
        self.table = table
        self.producer = producer
        self._pending: list[Write] = []  # put, not yet handed to the producer, in order
        self._handing = asyncio.Lock()  # one flush at a time hands records to the producer
        self._delivered: asyncio.Future[None] | None = None  # every flush so far delivered

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

    def put(self, message: Any, key: bytes, value: bytes) -> None:
        """Store `value` under `key` in the partition of `message`, which must be Faust's
        current event (`streams.agents.acting_for`); its changelog record waits for `flush`."""
        self.table.data[key] = value
        self._pending.append(Write(message.partition, key, value))

    async def flush(self) -> int:
        """Send every record put and not yet sent, in the order put, and wait until Kafka has
        them and all sent before; returns the number this call sent. Raises
        `ChangelogNotWritten` if Kafka refused any record, in this flush or an earlier one
        (whose records may have been another caller's)."""
        async with self._handing:
            writes, self._pending = self._pending, []
            if writes:
                topic = self.table.changelog_topic.get_topic_name()
                try:
                    sent: list[tuple[int, int, Any]] | ChangelogNotWritten = await self._hand(
                        topic, writes
                    )
                except ChangelogNotWritten as exc:
                    sent = exc
                self._delivered = asyncio.ensure_future(self._confirm(self._delivered, topic, sent))
            delivered = self._delivered
        if delivered is not None:
            await asyncio.shield(delivered)  # shared with later flushes: never cancel it
        return len(writes)

    async def _hand(self, topic: str, writes: Sequence[Write]) -> list[tuple[int, int, Any]]:
        """Hand `writes` to the producer, in order per partition; returns each record batch's
        partition, record count and delivery future."""
        producer = self.producer()
        by_partition: dict[int, list[Write]] = {}
        for w in writes:
            by_partition.setdefault(w.partition, []).append(w)
        sent: list[tuple[int, int, Any]] = []
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
        return sent

    async def _confirm(
        self,
        before: asyncio.Future[None] | None,
        topic: str,
        sent: list[tuple[int, int, Any]] | ChangelogNotWritten,
    ) -> None:
        """Wait for the earlier flushes and then for `sent`; record the persisted offsets."""
        if isinstance(sent, ChangelogNotWritten):
            raise sent
        results = await asyncio.gather(*(f for _, _, f in sent), return_exceptions=True)
        if before is not None:
            await before  # its failure is this flush's too: it may have carried our records
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


async def _submit(producer: BatchProducer, batch: Any, topic: str, partition: int) -> Any:
    try:
        return await producer.send_batch(batch, topic, partition=partition)
    except Exception as exc:  # closed producer, metadata timeout
        msg = f"{topic}[{partition}]: {exc!r}"
        raise ChangelogNotWritten(msg) from exc
