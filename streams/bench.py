"""`churnstream bench`: throughput of the pipeline on the local broker, measured in one run.

1. Loads a simulated stream (all five event types) into fresh topics.
2. The ceiling: a raw aiokafka consumer reading and JSON-decoding every message.
3. One worker (validation, state, health, a churn prediction by a model trained offline and
   published to the models topic first, churn snapshots, alerts) from the first message to
   the last; its memory and bytes of state per customer.
4. The time to rebuild that worker's state from the changelog after its data is deleted,
   and how long the rebuilt worker then took to count its customers again (its log).
5. Two workers in one consumer group.
6. One worker again, as in 3 (a new consumer group, an empty store): the two-worker phase is
   compared with the mean of the one-worker rates either side of it, so that a machine
   whose speed drifts in one direction over the round (a shared VM's does) moves both sides
   of the ratio alike.
7. Event-to-alert latency: a fresh worker fed at half the one-worker rate
   (`churnstream.streams.latency`).

For 3 and 5 it reports the CPU the workers used (their `process_cpu_seconds_total`), the
broker's, and the machine's busy CPU (every process's, the bench's too, from /proc/stat) in
the same time, in cores: whether two workers had the cores to run twice as fast.

With `repeat` above 1, steps 2, 3, 5, 6 and 7 run that many times (2, 3, 5 and 6 over the
same loaded topics, with new consumer groups and empty stores; 7 on new topics at half the
round's own one-worker rate), in that order each time. The rates, ratios and latencies
reported are the medians over these rounds (each ratio taken within its round), and `rounds`
lists every round's figures: one run's figures vary by several per cent on a shared
machine, and a p99 of a minute's few hundred alerts by more.

Prints one JSON object; `docs/BENCHMARKS.md` records a run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from churnstream.models.replay import replay
from churnstream.models.scoring import ScoringContext
from churnstream.schemas.events import parse_event_dict
from churnstream.streams.demo import KAFKA_SCRIPT, samples_or_empty, scrape_or_empty, sums
from churnstream.streams.latency import paced_alert_latency
from churnstream.streams.producing import make_producer, produce_events
from churnstream.streams.settings import Settings
from churnstream.streams.simulation import simulate
from churnstream.streams.topics import create_topics, delete_topics
from churnstream.streams.trainer import MODEL_KEY, Trainer, new_learner

log = logging.getLogger(__name__)
TICK = 1 / os.sysconf("SC_CLK_TCK")  # seconds in a tick of /proc's CPU times
# What the progress reads (`wait_processed`, every 0.2 s) ask each worker for: not the whole
# /metrics page, whose serving and parsing would take CPU from the workers being measured.
PROGRESS = (
    "churnstream_events_processed_total",
    "churnstream_events_invalid_total",
    "process_cpu_seconds_total",
)


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
        self.progress_url = f"{self.url}?{urlencode([('name[]', n) for n in PROGRESS])}"

    def wait_log(self, text: str | re.Pattern[str], after: str = "") -> re.Match[str]:
        """Until the worker's log says `text` (a string or a pattern), after its first `after`
        if given; the match. RuntimeError if it exits first."""
        pattern = text if isinstance(text, re.Pattern) else re.compile(re.escape(text))
        while True:
            log = self.log.read_text(errors="replace")
            start = log.find(after)
            if start >= 0 and (found := pattern.search(log, start)):
                return found
            if self.proc.poll() is not None:
                msg = f"worker exited before {pattern.pattern!r}; see {self.log}"
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


class TooShort(ValueError):
    """A phase that began and ended between two readings: it has no length to time."""

    def __init__(self, total: int, every: float) -> None:
        super().__init__(
            f"all {total} events were processed between two readings {every} s apart: "
            "too few to time; give the bench more events"
        )


class ProcStat(NamedTuple):
    """The fields of a /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat line that we read."""

    name: str  # the command (a thread's name for a task): up to 15 characters, may hold spaces
    ppid: int
    ticks: int  # user + system CPU, in 1/SC_CLK_TCK s


def parse_stat(line: str) -> ProcStat:
    """Parse a /proc/<pid>/stat line; the command name may hold spaces and parentheses, so the
    fields after it are found from its last closing parenthesis.

    >>> parse_stat("42 (a (b) c) S 7 " + "0 " * 9 + "30 12 0 0")
    ProcStat(name='a (b) c', ppid=7, ticks=42)
    """
    head, tail = line.rsplit(")", 1)
    fields = tail.split()  # state, ppid, ...; utime and stime are the 12th and 13th
    return ProcStat(head.split("(", 1)[1], int(fields[1]), int(fields[11]) + int(fields[12]))


def machine_ticks() -> tuple[int, int]:
    """(busy, stolen) ticks of all cores since boot, from the first line of Linux's /proc/stat:
    busy is user, nice, system, irq and softirq time (not idle, not waiting for I/O); stolen is
    time the hypervisor ran something else while this VM wanted a core."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq, steal


