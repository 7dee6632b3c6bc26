"""Every message of every source partition reaches the scorer, in offset order.

faust-streaming does not guarantee it. Seen here on the real broker: a worker applied a
customer's usage events at offsets 27 and 43 of a partition but never the one at 30 (Faust
never delivered it, and committed past it), and a worker that took over a partition after a
rebalance never fetched it at all (faust-streaming#629). So the worker keeps, per source
partition, the next offset it must apply:

* a message below it was applied already and is skipped;
* a message above it means Faust skipped some: the missing range is read from the broker
  with a plain consumer and applied first, in order;
* a partition whose backlog has not moved for `partition_stall_seconds` is read the same
  way, without waiting for Faust.

The first position of a partition is the consumer group's committed offset, or the log
start when there is none, so a message skipped before the first one Faust delivers is caught
too. A partition revoked and assigned again starts from the later of that and where this
worker had got to: Faust starts it again from the commit, and what the worker applied past
the commit need not be applied again (an invalid message would be dead-lettered twice).
Redelivery stays harmless: each customer's record also remembers what it applied
(`churnstream.models.delivery`).

>>> p = Positions()
>>> p.known(("usage", 0))
False
>>> p.begin(("usage", 0), 3)
>>> p.place(("usage", 0), 2), p.place(("usage", 0), 3), p.place(("usage", 0), 7)
('applied', range(3, 3), range(4, 7))
>>> p.next[("usage", 0)]
8
>>> p.forget([("usage", 0)])  # a rebalance: the group had committed 5
>>> p.known(("usage", 0))
False
>>> p.begin(("usage", 0), 5)
>>> p.next[("usage", 0)]
8
>>> p.forget([("usage", 0)])  # another worker had it meanwhile and committed 20
>>> p.begin(("usage", 0), 20)
>>> p.next[("usage", 0)]
20
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from churnstream.streams.settings import Settings

log = logging.getLogger(__name__)

TP = tuple[str, int]  # (topic, partition)


@dataclass(slots=True)
class Positions:
    """Next offset to apply, per source partition this worker owns and has seen; and where
    the partitions it gave up at a rebalance had got to."""

    next: dict[TP, int] = field(default_factory=dict)
    revoked: dict[TP, int] = field(default_factory=dict)  # where revoked partitions had got to

    def known(self, tp: TP) -> bool:
        return tp in self.next

    def begin(self, tp: TP, committed: int) -> None:
        """Start at the group's `committed` offset, or where this worker had got to before the
        partition was revoked, if that is further."""
        self.next[tp] = max(committed, self.revoked.pop(tp, committed))

    def place(self, tp: TP, offset: int) -> str | range:
        """Where a delivered message stands: 'applied' (below the position), or the range
        of offsets missing before it (empty when it is the next one). The position moves
        past it."""
        expected = self.next[tp]
        if offset < expected:
            return "applied"
        self.next[tp] = offset + 1
        return range(expected, offset)

    def forget(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            if tp in self.next:
                self.revoked[tp] = self.next.pop(tp)


@dataclass(slots=True)
class Fetched:
    """A message read by the side consumer, shaped like the fields the agents use of
    Faust's message (timestamp in seconds)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None


class Carrier:
    """Stands in for a Faust event around a fetched message: the table reads the partition
    of the current event's message."""

    def __init__(self, message: Fetched) -> None:
        self.message = message


