"""The continuity check on the real broker: what Faust skips or never fetches is read and
applied in its place, in offset order, without Faust (so the faults can be made on purpose)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from churnstream.streams.continuity import Carrier, Continuity, Reader
from churnstream.streams.settings import Settings


def produce(settings: Settings, topic: str, partition: int, n: int) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    for i in range(n):
        producer.send(topic, key=b"k", value=f"{partition}:{i}".encode(), partition=partition)
    producer.flush()
    producer.close()


def commit(settings: Settings, offsets: dict[TopicPartition, int]) -> None:
    """Commit `offsets` for the worker's consumer group, as a worker of it would."""
    committer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=settings.app_id,
        enable_auto_commit=False,
    )
    committer.assign(list(offsets))
    committer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
    committer.close()


def delivered(topic: str, partition: int, offset: int) -> Any:
    """What Faust hands an agent: an event whose message has topic, partition and offset."""
    return SimpleNamespace(message=SimpleNamespace(topic=topic, partition=partition, offset=offset))


def offsets_and_values(records: list[Any]) -> list[tuple[int, bytes | None, bool]]:
    return [
        (r.message.offset, getattr(r.message, "value", None), isinstance(r, Carrier))
        for r in records
    ]


def test_skipped_messages_are_read_in_their_place_and_applied_ones_dropped(
    settings: Settings,
) -> None:
    topic = settings.topic("usage")
    produce(settings, topic, 0, 10)
    continuity = Continuity(Reader(settings), {topic: "usage"}, stall_seconds=60)
    # Faust starts at offset 2 (nothing committed: 0 and 1 were skipped), skips 3-4,
    # redelivers 2, and skips 7-8.
    batch = [delivered(topic, 0, o) for o in (2, 5, 6, 2, 9)]
    try:
        ordered = asyncio.run(continuity.in_order(batch))
    finally:
        continuity.reader.close()
    got = offsets_and_values(ordered)
    assert [o for o, _, _ in got] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    fetched = {o: v for o, v, is_fetched in got if is_fetched}
    assert fetched == {o: f"0:{o}".encode() for o in (0, 1, 3, 4, 7, 8)}
    assert continuity.recovered == 6 and continuity.positions.next[(topic, 0)] == 10


def test_the_first_position_is_the_groups_committed_offset(settings: Settings) -> None:
    topic = settings.topic("login")
    produce(settings, topic, 1, 6)
    commit(settings, {TopicPartition(topic, 1): 4})
    continuity = Continuity(Reader(settings), {topic: "login"}, stall_seconds=60)
    try:
        ordered = asyncio.run(continuity.in_order([delivered(topic, 1, 5)]))
    finally:
        continuity.reader.close()
    # 0-3 were applied by whoever committed 4; 4 was skipped by Faust.
    assert [(o, f) for o, _, f in offsets_and_values(ordered)] == [(4, True), (5, False)]


def test_a_partition_that_does_not_move_is_read_by_the_check(settings: Settings) -> None:
    topic = settings.topic("ticket")
    produce(settings, topic, 0, 3)
    produce(settings, topic, 2, 1200)
    continuity = Continuity(Reader(settings), {topic: "ticket"}, stall_seconds=30)
    applied: list[tuple[str, list[int]]] = []

    async def process(kind: str, carriers: list[Any]) -> None:
        applied.append((kind, [c.message.offset for c in carriers]))

    async def run() -> list[dict[str, int]]:
        assigned = [(topic, 0), (topic, 2), ("someone-elses-topic", 0)]
        lags = [await continuity.check(assigned, process, now=100.0)]
        await continuity.in_order([delivered(topic, 0, o) for o in range(3)])  # 0 moves
        lags.append(await continuity.check(assigned, process, now=120.0))  # 2: 20 s still
        assert applied == []
        lags.append(await continuity.check(assigned, process, now=131.0))  # 2: 31 s: read
        lags.append(await continuity.check(assigned, process, now=200.0))
        return lags

    try:
        lags = asyncio.run(run())
    finally:
        continuity.reader.close()
    assert lags == [{"ticket": 1203}, {"ticket": 1200}, {"ticket": 1200}, {"ticket": 0}]
    # Read in batches of at most 500, in order, each message once.
    assert [len(offsets) for _, offsets in applied] == [500, 500, 200]
    assert [o for _, offsets in applied for o in offsets] == list(range(1200))
    assert {kind for kind, _ in applied} == {"ticket"}