def machine_busy_seconds() -> float:
    """CPU seconds every core of this machine spent busy since boot, stolen time included
    (`machine_ticks`)."""
    return sum(machine_ticks()) * TICK


def process_cpu_seconds(pid: int | None) -> float:
    """CPU seconds (user and system) process `pid` has used; 0.0 for None or a process that
    is gone (Linux's /proc/<pid>/stat).

    >>> process_cpu_seconds(os.getpid()) > 0, process_cpu_seconds(None)
    (True, 0.0)
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text() if pid else ""
    except OSError:
        return 0.0
    return parse_stat(stat).ticks * TICK if stat else 0.0


def broker_pid() -> int | None:
    """The local broker's JVM (`deploy/local/kafka pid`, for the port in the environment)."""
    out = subprocess.run([str(KAFKA_SCRIPT), "pid"], capture_output=True, text=True, check=False)  # noqa: S603
    return int(out.stdout) if out.returncode == 0 and out.stdout.strip().isdigit() else None


@dataclass(frozen=True, slots=True)
class Join:
    """The first moment every worker of a group had processed a message (the group's
    rebalance had given each partitions): seconds into the phase, and the events processed
    from then to the phase's end."""

    after_seconds: float
    events: float


@dataclass(frozen=True, slots=True)
class Phase:
    """Workers processing a stream, from the first processed message to the last."""

    seconds: float
    worker_cpu_seconds: tuple[float, ...]  # each worker's, in that time
    machine_busy_seconds: float  # every process's: the workers', the broker's, the bench's
    broker_cpu_seconds: float = 0.0  # the local broker's JVM
    events: float = 0.0  # processed in that time
    # Of several workers, when every one of them had processed a message: None for one
    # worker, or when one did all the work before another got a partition.
    joined: Join | None = None

    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def joined_rate(self) -> float:
        """The rate from the moment every worker was processing to the last message; the
        whole phase's when there was no such moment.

        >>> Phase(5.0, (4.5, 4.5), 10.0, events=1000, joined=Join(1.0, 900)).joined_rate()
        225.0
        """
        if self.joined is None:
            return self.rate()
        seconds = self.seconds - self.joined.after_seconds
        return self.joined.events / seconds if seconds else 0.0

    def worker_cores(self) -> list[float]:
        return [self._cores(c) for c in self.worker_cpu_seconds]

    def machine_cores(self) -> float:
        return self._cores(self.machine_busy_seconds)

    def broker_cores(self) -> float:
        return self._cores(self.broker_cpu_seconds)

    def _cores(self, cpu_seconds: float) -> float:
        return round(cpu_seconds / self.seconds, 2) if self.seconds else 0.0