class Reader:
    """A plain kafka-python consumer outside the group: committed offsets, ends, ranges."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._consumer: KafkaConsumer | None = None
        self._lock = threading.Lock()

    def _client(self) -> KafkaConsumer:
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                bootstrap_servers=self._settings.bootstrap_servers,
                group_id=self._settings.app_id,  # to read its committed offsets; never joins
                enable_auto_commit=False,
                max_partition_fetch_bytes=max(1_048_576, self._settings.max_message_bytes * 4),
                **self._settings.kafka_python_security(),  # type: ignore[arg-type]
            )
        return self._consumer

    def connect(self) -> None:
        """Create the client and load every topic's metadata in one request. Otherwise
        kafka-python fetches a topic's on its first use: at a worker's start, the first
        batch of each event topic waited 99.3–124.2 ms for it, one topic after another
        (docs/BENCHMARKS.md, "A worker's first batches")."""
        with self._lock:
            self._client().topics()

    def first_offsets(self, tps: Sequence[TP]) -> dict[TP, int]:
        """Each partition's committed offset of the group, or its log start when nothing
        was committed (the log starts in one request)."""
        with self._lock:
            consumer = self._client()
            parts = [TopicPartition(*tp) for tp in tps]
            committed = {part: consumer.committed(part) for part in parts}
            missing = [part for part, offset in committed.items() if offset is None]
            starts = consumer.beginning_offsets(missing) if missing else {}
            return {
                (part.topic, part.partition): int(offset if offset is not None else starts[part])
                for part, offset in committed.items()
            }

    def end_offsets(self, tps: Sequence[TP]) -> dict[TP, int]:
        with self._lock:
            parts = [TopicPartition(*tp) for tp in tps]
            ends = self._client().end_offsets(parts) if parts else {}
            return {(p.topic, p.partition): int(o) for p, o in ends.items()}

    def read(self, tp: TP, start: int, stop: int, timeout: float = 30.0) -> list[Fetched]:
        """Messages of `tp` from `start` up to `stop` (exclusive), as far as they exist."""
        with self._lock:
            consumer, part = self._client(), TopicPartition(*tp)
            consumer.assign([part])
            first = int(consumer.beginning_offsets([part])[part])
            consumer.seek(part, max(start, first))
            out: list[Fetched] = []
            deadline = time.monotonic() + timeout
            while consumer.position(part) < stop and time.monotonic() < deadline:
                for record in consumer.poll(timeout_ms=500).get(part, []):
                    if record.offset >= stop:
                        break
                    ts = record.timestamp / 1000 if record.timestamp is not None else None
                    out.append(Fetched(tp[0], tp[1], record.offset, record.key, record.value, ts))
            consumer.assign([])
            return out

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None


Process = Callable[[str, list[Any]], Awaitable[None]]


@dataclass
class Continuity:
    """The positions, the side reader, and one lock per event type (an agent and the stall
    check never process one topic at the same time)."""

    reader: Reader
    kinds: dict[str, str]  # topic name -> event type
    stall_seconds: float
    positions: Positions = field(default_factory=Positions)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    recovered: int = 0  # messages this worker read itself because Faust skipped them
    _unmoved: dict[TP, tuple[int, float]] = field(default_factory=dict)

    def lock(self, kind: str) -> asyncio.Lock:
        return self.locks.setdefault(kind, asyncio.Lock())

    async def _begin(self, tps: Iterable[TP]) -> None:
        """Begin the partitions not begun yet, asking the broker for all of them at once."""
        unknown = [tp for tp in dict.fromkeys(tps) if not self.positions.known(tp)]
        if not unknown:
            return
        firsts = await asyncio.to_thread(self.reader.first_offsets, unknown)
        for tp in unknown:
            # The agent and the check may begin a partition at once: whoever comes second
            # must not move back a position the other has already applied messages past.
            if not self.positions.known(tp):
                self.positions.begin(tp, firsts[tp])

    async def in_order(self, records: Sequence[Any]) -> list[Any]:
        """The batch as it must be applied: messages applied already dropped, messages Faust
        skipped read from the broker and put in their place."""
        await self._begin((r.message.topic, r.message.partition) for r in records)
        out: list[Any] = []
        for record in records:
            m = record.message
            tp = (m.topic, m.partition)
            placed = self.positions.place(tp, m.offset)
            if isinstance(placed, str):  # applied already
                continue
            if placed:
                log.warning("Faust skipped %s[%d] offsets %s; reading them", *tp, placed)
                fetched = await asyncio.to_thread(self.reader.read, tp, placed.start, placed.stop)
                self.recovered += len(fetched)
                out += [Carrier(f) for f in fetched]
            out.append(record)
        return out

    async def check(self, assigned: Iterable[TP], process: Process, now: float) -> dict[str, int]:
        """Backlog per event type of the `assigned` source partitions; a partition whose
        backlog has not moved for `stall_seconds` (by the monotonic `now`) is read here and
        given to `process(kind, carriers)` in batches."""
        tps = [tp for tp in assigned if tp[0] in self.kinds]
        await self._begin(tps)
        ends = await asyncio.to_thread(self.reader.end_offsets, tps)
        lag = dict.fromkeys(self.kinds.values(), 0)
        for tp in tps:
            kind, position, end = self.kinds[tp[0]], self.positions.next[tp], ends.get(tp, 0)
            behind = max(0, end - position)
            lag[kind] += behind
            seen_position, since = self._unmoved.get(tp, (None, now))
            if seen_position != position or behind == 0:
                self._unmoved[tp] = (position, now)
                continue
            if now - since < self.stall_seconds:
                continue
            log.warning(
                "%s[%d] has not moved from %d for %.0fs; reading it", *tp, position, now - since
            )
            async with self.lock(kind):
                await self._catch_up(tp, kind, end, process)
            self._unmoved[tp] = (self.positions.next[tp], now)
        return lag

    async def _catch_up(self, tp: TP, kind: str, end: int, process: Process) -> None:
        while self.positions.next[tp] < end:
            start = self.positions.next[tp]
            fetched = await asyncio.to_thread(self.reader.read, tp, start, min(end, start + 500))
            if not fetched:
                return
            self.recovered += len(fetched)
            self.positions.next[tp] = fetched[-1].offset + 1
            await process(kind, [Carrier(f) for f in fetched])

    def forget(self, tps: Iterable[Any]) -> None:
        """Partitions revoked: if assigned again, they start from the later of the group's
        commit and where they had got to (`Positions.begin`)."""
        keys = [(tp.topic, tp.partition) for tp in tps]
        self.positions.forget(keys)
        for key in keys:
            self._unmoved.pop(key, None)
