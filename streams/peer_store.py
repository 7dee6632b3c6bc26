"""Each partition's usage baseline (`models.peers`), stored in the state table beside its
customers under a reserved key.

A customer is judged against the peers of their partition, whichever worker owns it: the
baseline rides in the partition's store and changelog, so a restarted worker, or one that
took the partition over, goes on with it (before, each process started an empty one, scored
usage on the absolute curve until 30 peers came back, and judged customers against the
peers of whichever partitions it happened to own). Offline, `churnstream replay` groups
customers as Kafka's default partitioner (murmur2, Java's and kafka-python's) places them.

>>> reserved(baseline_key(3)), reserved(b"cus_000003")
(True, False)
>>> partitioner(8)("cus_000001")
7
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from kafka.partitioner.default import murmur2

from churnstream.models.peers import PeerBaseline

log = logging.getLogger(__name__)

RESERVED = b"\x00"  # no customer id starts with it (`schemas.events.CustomerId`)


def baseline_key(partition: int) -> bytes:
    return RESERVED + b"peers/" + str(partition).encode()


def reserved(key: bytes) -> bool:
    """A key of the state table that holds no customer."""
    return key.startswith(RESERVED)


PARTITIONS_CACHED = 1 << 16  # customers whose partition is kept: 9.5 MB of 10-character ids


def partitioner(partitions: int, cached: int = PARTITIONS_CACHED) -> Callable[[str], int]:
    """The partition Kafka's default partitioner gives a customer id's key. kafka-python's
    murmur2 is pure Python (1.46 us a call; 34 ns from the cache), and a usage event asks
    for its customer's partition two or three times: the last `cached` customers' are kept.

    >>> p = partitioner(8)
    >>> p("cus_000001"), p("cus_000001"), p.cache_info().hits
    (7, 7, 1)
    """

    @functools.lru_cache(maxsize=cached)
    def partition(customer_id: str) -> int:
        return (murmur2(customer_id.encode()) & 0x7FFFFFFF) % partitions

    return partition


def loader(table: Any) -> Callable[[int], PeerBaseline]:
    """Reads a partition's stored baseline (an empty one before its first)."""

    def load(partition: int) -> PeerBaseline:
        raw = table.data.get(baseline_key(partition))
        if not raw:
            return PeerBaseline()
        try:
            return PeerBaseline.from_dict(orjson.loads(raw))
        except (ValueError, TypeError, KeyError) as exc:  # a garbled one must not stop scoring
            log.error("stored peer baseline of partition %d is unreadable: %r", partition, exc)
            return PeerBaseline()

    return load


def changed(peers: dict[int, PeerBaseline], partitions: Iterable[int]) -> list[tuple[int, bytes]]:
    """The baselines of `partitions` observed since they were last stored, encoded; marks
    them stored. Those of other partitions stay marked, for a batch that has one of their
    messages to store them with.

    >>> peers = {0: PeerBaseline(), 1: PeerBaseline()}
    >>> peers[0].changed = peers[1].changed = True
    >>> [p for p, _ in changed(peers, [1, 2])], peers[0].changed, peers[1].changed
    ([1], True, False)
    """
    out = []
    for partition in sorted(partitions):
        baseline = peers.get(partition)
        if baseline is not None and baseline.changed:
            out.append((partition, orjson.dumps(baseline.to_dict())))
            baseline.changed = False
    return out
