"""Batched changelog writes (`streams.changelog`) with a stand-in producer and table."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from aiokafka.errors import KafkaTimeoutError
from fake_producer import FakeProducer

from churnstream.streams.changelog import Changelog, ChangelogNotWritten, Write

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
    writes = [
        changelog.put(_message(p), key, value)
        for p, key, value in [(0, b"a", b"1"), (1, b"b", b"2"), (0, b"c", b"3"), (0, b"a", b"4")]
    ]
    assert writes[1] == Write(1, b"b", b"2")
    assert dict(table.data) == {b"a": b"4", b"b": b"2", b"c": b"3"}

    assert asyncio.run(changelog.send(writes)) == 4
    assert producer.sent == [
        (TOPIC, 0, [(b"a", b"1"), (b"c", b"3")]),
        (TOPIC, 0, [(b"a", b"4")]),
        (TOPIC, 1, [(b"b", b"2")]),
    ]
    # The last changelog offset each partition holds, for Faust's recovery to start after.
    assert table.data.persisted == {0: 2, 1: 0}

    asyncio.run(changelog.send([Write(1, b"b", b"5")]))
    assert table.data.persisted == {0: 2, 1: 1}


def test_nothing_to_send_touches_no_producer() -> None:
    def no_producer() -> FakeProducer:
        raise AssertionError("not needed")

    assert asyncio.run(Changelog(_table(), no_producer).send([])) == 0


def test_a_refused_batch_raises_and_moves_no_persisted_offset() -> None:
    table = _table()
    producer = FakeProducer(fail=KafkaTimeoutError("no leader"))
    changelog = Changelog(table, lambda: producer)
    with pytest.raises(ChangelogNotWritten, match="no leader"):
        asyncio.run(changelog.send([changelog.put(_message(3), b"a", b"1")]))
    assert table.data.persisted == {}


def test_a_producer_that_cannot_take_the_batch_raises_the_same_error() -> None:
    class Closed(FakeProducer):
        async def send_batch(self, batch: object, topic: str, *, partition: int) -> None:  # type: ignore[override]
            raise RuntimeError("producer closed")

    changelog = Changelog(_table(), Closed)
    with pytest.raises(ChangelogNotWritten, match="producer closed"):
        asyncio.run(changelog.send([Write(0, b"a", b"1")]))
