"""Faults on the real broker: a worker lost from a pair, a lost disk, a broker outage."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from conftest import KAFKA

from churnstream.models.replay import replay
from churnstream.schemas.events import parse_event_dict
from churnstream.streams.producing import produce_events
from churnstream.streams.settings import Settings
from churnstream.streams.simulation import simulate
from compare import live_records, state_differences
from harness import free_port, wait_for


def stream(customers: int = 60, days: int = 60, seed: int = 31) -> list[dict]:  # type: ignore[type-arg]
    return list(simulate(customers=customers, days=days, seed=seed))


def wait_state(url: str, expected, timeout: float = 240) -> None:  # type: ignore[no-untyped-def]
    ids = sorted(expected.records)

    def equal() -> bool:
        return state_differences(live_records(url, ids), expected) == []

    wait_for(equal, timeout, "the live state to equal the replay's", every=2)


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