@dataclass(frozen=True, slots=True)
class Mark:
    """What `wait_processed` read at one moment: the time, events done, each worker's CPU,
    the machine's busy seconds and the broker's CPU."""

    at: float
    done: float
    cpu: tuple[float, ...]
    busy: float
    broker_cpu: float

    def since(self, start: Mark) -> Phase:
        """The phase from `start` to this moment.

        >>> a, b = Mark(1.0, 10, (2.0,), 3.0, 0.5), Mark(3.0, 30, (3.5,), 6.0, 0.7)
        >>> phase = b.since(a)
        >>> phase.rate(), phase.worker_cores(), phase.machine_cores()
        (10.0, [0.75], 1.5)
        """
        return Phase(
            self.at - start.at,
            tuple(c - c0 for c, c0 in zip(self.cpu, start.cpu, strict=True)),
            self.busy - start.busy,
            self.broker_cpu - start.broker_cpu,
            events=self.done - start.done,
        )


def wait_processed(
    workers: list[Worker],
    total: int,
    timeout: float = 7200,
    stall: float = 120,
    broker: int | None = None,
    every: float = 0.2,
) -> Phase:
    """From the first processed message to the last, read every `every` seconds; Stalled
    when nothing moves, TooShort when one reading saw the first and the last. `broker`: the
    broker's pid, whose CPU is measured too.

    A reading in which any worker's /metrics did not answer is skipped: it would count
    that worker's events and CPU seconds as none, and a phase measured from or to such a
    reading would give the worker all its CPU since it started, or less than none."""
    deadline = time.monotonic() + timeout
    first: Mark | None = None  # the first processed message
    joined: Mark | None = None  # the first moment every worker had processed one
    last_done, last_change = -1.0, time.monotonic()
    while time.monotonic() < deadline:
        mark, each = _read(workers, broker)
        if mark is not None:
            if first is None and mark.done > 0:
                first = mark
            if joined is None and len(workers) > 1 and min(each) > 0:
                joined = mark
            if first is not None and mark.done >= total:
                if first is mark:
                    raise TooShort(total, every)
                whole = mark.since(first)
                if joined is None or joined is mark:
                    return whole
                return replace(whole, joined=Join(joined.at - first.at, mark.done - joined.done))
            if mark.done != last_done:
                last_done, last_change = mark.done, mark.at
        if time.monotonic() - last_change > stall:
            raise Stalled(max(last_done, 0.0), total, time.monotonic() - last_change)
        for w in workers:
            if w.proc.poll() is not None:
                msg = f"a worker exited; see {w.log}"
                raise RuntimeError(msg)
        time.sleep(every)
    msg = "timed out"
    raise TimeoutError(msg)


def _read(workers: list[Worker], broker: int | None) -> tuple[Mark | None, list[float]]:
    """One reading of every worker's /metrics (None if any did not answer), and the events
    each had applied."""
    pages = [scrape_or_empty(w.progress_url) for w in workers]
    if not all(pages):
        return None, []
    # Each simulated event is applied once (its redelivered or re-read copies count as
    # duplicates, which would count it twice here).
    each = [
        p.get("churnstream_events_processed_total", 0.0)
        + p.get("churnstream_events_invalid_total", 0.0)
        for p in pages
    ]
    mark = Mark(
        time.monotonic(),
        sum(each),
        tuple(p.get("process_cpu_seconds_total", 0.0) for p in pages),
        machine_busy_seconds(),
        process_cpu_seconds(broker),
    )
    return mark, each


def measure_latency(
    settings: Settings,
    model: bytes,
    workdir: Path,
    rate: float,
    seconds: float,
    customers: int = 500,
    samples: list[tuple[float, float, float]] | None = None,
) -> dict[str, Any]:
    """Event-to-alert latency of one fresh worker on new topics (`settings`) scoring with
    `model`, fed at `rate` events per second for `seconds` (each alert's time received,
    latency and time sent by the worker appended to `samples` if given)."""
    create_topics(settings)
    publish_model(settings, model)
    w = Worker(settings, "latency", workdir)
    try:
        w.wait_log("Worker ready")
        feed = int(rate * seconds) + 1000  # more than the paced run sends
        # Fewer customers than the throughput runs, so that a minute of events spans weeks
        # of their history: alerts come from change over days, not from a first event.
        return paced_alert_latency(
            settings, events(feed, min(customers, 500), seed=2), rate, seconds, samples
        )
    finally:
        w.stop()


