"""The real broker, started once per test run (never skipped), and a fresh namespace per test."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from churnstream.streams.demo import KAFKA_SCRIPT as KAFKA
from churnstream.streams.settings import Settings
from churnstream.streams.topics import create_topics
from harness import WorkerProcess, free_port


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """Bootstrap address of the local broker; started here unless it already runs."""
    was_running = (
        subprocess.run([KAFKA, "status"], capture_output=True, check=False).returncode == 0
    )
    up = subprocess.run([KAFKA, "up"], capture_output=True, text=True, timeout=600, check=False)
    assert up.returncode == 0, f"deploy/local/kafka up failed:\n{up.stderr}"
    yield up.stdout.strip().splitlines()[-1]
    if not was_running and not os.environ.get("CHURNSTREAM_KEEP_BROKER"):
        subprocess.run([KAFKA, "down"], capture_output=True, timeout=120, check=False)


@pytest.fixture
def make_settings(broker: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings with topics, group and state of this test's own."""
    ns = f"t{uuid.uuid4().hex[:10]}"

    def make(**overrides: object) -> Settings:
        base: dict[str, object] = {
            "broker": f"kafka://{broker}",
            "topic_prefix": ns,
            "app_id": ns,
            "topic_partitions": 4,
            "data_dir": tmp_path / "data",
            "web_port": free_port(),
            "broker_session_timeout": 8.0,  # a killed worker's partitions move on quickly
        }
        base.update(overrides)
        return Settings(**base)  # type: ignore[arg-type]

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    s = make_settings()
    create_topics(s)
    return s


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    workers: list[WorkerProcess] = []

    def start(settings: Settings, name: str = "worker", ready: bool = True) -> WorkerProcess:
        w = WorkerProcess(settings, tmp_path / f"{name}.log", name).start()
        workers.append(w)
        if ready:
            w.wait_ready()
        return w

    yield start
    for w in workers:
        w.stop()
