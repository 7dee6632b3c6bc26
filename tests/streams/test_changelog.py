"""Batched changelog writes (`streams.changelog`) with a stand-in producer and table."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from aiokafka.errors import KafkaTimeoutError
from fake_producer import FakeProducer

from churnstream.streams.changelog import Changelog, ChangelogNotWritten

TOPIC = "app-customer-state-changelog"


@dataclass
class FakeStore(dict[bytes, bytes]):
    persisted: dict[int, int] = field(default_factory=dict)

    def set_persisted_offset(self, tp: object, offset: int) -> None:
        self.persisted[tp.partition] = offset  # type: ignore[attr-defined]


def _table() -> SimpleNamespace:
    return SimpleNamespace(
        data=FakeStore(), changelog_topic=SimpleNamespace(get_topic_name=lambda: TOPIC)
    )


def _message(partition: int) -> SimpleNamespace:
    return SimpleNamespace(partition=partition)


def test_records_go_per_partition_in_order_split_when_a_batch_is_full() -> None:
    table, producer = _table(), FakeProducer(capacity=2)
    changelog = Changelog(table, lambda: producer)
    for p, key, value in [(0, b"a", b"1"), (1, b"b", b"2"), (0, b"c", b"3"), (0, b"a", b"4")]:
        changelog.put(_message(p), key, value)
    assert dict(table.data) == {b"a": b"4", b"b": b"2", b"c": b"3"}
    assert producer.sent == []  # until flushed

    assert asyncio.run(changelog.flush()) == 4
    assert producer.sent == [
        (TOPIC, 0, [(b"a", b"1"), (b"c", b"3")]),
        (TOPIC, 0, [(b"a", b"4")]),
        (TOPIC, 1, [(b"b", b"2")]),
    ]
    # The last changelog offset each partition holds, for Faust's recovery to start after.
    assert table.data.persisted == {0: 2, 1: 0}

    changelog.put(_message(1), b"b", b"5")
    assert asyncio.run(changelog.flush()) == 1
    assert table.data.persisted == {0: 2, 1: 1}


def test_nothing_to_send_touches_no_producer() -> None:
    def no_producer() -> FakeProducer:
        raise AssertionError("not needed")

    assert asyncio.run(Changelog(_table(), no_producer).flush()) == 0


def test_the_changelog_ends_with_the_stored_value_whichever_agent_flushes_first() -> None:
    """Two agents update one customer: the first stores, then awaits its other sends; the
    second stores the newer value and flushes first. The changelog must still end with the
    newer value, as the store does (a rebuild from it would otherwise be stale)."""
    table, producer = _table(), FakeProducer()
    changelog = Changelog(table, lambda: producer)

    async def first() -> int:
        changelog.put(_message(0), b"a", b"older")
        await asyncio.sleep(0.01)  # its alerts and examples
        return await changelog.flush()

    async def second() -> int:
        await asyncio.sleep(0)
        changelog.put(_message(0), b"a", b"newer")
        return await changelog.flush()

    async def both() -> list[int]:
        return list(await asyncio.gather(first(), second()))

    assert asyncio.run(both()) == [0, 2]  # the second flush sent the first one's record too
    assert producer.latest() == {b"a": b"newer"} and table.data[b"a"] == b"newer"
    assert producer.sent == [(TOPIC, 0, [(b"a", b"older"), (b"a", b"newer")])]


def test_flushes_reach_the_producer_in_order_when_it_makes_them_wait() -> None:
    """aiokafka's `send_batch` may wait (metadata, the partition's previous batch) before it
    takes a batch; a later flush must not overtake an earlier one meanwhile."""
    table, producer = _table(), FakeProducer(yields=[5, 0])
    changelog = Changelog(table, lambda: producer)

    async def put_and_flush(value: bytes) -> int:
        changelog.put(_message(0), b"a", value)
        return await changelog.flush()

    async def both() -> list[int]:
        return list(await asyncio.gather(put_and_flush(b"1"), put_and_flush(b"2")))

    asyncio.run(both())
    assert producer.sent == [(TOPIC, 0, [(b"a", b"1")]), (TOPIC, 0, [(b"a", b"2")])]
    assert producer.latest() == {b"a": b"2"}


def test_a_flush_returns_only_once_every_record_put_before_it_is_delivered() -> None:
    table, producer = _table(), FakeProducer(hold=True)
    changelog = Changelog(table, lambda: producer)

    async def run() -> None:
        changelog.put(_message(0), b"a", b"1")
        carrier = asyncio.ensure_future(changelog.flush())  # sends b"a"
        await asyncio.sleep(0)
        changelog.put(_message(1), b"b", b"2")
        later = asyncio.ensure_future(changelog.flush())  # sends b"b", waits for b"a" too
        for _ in range(5):
            await asyncio.sleep(0)
        assert not carrier.done() and not later.done()
        assert len(producer.held) == 2
        producer.release()
        assert await carrier == 1 and await later == 1
        assert table.data.persisted == {0: 0, 1: 0}

    asyncio.run(run())


def test_a_refused_batch_raises_and_moves_no_persisted_offset() -> None:
    table = _table()
    producer = FakeProducer(fail=KafkaTimeoutError("no leader"))
    changelog = Changelog(table, lambda: producer)
    changelog.put(_message(3), b"a", b"1")
    with pytest.raises(ChangelogNotWritten, match="no leader"):
        asyncio.run(changelog.flush())
    assert table.data.persisted == {}


def test_a_refusal_fails_every_later_flush_too() -> None:
    """A failed flush may have carried records another agent put: that agent's own (empty)
    flush, and every later one, must fail too, so that neither acknowledges its batch."""
    table, producer = _table(), FakeProducer(fail=KafkaTimeoutError("no leader"), hold=True)
    changelog = Changelog(table, lambda: producer)

    async def run() -> list[object]:
        changelog.put(_message(0), b"a", b"1")  # the first agent's record...
        changelog.put(_message(0), b"b", b"2")
        carrier = asyncio.ensure_future(changelog.flush())  # ...sent by the second agent
        await asyncio.sleep(0)
        producer.fail = None
        owner = asyncio.ensure_future(changelog.flush())
        changelog.put(_message(0), b"c", b"3")
        later = asyncio.ensure_future(changelog.flush())
        await asyncio.sleep(0)
        producer.release()
        return list(await asyncio.gather(carrier, owner, later, return_exceptions=True))

    results = asyncio.run(run())
    assert all(isinstance(r, ChangelogNotWritten) for r in results), results
    assert table.data.persisted == {}


def test_a_producer_that_cannot_take_the_batch_raises_the_same_error() -> None:
    class Closed(FakeProducer):
        async def send_batch(self, batch: object, topic: str, *, partition: int) -> None:  # type: ignore[override]
            raise RuntimeError("producer closed")

    changelog = Changelog(_table(), Closed)
    changelog.put(_message(0), b"a", b"1")
    with pytest.raises(ChangelogNotWritten, match="producer closed"):
        asyncio.run(changelog.flush())