def run_bench(
    base: Settings,
    total: int,
    customers: int,
    workdir: Path,
    latency_seconds: float = 60,
    repeat: int = 1,
) -> dict[str, Any]:
    """Every phase on new topics (a namespace of this run's own), deleted afterwards: a 1 M
    run leaves gigabytes in the broker otherwise."""
    if repeat < 1:
        msg = f"repeat must be 1 or more, not {repeat}"
        raise ValueError(msg)
    subprocess.run([str(KAFKA_SCRIPT), "up"], check=True, capture_output=True)  # noqa: S603
    ns = f"bench{uuid.uuid4().hex[:6]}"
    try:
        return _run_phases(base, ns, total, customers, workdir, latency_seconds, repeat)
    finally:
        try:
            delete_topics(base, ns)
        except Exception:  # the run's own error, if any, matters more
            log.exception("deleting the bench topics %s* failed", ns)


@dataclass(frozen=True, slots=True)
class OneWorker:
    """The one-worker phase, and what its worker reported at the end."""

    phase: Phase
    rss_bytes: int
    state_bytes_per_customer: float
    model_version: float
    event_loop: str | None
    gc_frozen_objects: float


def one_worker(settings: Settings, workdir: Path, total: int, name: str = "one") -> OneWorker:
    w = Worker(settings, name, workdir)  # its log: `workdir`/`name`.log
    try:
        phase = wait_processed([w], total, broker=broker_pid())
        time.sleep(6)  # the gauges refresh every 5 s
        found = samples_or_empty(w.url)  # none if it did not answer: the figures are then 0
        page = sums(found)
        info = next((s.labels for s in found if s.name == "churnstream_worker_info"), {})
        return OneWorker(
            phase,
            rss_bytes=w.rss_bytes(),
            state_bytes_per_customer=page.get("churnstream_state_bytes", 0.0)
            / (page.get("churnstream_state_customers") or 1),
            model_version=page.get("churnstream_worker_model_version", 0.0),
            event_loop=info.get("event_loop"),
            gc_frozen_objects=page.get("churnstream_worker_gc_frozen_objects", 0.0),
        )
    finally:
        w.stop()


RECOUNTED = re.compile(r"counted the (\d+) customers of this worker's partitions in ([\d.]+) s")


@dataclass(frozen=True, slots=True)
class Recovery:
    seconds: float  # from starting the worker to its "Recovery complete"
    recount: tuple[int, float]  # then its recount (`streams.gauges`): customers, seconds


def recover(settings: Settings, workdir: Path) -> Recovery:
    """Start a worker on an empty data directory: it rebuilds its state from the changelog,
    then counts the rebuilt customers again."""
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    started = time.perf_counter()
    w = Worker(settings, "one-recovered", workdir)
    try:
        w.wait_log("Recovery complete")
        seconds = time.perf_counter() - started
        found = w.wait_log(RECOUNTED, after="Recovery complete")
        return Recovery(seconds, (int(found[1]), float(found[2])))
    finally:
        w.stop()


def two_workers(settings: Settings, workdir: Path, total: int) -> Phase | str:
    """The two-worker phase, or why it stalled."""
    pair = [
        Worker(
            settings.model_copy(update={"data_dir": workdir / f"two{i}", "web_port": free_port()}),
            f"two{i}",
            workdir,
        )
        for i in range(2)
    ]
    try:
        return wait_processed(pair, total, broker=broker_pid())
    except Stalled as err:  # a known faust-streaming fault: see docs/BENCHMARKS.md
        return str(err)
    finally:
        for w in pair:
            w.stop()


