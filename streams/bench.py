"""`churnstream bench`: throughput of the pipeline on the local broker, measured in one run.

1. Loads a simulated stream (all five event types) into fresh topics.
2. The ceiling: a raw aiokafka consumer reading and JSON-decoding every message.
3. One worker (validation, state, health, a churn prediction by a model trained offline and
   published to the models topic first, churn snapshots, alerts) from the first message to
   the last; its memory and bytes of state per customer.
4. The time to rebuild that worker's state from the changelog after its data is deleted.
5. Two workers in one consumer group.
6. Event-to-alert latency: a fresh worker fed at half the one-worker rate
   (`churnstream.streams.latency`).

For 3 and 5 it reports the CPU the workers used (their `process_cpu_seconds_total`) and the
machine's busy CPU (every process's, the broker's and the bench's too, from /proc/stat) in
the same time, in cores: whether two workers had the cores to run twice as fast.

Prints one JSON object; `docs/BENCHMARKS.md` records a run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from churnstream.models.replay import replay
from churnstream.models.scoring import ScoringContext
from churnstream.schemas.events import parse_event_dict
from churnstream.streams.demo import KAFKA_SCRIPT, samples, scrape_or_empty
from churnstream.streams.latency import paced_alert_latency
from churnstream.streams.producing import make_producer, produce_events
from churnstream.streams.settings import Settings
from churnstream.streams.simulation import simulate
from churnstream.streams.topics import create_topics, delete_topics
from churnstream.streams.trainer import MODEL_KEY, Trainer, new_learner

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def events(total: int, customers: int, seed: int) -> Iterator[dict[str, Any]]:
    days = 1
    while True:  # enough simulated days for `total` events
        days *= 2
        stream = list(islice(simulate(customers, days, seed), total))
        if len(stream) >= total:
            yield from stream
            return


def trained_model_message(settings: Settings) -> bytes:
    """A churn model learned by replaying a separate simulated history (300 customers, 150
    days), as the trainer would publish it: the workers score every event with a real model
    instead of the prior."""
    trainer = Trainer(settings, new_learner(settings))
    history = [parse_event_dict(e) for e in simulate(300, 150, seed=9)]
    replay(history, ScoringContext(), learner=trainer.learner)
    return trainer.model_message()


def publish_model(settings: Settings, message: bytes) -> None:
    producer = make_producer(settings)
    producer.send(settings.topic("models"), key=MODEL_KEY, value=message).get(timeout=30)
    producer.close()


async def raw_consume(settings: Settings, total: int) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [
            TopicPartition(t, p)
            for t in settings.event_topics().values()
            for p in (consumer.partitions_for_topic(t) or range(settings.topic_partitions))
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        started, n = time.perf_counter(), 0
        while n < total:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batches.values():
                for r in records:
                    orjson.loads(r.value)
                n += len(records)
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()


class Worker:
    def __init__(self, settings: Settings, name: str, workdir: Path) -> None:
        self.settings, self.log = settings, workdir / f"{name}.log"
        # An empty data directory: a store left by an earlier run in `workdir` holds changelog
        # offsets that this run's topics do not have, and Faust refuses to start.
        shutil.rmtree(settings.data_dir, ignore_errors=True)
        env = settings.child_env(os.environ) | {
            "CHURNSTREAM_LOG_LEVEL": "info",
            "CHURNSTREAM_BROKER_SESSION_TIMEOUT": "10",
        }
        # A fresh log: `wait_log` must not find what an earlier run in `workdir` wrote (a
        # recovery that "completed" at once in a rerun).
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "churnstream.streams.cli", "worker"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.url = f"http://127.0.0.1:{settings.web_port}/metrics"

    def metric(self, name: str) -> float:
        return scrape_or_empty(self.url).get(name, 0.0)

    def labels(self, name: str) -> dict[str, str]:
        """The labels of the worker's first sample called `name` (an Info metric's)."""
        return next((dict(x.labels) for x in samples(self.url) if x.name == name), {})

    def wait_log(self, text: str) -> None:
        """Until the worker's log says `text`; RuntimeError if it exits first."""
        while text not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None:
                msg = f"worker exited before {text!r}; see {self.log}"
                raise RuntimeError(msg)
            time.sleep(0.1)

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


