"""Helpers for tests against the real local broker: worker processes and topic readers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from churnstream.streams.demo import text_samples, total
from churnstream.streams.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process build the same settings."""
    return settings.child_env(os.environ)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def http_json(url: str, token: str | None = None) -> tuple[int, Any]:
    """Status and decoded body (0 and None when nothing answers); non-JSON bodies as text."""
    status, body = http_get(url, token)
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, body.decode(errors="replace")


def http_get(url: str, token: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url)  # noqa: S310 - loopback URLs built by the tests
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


class WorkerProcess:
    """`churnstream worker` in a child process, logging to a file."""

    def __init__(self, settings: Settings, log_path: Path, name: str = "worker") -> None:
        self.settings = settings
        self.log_path = log_path
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "churnstream.streams.cli", "worker"],
            env=settings_env(self.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = 90) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.tail()}")
            return http_get(f"{self.url}/metrics")[0] == 200 and self.consuming()

        wait_for(ready, timeout, f"{self.name} to start")

    def consuming(self) -> bool:
        """The worker has joined its group and been given partitions."""
        text = self.log_path.read_text(errors="replace")
        return "Recovery complete" in text

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        """The sum of the samples called `name` (that have `labels`, if given); 0 while
        the worker does not answer."""
        text = http_get(f"{self.url}/metrics")[1].decode()
        return total(text_samples(text), {name: labels or {}})

    def tail(self, n: int = 40) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final commit."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 30) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()


def read_topic(settings: Settings, topic: str, expect: int, timeout: float = 60) -> list[Any]:
    """Every record of `topic` from the beginning: at least `expect` of them (waiting for them
    to arrive) and at least up to the end the topic had when called."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=1000,
    )
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
            at_end = all(consumer.position(tp) >= end[tp] for tp in tps)
            if len(records) >= expect and at_end:
                # Take what is left, so a test sees too many records, not just enough.
                for batch in consumer.poll(timeout_ms=1000).values():
                    records.extend(batch)
                return records
        return records
    finally:
        consumer.close()