def round_figures(raw: float, one: Phase, two: Phase | str, one_after: Phase) -> dict[str, Any]:
    """One round's rates, ratios and cores (`two` is why it stalled, if it did). `one` and
    `one_after` are the one-worker phases before and after the two-worker one:
    `two_over_one` divides by the mean of their rates, `two_over_one_before` by the first
    alone (as rounds before the second phase existed did). The two workers' rate is taken
    once both are processing (`Phase.joined_rate`); `..._from_first` from the first processed
    message, which includes the moments before the second joins (as earlier rounds
    did). `raw` is the raw consumer's rate of the same events.

    >>> one = Phase(10.0, (10.0,), 11.0, 1.0, events=1000)
    >>> after = Phase(12.5, (12.5,), 13.0, 1.0, events=1000)
    >>> two = Phase(5.0, (4.5, 4.5), 10.0, 0.5, events=1000, joined=Join(1.0, 900))
    >>> f = round_figures(400.0, one, two, after)
    >>> f["one_worker_events_per_s"], f["one_worker_after_events_per_s"]
    (100, 80)
    >>> f["two_workers_events_per_s"], f["two_workers_from_first_events_per_s"]
    (225, 200)
    >>> f["two_over_one"], f["two_over_one_before"], f["two_over_one_from_first"]
    (2.5, 2.25, 2.222)
    >>> f["two_workers_join_seconds"], f["two_workers_broker_cores"]
    (1.0, 0.1)
    >>> round_figures(400.0, one, "no progress", after)["two_over_one"] is None
    True
    """
    one_rate, after_rate = one.rate(), one_after.rate()
    ones = statistics.mean((one_rate, after_rate))
    phase = None if isinstance(two, str) else two
    two_rate = phase.joined_rate() if phase else None
    from_first = phase.rate() if phase else None

    def ratio(rate: float | None, over: float) -> float | None:
        return round(rate / over, 3) if rate else None

    return {
        "raw_consumer_events_per_s": round(raw),
        "one_worker_events_per_s": round(one_rate),
        "two_workers_events_per_s": round(two_rate) if two_rate else None,
        "two_workers_from_first_events_per_s": round(from_first) if from_first else None,
        "two_workers_join_seconds": (
            round(phase.joined.after_seconds, 1) if phase and phase.joined else None
        ),
        "one_worker_after_events_per_s": round(after_rate),
        "one_worker_over_raw": round(one_rate / raw, 3),
        "two_over_one": ratio(two_rate, ones),
        "two_over_one_before": ratio(two_rate, one_rate),
        "two_over_one_from_first": ratio(from_first, ones),
        "one_worker_cpu_cores": one.worker_cores()[0],
        "one_worker_after_cpu_cores": one_after.worker_cores()[0],
        "one_worker_broker_cores": one.broker_cores(),
        "one_worker_machine_busy_cores": one.machine_cores(),
        # Over the whole phase: CPU is read in 10 ms ticks, too coarse for a short join.
        "two_workers_cpu_cores": phase.worker_cores() if phase else None,
        "two_workers_broker_cores": phase.broker_cores() if phase else None,
        "two_workers_machine_busy_cores": phase.machine_cores() if phase else None,
        "two_workers_stalled": two if isinstance(two, str) else None,
    }


