"""Faults on the real broker: a worker lost from a pair, a lost disk, a broker outage."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import orjson
from conftest import KAFKA

from churnstream.models.replay import replay
from churnstream.schemas.events import parse_event_dict
from churnstream.streams.app import STATE_TABLE
from churnstream.streams.producing import produce_events
from churnstream.streams.settings import Settings
from churnstream.streams.simulation import simulate
from compare import live_records, state_differences
from harness import free_port, read_topic, wait_for


def stream(customers: int = 60, days: int = 60, seed: int = 31) -> list[dict]:  # type: ignore[type-arg]
    return list(simulate(customers=customers, days=days, seed=seed))


def wait_state(url: str, expected, timeout: float = 240) -> None:  # type: ignore[no-untyped-def]
    ids = sorted(expected.records)

    differences: list[str] = []

    def equal() -> bool:
        differences[:] = state_differences(live_records(url, ids), expected)
        return differences == []

    try:
        wait_for(equal, timeout, "the live state to equal the replay's", every=2)
    except AssertionError as exc:
        shown = "\n".join(differences[:20])
        raise AssertionError(f"{exc}; {len(differences)} differences, first:\n{shown}") from None


def test_the_survivor_of_two_workers_takes_over_and_nothing_is_lost(  # type: ignore[no-untyped-def]
    settings, start_worker, tmp_path: Path
) -> None:
    events = stream()
    expected = replay([parse_event_dict(e) for e in events])
    other = Settings(
        **settings.model_dump(exclude_none=True)
        | {"web_port": free_port(), "data_dir": tmp_path / "second"}
    )
    survivor = start_worker(settings, name="survivor")
    victim = start_worker(other, name="victim")
    produce_events(settings, events)
    wait_for(
        lambda: victim.metric("churnstream_events_processed_total") > 0, 120, "the victim to work"
    )
    victim.kill()
    wait_state(survivor.url, expected)


def test_a_deleted_data_directory_is_rebuilt_from_the_changelog(  # type: ignore[no-untyped-def]
    settings, start_worker
) -> None:
    events = stream(seed=32)
    expected = replay([parse_event_dict(e) for e in events])
    worker = start_worker(settings, name="first")
    produce_events(settings, events)
    wait_state(worker.url, expected)
    # Each record is the customer's state after more events than the one before it: a
    # changelog that goes backwards was written out of store order (five agents write).
    sent = int(worker.metric("churnstream_changelog_records_sent_total"))
    changelog = read_topic(settings, f"{settings.app_id}-{STATE_TABLE}-changelog", expect=sent)
    assert len(changelog) == sent >= len(expected.records)  # 1 GB segments: none compacted yet
    applied: dict[bytes, int] = {}
    for record in sorted(changelog, key=lambda r: (r.partition, r.offset)):
        total = sum(orjson.loads(record.value)["counts"].values())
        assert total >= applied.get(record.key, 0), (record.key, record.partition, record.offset)
        applied[record.key] = total
    worker.stop()
    shutil.rmtree(settings.data_dir)
    again = start_worker(settings, name="second")
    wait_state(again.url, expected, timeout=120)
    # Rebuilt from the changelog, not from the events again: nothing was reprocessed.
    assert again.metric("churnstream_events_processed_total") == 0


def test_the_worker_resumes_after_the_broker_is_down_for_30_seconds(  # type: ignore[no-untyped-def]
    settings, start_worker
) -> None:
    events = stream(seed=33)
    expected = replay([parse_event_dict(e) for e in events])
    half = len(events) // 2
    worker = start_worker(settings)
    produce_events(settings, events[:half])
    wait_for(lambda: worker.metric("churnstream_events_processed_total") >= half, 120, "half")
    subprocess.run([KAFKA, "down"], check=True, capture_output=True, timeout=120)
    time.sleep(30)
    subprocess.run([KAFKA, "up"], check=True, capture_output=True, timeout=300)
    assert worker.proc is not None and worker.proc.poll() is None, "the worker stayed up"
    produce_events(settings, events[half:])
    wait_state(worker.url, expected, timeout=300)
