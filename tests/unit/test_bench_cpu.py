"""The bench's CPU accounting (`churnstream.streams.bench`), without a broker."""

from __future__ import annotations

import time

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
