"""The bench's CPU accounting (`churnstream.streams.bench`), without a broker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest

from churnstream.streams import bench
from churnstream.streams.bench import Phase, machine_busy_seconds


def test_the_machine_busy_seconds_count_this_process_spinning() -> None:
    before, own = machine_busy_seconds(), time.process_time()
    while time.process_time() - own < 0.5:  # half a second of this process's CPU
        pass
    # The machine was busy at least while this process ran (clock ticks are 10 ms).
    assert machine_busy_seconds() - before >= 0.45


def test_a_phase_reports_cores_as_cpu_seconds_over_its_seconds() -> None:
    phase = Phase(seconds=4.0, worker_cpu_seconds=(3.0, 2.4), machine_busy_seconds=7.6)
    assert phase.worker_cores() == [0.75, 0.6]
    assert phase.machine_cores() == 1.9
    assert Phase(0.0, (0.0,), 0.0).worker_cores() == [0.0]


@contextmanager
def scripted(readings: list[dict[str, dict[str, float]]]) -> Iterator[None]:
    """`wait_processed` reading these pages, worker url by url, one reading after another."""
    pages = iter(readings)
    current: dict[str, dict[str, float]] = {}

    def scrape(url: str) -> dict[str, float]:
        nonlocal current
        if url == "a":  # each reading asks worker "a" first
            current = next(pages)
        return current.get(url, {})

    with mock.patch.object(bench, "scrape_or_empty", scrape):
        yield


def page(events: float, cpu: float) -> dict[str, float]:
    return {"churnstream_events_processed_total": events, "process_cpu_seconds_total": cpu}


def workers(*urls: str) -> list[Any]:
    running = SimpleNamespace(poll=lambda: None)
    return [SimpleNamespace(progress_url=url, proc=running, log=f"{url}.log") for url in urls]


def test_a_reading_in_which_a_worker_did_not_answer_is_skipped() -> None:
    readings = [
        {"a": page(0, 4.8), "b": page(0, 2.0)},
        {"a": page(100, 5.0)},  # b's /metrics did not answer: as 0 CPU seconds, from here
        {"a": page(300, 5.4), "b": page(0, 2.2)},  # b would have used all it had since start
        {"a": page(600, 6.0), "b": page(100, 2.4)},  # the join
        {"a": page(700, 6.2), "b": page(300, 2.8)},
    ]
    with scripted(readings):
        phase = bench.wait_processed(workers("a", "b"), 1000, every=0.0)
    assert phase.events == 700  # from the third reading
    assert phase.worker_cpu_seconds == pytest.approx((0.8, 0.6))
    assert phase.joined is not None and phase.joined.events == 300


def test_a_phase_within_one_reading_is_too_short_to_time() -> None:
    readings = [{"a": page(0, 1.0)}, {"a": page(3000, 1.5)}]
    with scripted(readings), pytest.raises(bench.TooShort, match="more events"):
        bench.wait_processed(workers("a"), 3000, every=0.0)