def medians(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds (`two_workers_cpu_cores` worker by worker, the
    latency figures key by key; a stalled round's two-worker figures, which are None, are
    left out); the first stall's reason, if any.

    >>> a = {"one_worker_events_per_s": 3, "two_workers_cpu_cores": [0.9, 0.8],
    ...      "two_workers_stalled": None}
    >>> b = a | {"one_worker_events_per_s": 1, "two_workers_cpu_cores": [0.7, 0.9]}
    >>> c = a | {"one_worker_events_per_s": 2, "two_workers_cpu_cores": None,
    ...          "two_workers_stalled": "no progress"}
    >>> medians([a, b, c])
    {'one_worker_events_per_s': 2, 'two_workers_cpu_cores': [0.8, 0.85], 'two_workers_stalled': 'no progress'}
    >>> medians([{"latency": {"p99_ms": x}} for x in (130.6, 284.2, 221.3)])
    {'latency': {'p99_ms': 221.3}}
    """
    out: dict[str, Any] = {}
    for key in rounds[0]:
        values = [r[key] for r in rounds if r[key] is not None]
        if not values or isinstance(values[0], str):
            out[key] = values[0] if values else None
        elif isinstance(values[0], dict):
            out[key] = medians(values)
        elif isinstance(values[0], list):
            out[key] = [round(statistics.median(v), 2) for v in zip(*values, strict=True)]
        else:
            out[key] = round(statistics.median(values), 3)  # the mean of the middle two
    return out


def _run_phases(
    base: Settings,
    ns: str,
    total: int,
    customers: int,
    workdir: Path,
    latency_seconds: float,
    repeat: int,
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

    rounds: list[dict[str, Any]] = []
    ones: list[OneWorker] = []
    recoveries: list[Recovery] = []  # the first round's
    for i in range(repeat):
        suffix = "" if i == 0 else f"-r{i + 1}"  # each round's own consumer groups
        raw = asyncio.run(raw_consume(settings, sent))
        one = settings.model_copy(
            update={
                "app_id": f"{ns}-one{suffix}",
                "data_dir": workdir / "one",
                "web_port": free_port(),
            }
        )
        create_topics(one)
        ones.append(one_worker(one, workdir, sent))
        if i == 0:
            recoveries.append(recover(one, workdir))
        shutil.rmtree(one.data_dir, ignore_errors=True)
        two = settings.model_copy(update={"app_id": f"{ns}-two{suffix}"})
        create_topics(two)
        pair = two_workers(two, workdir, sent)
        after = one.model_copy(update={"app_id": f"{ns}-one-after{suffix}"})
        create_topics(after)
        one_after = one_worker(after, workdir, sent, name="one-after").phase
        shutil.rmtree(after.data_dir, ignore_errors=True)
        figures = round_figures(raw, ones[-1].phase, pair, one_after)
        lat = settings.model_copy(
            update={
                "topic_prefix": f"{ns}-lat{suffix}",
                "app_id": f"{ns}-lat{suffix}",
                "data_dir": workdir / "lat",
                "web_port": free_port(),
            }
        )
        half = figures["one_worker_events_per_s"] / 2
        figures["latency_at_half_load"] = measure_latency(
            lat, model, workdir, half, latency_seconds, customers
        )
        rounds.append(figures)
        log.info("bench round %d of %d: %s", i + 1, repeat, figures)
    first = ones[0]  # memory, state and the model: the first round's
    recovery = recoveries[0]
    return (
        {
            "events": sent,
            "customers": customers,
            "partitions": settings.topic_partitions,
            "batch_max": settings.batch_max,
            "batch_within_s": settings.batch_within,
            "event_loop": first.event_loop,  # what the worker reports it ran on
            "gc_frozen_objects": int(first.gc_frozen_objects),
            "load_seconds": round(load_seconds, 1),
            "repeat": repeat,
        }
        | medians(rounds)
        | {
            "worker_rss_mb": round(first.rss_bytes / 2**20, 1),
            "state_bytes_per_customer": round(first.state_bytes_per_customer),
            "recovery_seconds": round(recovery.seconds, 1),
            "recount_customers": recovery.recount[0],
            "recount_seconds": recovery.recount[1],
            "scored_with_model_version": int(first.model_version),
            "rounds": rounds,
            "machine": (
                f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}"
            ),
        }
    )
