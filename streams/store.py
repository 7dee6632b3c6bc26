"""Faust's RocksDB table store without RocksDB's write-ahead log (store URL `rocksdb-nowal://`).

The table's changelog topic is the log: Kafka Streams runs its RocksDB stores the same way.
Without the WAL a put is not made durable by RocksDB until its memtable is flushed; a
worker that dies loses what was in the memtable, and Faust's "persisted offset" (kept in
the same database) with it, so the restart replays the changelog from the older offset and
ends with every record Kafka has. Each update's messages ride in the record's outbox
(`churnstream.models.outbox`) and are published only after the changelog has the record,
so nothing is published that a restart could then forget. The memtables are flushed when a
partition is revoked and when the worker stops, so that a clean restart replays nothing.

On the 2-core VM of docs/BENCHMARKS.md the worker ran about 9 % faster without the WAL
alone (`docs/profile/profile_worker.py 200000 5000`, four runs alternating); shipped
together with the outbox, whose wait for the alerts' delivery costs some of that back, about
3 % faster than before both (six runs alternating, docs/BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any

import rocksdict
from faust.stores import rocksdb
from faust.types import TP, CollectionT


def without_wal() -> rocksdict.WriteOptions:
    options = rocksdict.WriteOptions()
    options.disable_wal = True
    return options


class Store(rocksdb.Store):
    """Registered as `rocksdb-nowal` through the `faust.stores` entry point (pyproject)."""

    def _open_for_partition(self, partition: int) -> Any:
        db = super()._open_for_partition(partition)
        db.set_write_options(without_wal())
        return db

    def revoke_partitions(self, table: CollectionT, tps: AbstractSet[TP]) -> None:
        for tp in tps:
            if tp.topic in table.changelog_topic.topics and tp.partition in self._dbs:
                self._dbs[tp.partition].flush()
        super().revoke_partitions(table, tps)

    async def stop(self) -> None:
        for db in self._dbs.values():
            db.flush()
        await super().stop()
