"""The `rocksdb-nowal://` table store: RocksDB without its write-ahead log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import rocksdict

from churnstream.streams.store import Store

# Writes one key through the worker's store for partition 0 of a table, then either stops
# the store (a clean shutdown) or dies at once (a killed worker).
WRITER = """
import asyncio, os, sys
import faust
app = faust.App("store-test", broker="memory://", store=sys.argv[3], datadir=sys.argv[1])
table = app.Table("state", partitions=1)
db = table.data._db_for_partition(0)
db[b"customer"] = b"record"
if sys.argv[2] == "stop":
    asyncio.run(table.data.stop())
os._exit(0)
"""


def stored_after(tmp_path: Path, how: str, url: str = "rocksdb-nowal://") -> bytes | None:
    command = [sys.executable, "-c", WRITER, str(tmp_path), how, url]
    subprocess.run(command, check=True, timeout=60)
    [path] = tmp_path.rglob("*state-0.db")
    db = rocksdict.Rdict(str(path))
    try:
        value: bytes | None = db.get(b"customer")
        return value
    finally:
        db.close()


def test_the_url_names_this_store() -> None:
    from faust.stores import by_url

    assert by_url("rocksdb-nowal://") is Store


def test_a_killed_worker_loses_unflushed_writes_the_changelog_then_restores(
    tmp_path: Path,
) -> None:
    """Without the WAL a put lives in the memtable until flushed: a worker killed at once
    loses it (and the persisted offset written after it), so Faust replays the changelog."""
    assert stored_after(tmp_path, "kill") is None


def test_a_stopped_worker_flushes_its_writes(tmp_path: Path) -> None:
    assert stored_after(tmp_path, "stop") == b"record"


def test_faust_s_own_store_keeps_a_killed_worker_s_writes_in_its_wal(tmp_path: Path) -> None:
    """The contrast: with the WAL the same put survives the kill."""
    assert stored_after(tmp_path, "kill", url="rocksdb://") == b"record"