class Stalled(Exception):
    def __init__(self, done: float, total: int, seconds: float) -> None:
        super().__init__(f"no progress for {seconds:.0f} s at {done:.0f} of {total}")
        self.done = done


def machine_busy_seconds() -> float:
    """CPU seconds every core of this machine spent busy since boot (not idle, not waiting
    for I/O; Linux's /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Phase:
    """Workers processing a stream, from the first processed message to the last."""

    seconds: float
    worker_cpu_seconds: tuple[float, ...]  # each worker's, in that time
    machine_busy_seconds: float  # every process's: the workers', the broker's, the bench's

    def worker_cores(self) -> list[float]:
        return [
            round(c / self.seconds, 2) if self.seconds else 0.0 for c in self.worker_cpu_seconds
        ]

    def machine_cores(self) -> float:
        return round(self.machine_busy_seconds / self.seconds, 2) if self.seconds else 0.0


def wait_processed(
    workers: list[Worker], total: int, timeout: float = 7200, stall: float = 120
) -> Phase:
    """From the first processed message to the last; Stalled when nothing moves."""
    deadline = time.monotonic() + timeout
    first: tuple[float, list[float], float] | None = None
    last_done, last_change = -1.0, time.monotonic()
    while time.monotonic() < deadline:
        pages = [scrape_or_empty(w.url) for w in workers]
        busy = machine_busy_seconds()
        # Each simulated event is applied once (its redelivered or re-read copies count as
        # duplicates, which would count it twice here).
        done = sum(
            p.get("churnstream_events_processed_total", 0.0)
            + p.get("churnstream_events_invalid_total", 0.0)
            for p in pages
        )
        cpu = [p.get("process_cpu_seconds_total", 0.0) for p in pages]
        now = time.monotonic()
        if first is None and done > 0:
            first = (now, cpu, busy)
        if done >= total:
            start, start_cpu, start_busy = first or (now, cpu, busy)
            return Phase(
                now - start,
                tuple(c - c0 for c, c0 in zip(cpu, start_cpu, strict=True)),
                busy - start_busy,
            )
        if done != last_done:
            last_done, last_change = done, now
        elif now - last_change > stall:
            raise Stalled(done, total, now - last_change)
        for w in workers:
            if w.proc.poll() is not None:
                msg = f"a worker exited; see {w.log}"
                raise RuntimeError(msg)
        time.sleep(0.2)
    msg = "timed out"
    raise TimeoutError(msg)


def measure_latency(
    settings: Settings,
    model: bytes,
    workdir: Path,
    rate: float,
    seconds: float,
    customers: int = 500,
) -> dict[str, Any]:
    """Event-to-alert latency of one fresh worker on new topics (`settings`) scoring with
    `model`, fed at `rate` events per second for `seconds`."""
    create_topics(settings)
    publish_model(settings, model)
    w = Worker(settings, "latency", workdir)
    try:
        w.wait_log("Worker ready")
        feed = int(rate * seconds) + 1000  # more than the paced run sends
        # Fewer customers than the throughput runs, so that a minute of events spans weeks
        # of their history: alerts come from change over days, not from a first event.
        return paced_alert_latency(
            settings, events(feed, min(customers, 500), seed=2), rate, seconds
        )
    finally:
        w.stop()


def run_bench(
    base: Settings, total: int, customers: int, workdir: Path, latency_seconds: float = 60
) -> dict[str, Any]:
    """Every phase on new topics (a namespace of this run's own), deleted afterwards: a 1 M
    run leaves gigabytes in the broker otherwise."""
    subprocess.run([str(KAFKA_SCRIPT), "up"], check=True, capture_output=True)  # noqa: S603
    ns = f"bench{uuid.uuid4().hex[:6]}"
    try:
        return _run_phases(base, ns, total, customers, workdir, latency_seconds)
    finally:
        try:
            delete_topics(base, ns)
        except Exception:  # the run's own error, if any, matters more
            log.exception("deleting the bench topics %s* failed", ns)


def _run_phases(
    base: Settings, ns: str, total: int, customers: int, workdir: Path, latency_seconds: float
) -> dict[str, Any]:
    settings = base.model_copy(update={"topic_prefix": ns, "app_id": f"{ns}-one"})
    create_topics(settings)
    started = time.perf_counter()
    producer = make_producer(settings)
    sent = produce_events(settings, events(total, customers, seed=1), producer=producer)
    producer.close()
    load_seconds = time.perf_counter() - started
    model = trained_model_message(settings)
    publish_model(settings, model)  # every worker below shares these topics
    raw = asyncio.run(raw_consume(settings, sent))

    one_dir = workdir / "one"
    one = settings.model_copy(update={"data_dir": one_dir, "web_port": free_port()})
    create_topics(one)
    w = Worker(one, "one", workdir)
    try:
        one_phase = wait_processed([w], sent)
        time.sleep(6)  # the gauges refresh every 5 s
        rss = w.rss_bytes()
        state_bytes = w.metric("churnstream_state_bytes")
        state_customers = w.metric("churnstream_state_customers") or 1
        model_version = w.metric("churnstream_worker_model_version")
        event_loop = w.labels("churnstream_worker_info").get("event_loop")
    finally:
        w.stop()
    shutil.rmtree(one_dir, ignore_errors=True)
    started = time.perf_counter()
    w = Worker(one, "one-recovered", workdir)
    try:
        w.wait_log("Recovery complete")
        recovery_seconds = time.perf_counter() - started
    finally:
        w.stop()

    two = settings.model_copy(update={"app_id": f"{ns}-two"})
    create_topics(two)
    pair = [
        Worker(
            two.model_copy(update={"data_dir": workdir / f"two{i}", "web_port": free_port()}),
            f"two{i}",
            workdir,
        )
        for i in range(2)
    ]
    stalled, two_phase = None, None
    try:
        two_phase = wait_processed(pair, sent)
    except Stalled as err:  # a known faust-streaming fault: see docs/BENCHMARKS.md
        stalled = str(err)
    finally:
        for w in pair:
            w.stop()
    one_rate = sent / one_phase.seconds
    two_rate = sent / two_phase.seconds if two_phase else float("nan")

    lat = settings.model_copy(
        update={
            "topic_prefix": f"{ns}-lat",
            "app_id": f"{ns}-lat",
            "data_dir": workdir / "lat",
            "web_port": free_port(),
        }
    )
    latency = measure_latency(lat, model, workdir, one_rate / 2, latency_seconds, customers)
    return {
        "events": sent,
        "customers": customers,
        "partitions": settings.topic_partitions,
        "batch_max": settings.batch_max,
        "batch_within_s": settings.batch_within,
        "event_loop": event_loop,  # what the worker reports it ran on
        "load_seconds": round(load_seconds, 1),
        "raw_consumer_events_per_s": round(raw),
        "one_worker_events_per_s": round(one_rate),
        "two_workers_events_per_s": round(two_rate),
        "one_worker_over_raw": round(one_rate / raw, 3),
        "two_over_one": round(two_rate / one_rate, 3),
        "one_worker_cpu_cores": one_phase.worker_cores()[0],
        "one_worker_machine_busy_cores": one_phase.machine_cores(),
        "two_workers_cpu_cores": two_phase.worker_cores() if two_phase else None,
        "two_workers_machine_busy_cores": two_phase.machine_cores() if two_phase else None,
        "worker_rss_mb": round(rss / 2**20, 1),
        "state_bytes_per_customer": round(state_bytes / state_customers),
        "recovery_seconds": round(recovery_seconds, 1),
        "two_workers_stalled": stalled,
        "scored_with_model_version": int(model_version),
        "latency_at_half_load": latency,
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}",
    }