def test_a_partition_the_check_and_an_agent_begin_at_once_keeps_its_position(
    settings: Settings,
) -> None:
    """At start the check and an agent can both ask the broker where a partition begins; the
    second answer must not move the position back over messages the agent applied meanwhile
    (they would be applied again: an invalid one dead-lettered twice)."""
    topic = settings.topic("survey")
    produce(settings, topic, 0, 3)
    asked = threading.Event()
    answer = threading.Event()

    class HeldReader(Reader):
        """The first question (the check's) waits until the agent has applied its batch."""

        def first_offsets(self, tps: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
            if not asked.is_set():
                asked.set()
                answer.wait(10)
            return super().first_offsets(tps)

    continuity = Continuity(HeldReader(settings), {topic: "survey"}, stall_seconds=60)

    async def never(kind: str, carriers: list[Any]) -> None:
        raise AssertionError("nothing stalled")

    async def run() -> tuple[list[Any], dict[str, int], list[Any]]:
        check = asyncio.create_task(continuity.check([(topic, 0)], never, now=0.0))
        await asyncio.to_thread(asked.wait, 10)  # the check waits for its answer
        first = await continuity.in_order([delivered(topic, 0, o) for o in range(3)])
        answer.set()
        lag = await check
        again = await continuity.in_order([delivered(topic, 0, 2)])  # redelivered
        return first, lag, again

    try:
        first, lag, again = asyncio.run(run())
    finally:
        continuity.reader.close()
    assert [o for o, _, _ in offsets_and_values(first)] == [0, 1, 2]
    assert lag == {"survey": 0}
    assert again == [] and continuity.recovered == 0
    assert continuity.positions.next[(topic, 0)] == 3


def test_a_partition_assigned_again_starts_where_the_worker_had_got_to(
    settings: Settings,
) -> None:
    """After a rebalance Faust starts a partition again from the group's commit: what this
    worker applied past it is dropped, not applied again; but a partition another worker
    took further meanwhile starts from that worker's commit."""
    topic = settings.topic("login")
    produce(settings, topic, 0, 6)
    produce(settings, topic, 1, 12)
    ours, theirs = TopicPartition(topic, 0), TopicPartition(topic, 1)
    commit(settings, {ours: 2, theirs: 2})
    continuity = Continuity(Reader(settings), {topic: "login"}, stall_seconds=60)

    async def run() -> tuple[list[Any], list[Any]]:
        await continuity.in_order([delivered(topic, 0, o) for o in range(2, 6)])
        await continuity.in_order([delivered(topic, 1, o) for o in range(2, 4)])
        continuity.forget([ours, theirs])
        # Meanwhile another worker applied partition 1 up to offset 9 and committed 10.
        commit(settings, {theirs: 10})
        again = await continuity.in_order([delivered(topic, 0, o) for o in range(2, 6)])
        taken = await continuity.in_order([delivered(topic, 1, o) for o in range(10, 12)])
        return again, taken

    try:
        again, taken = asyncio.run(run())
    finally:
        continuity.reader.close()
    assert again == []  # 2-5 applied already by this worker
    assert [o for o, _, _ in offsets_and_values(taken)] == [10, 11]
    assert continuity.recovered == 0
    assert continuity.positions.next == {(topic, 0): 6, (topic, 1): 12}


def test_the_partitions_a_batch_or_the_check_begins_are_asked_for_at_once(
    settings: Settings,
) -> None:
    """One question to the broker for every partition a batch, or the check, begins (a
    worker's first batches waited on one partition after another before): a partition the
    group committed begins at the commit, the others at their log start."""
    login, usage = settings.topic("login"), settings.topic("usage")
    produce(settings, login, 0, 4)
    produce(settings, login, 1, 2)
    produce(settings, usage, 0, 3)
    commit(settings, {TopicPartition(login, 0): 2})
    asked: list[list[tuple[str, int]]] = []

    class CountingReader(Reader):
        def first_offsets(self, tps: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
            asked.append(list(tps))
            return super().first_offsets(tps)

    reader = CountingReader(settings)
    reader.connect()  # as the worker does at its start
    continuity = Continuity(reader, {login: "login", usage: "usage"}, stall_seconds=60)

    async def never(kind: str, carriers: list[Any]) -> None:
        raise AssertionError("nothing stalled")

    async def run() -> tuple[list[Any], dict[str, int]]:
        batch = [delivered(login, 0, 2), delivered(login, 1, 0), delivered(login, 0, 3)]
        first = await continuity.in_order(batch)
        assigned = [(login, 0), (login, 1), (usage, 0), (usage, 1)]
        return first, await continuity.check(assigned, never, now=0.0)

    try:
        first, lag = asyncio.run(run())
    finally:
        reader.close()
    assert asked == [[(login, 0), (login, 1)], [(usage, 0), (usage, 1)]]
    assert [o for o, _, _ in offsets_and_values(first)] == [2, 0, 3]
    # Behind: login's partition 1 by its second message, usage's partition 0 by all three.
    assert lag == {"login": 1, "usage": 3}
