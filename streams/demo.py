"""`churnstream demo`: the local broker, a worker and a simulated customer base, end to end.

Starts `deploy/local/kafka`, creates the topics, runs a worker in a child process, streams
simulated customers (with a sprinkling of malformed messages) into the topics, waits until
the worker has processed them and prints what happened. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from churnstream.streams.malformed import malformed_messages
from churnstream.streams.producing import produce_events
from churnstream.streams.settings import Settings
from churnstream.streams.simulation import simulate
from churnstream.streams.topics import create_topics

REPO = Path(__file__).resolve().parents[1]
KAFKA_SCRIPT = REPO / "deploy" / "local" / "kafka"


def scrape(url: str) -> dict[str, float]:
    """Sum of each sample name across labels, from a /metrics page."""
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - our own loopback URL
        text = resp.read().decode()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def scrape_or_empty(url: str) -> dict[str, float]:
    try:
        return scrape(url)
    except OSError:
        return {}


@contextmanager
def child(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own executable
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def run_demo(settings: Settings, customers: int, days: int, seed: int, keep_broker: bool) -> None:
    echo = typer.echo
    echo("1/5 starting the local Kafka broker (first run fetches its jars from Maven Central)")
    subprocess.run([str(KAFKA_SCRIPT), "up"], check=True)  # noqa: S603
    try:
        echo("2/5 creating topics")
        create_topics(settings)
        workdir = settings.data_dir.parent
        workdir.mkdir(parents=True, exist_ok=True)
        log = workdir / "demo-worker.log"
        env = {
            **os.environ,
            "CHURNSTREAM_APP_ID": settings.app_id,
            "CHURNSTREAM_TOPIC_PREFIX": settings.topic_prefix,
            "CHURNSTREAM_DATA_DIR": str(settings.data_dir),
            "CHURNSTREAM_WEB_PORT": str(settings.web_port),
        }
        url = f"http://{settings.web_host}:{settings.web_port}"
        echo(f"3/5 starting a worker (log: {log})")
        with child([sys.executable, "-m", "churnstream.streams.cli", "worker"], env, log) as proc:
            _wait(lambda: "Recovery complete" in log.read_text(errors="replace"), proc, log)
            before = scrape_or_empty(f"{url}/metrics")
            done_before = before.get("churnstream_events_processed_total", 0) + before.get(
                "churnstream_events_duplicate_total", 0
            )
            echo(f"4/5 streaming {customers} simulated customers over {days} days of event time")
            bad = malformed_messages(max(10, customers // 20), seed=seed)
            producer = KafkaProducer(
                bootstrap_servers=settings.bootstrap_servers,
                linger_ms=20,
                max_request_size=2_000_000,
            )
            for m in bad:
                producer.send(settings.topic(m.topic_type), key=m.key, value=m.value)
            started = time.monotonic()
            sent = produce_events(settings, simulate(customers, days, seed), producer=producer)
            producer.close()
            echo(f"     produced {sent} events and {len(bad)} malformed messages")

            def caught_up() -> bool:
                m = scrape_or_empty(f"{url}/metrics")
                done = (
                    m.get("churnstream_events_processed_total", 0)
                    + m.get("churnstream_events_duplicate_total", 0)
                    - done_before
                )
                return done >= sent

            _wait(caught_up, proc, log, timeout=1800)
            elapsed = time.monotonic() - started
            m = scrape(f"{url}/metrics")
            echo("5/5 summary")
            echo(
                f"     events processed:  {m['churnstream_events_processed_total']:.0f} "
                f"({sent / elapsed:,.0f} events/s including production)"
            )
            echo(
                f"     dead-lettered:     {m.get('churnstream_events_invalid_total', 0):.0f} "
                f"(topic {settings.topic('dead-letter')})"
            )
            echo(f"     customer API:      {url}/customers/cus_000001")
            echo(f"     Prometheus:        {url}/metrics")
    finally:
        if not keep_broker:
            subprocess.run([str(KAFKA_SCRIPT), "down"], check=False)  # noqa: S603


def _wait(check: object, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            msg = f"the worker exited:\n{tail}"
            raise RuntimeError(msg)
        if check():  # type: ignore[operator]
            return
        time.sleep(0.5)
    msg = f"timed out after {timeout}s; see {log}"
    raise TimeoutError(msg)
