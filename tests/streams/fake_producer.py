"""Stands in for aiokafka's producer where Faust's test context has none: record batches of
a fixed number of records, delivered at once with consecutive offsets per partition (or when
released, if held), or failed with a given error. `yields` makes each `send_batch` call pass
control to the event loop that many times before taking its batch, as aiokafka's does while
it waits for metadata or for the partition's previous batch to drain."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from aiokafka.structs import RecordMetadata, TopicPartition


@dataclass
class FakeBatch:
    capacity: int
    records: list[tuple[bytes, bytes]] = field(default_factory=list)

    def append(self, *, key: bytes, value: bytes, timestamp: float | None) -> object | None:
        if len(self.records) >= self.capacity:
            return None  # full, as aiokafka's BatchBuilder says it
        self.records.append((key, value))
        return object()


@dataclass
class FakeProducer:
    capacity: int = 100
    fail: BaseException | None = None
    sent: list[tuple[str, int, list[tuple[bytes, bytes]]]] = field(default_factory=list)
    next_offset: Counter[tuple[str, int]] = field(default_factory=Counter)
    yields: list[int] = field(default_factory=list)  # per call, in order; then none
    hold: bool = False
    held: list[tuple[asyncio.Future[RecordMetadata], RecordMetadata]] = field(default_factory=list)

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.capacity)

    async def send_batch(
        self, batch: FakeBatch, topic: str, *, partition: int
    ) -> asyncio.Future[RecordMetadata]:
        for _ in range(self.yields.pop(0) if self.yields else 0):
            await asyncio.sleep(0)
        delivered: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        if self.fail is not None:
            delivered.set_exception(self.fail)
            return delivered
        self.sent.append((topic, partition, batch.records))
        base = self.next_offset[(topic, partition)]
        self.next_offset[(topic, partition)] += len(batch.records)
        tp = TopicPartition(topic, partition)
        metadata = RecordMetadata(topic, partition, tp, base, -1, 0, 0)
        if self.hold:
            self.held.append((delivered, metadata))
        else:
            delivered.set_result(metadata)
        return delivered

    def release(self) -> None:
        """Deliver the batches held so far."""
        for delivered, metadata in self.held:
            delivered.set_result(metadata)
        self.held.clear()

    def latest(self) -> dict[bytes, bytes]:
        """Each key's last value, as a compacted changelog keeps it."""
        return {k: v for _, _, records in self.sent for k, v in records}
