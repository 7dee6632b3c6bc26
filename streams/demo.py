"""`churnstream demo`: the local broker, a worker and a simulated customer base, end to end.

Starts `deploy/local/kafka`, creates the topics, runs a worker and the Slack relay (console
mode) in child processes, streams simulated customers (with a sprinkling of malformed
messages) into the topics, waits until the worker has processed them and prints a summary:
throughput, bands, the riskiest customers with their drivers, where the API and metrics
are. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from itertools import groupby
from pathlib import Path
from typing import Any

import orjson
import typer
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from churnstream.models.scoring import REPEATED_ID
from churnstream.schemas.records import RiskChange
from churnstream.streams.malformed import malformed_messages
from churnstream.streams.producing import produce_events
from churnstream.streams.settings import Settings
from churnstream.streams.simulation import simulate
from churnstream.streams.topics import create_topics

REPO = Path(__file__).resolve().parents[1]
KAFKA_SCRIPT = REPO / "deploy" / "local" / "kafka"


def samples(url: str) -> Iterator[Sample]:
    """The samples of a /metrics page."""
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - our own loopback URL
        text = resp.read().decode()
    yield from text_samples(text)


def text_samples(text: str) -> Iterator[Sample]:
    """The samples of Prometheus' text format (prometheus_client's parser)."""
    for family in text_string_to_metric_families(text):
        yield from family.samples


def scrape(url: str) -> dict[str, float]:
    """Sum of each sample name across labels, from a /metrics page."""
    return sums(samples(url))


def sums(found: Iterable[Sample]) -> dict[str, float]:
    """Sum of each sample name across labels.

    >>> sums(text_samples('''
    ... churnstream_alerts_emitted_total{kind="band_change"} 2.0
    ... churnstream_alerts_emitted_total{kind="churn_risk"} 3.0
    ... churnstream_state_customers 4.0
    ... '''))
    {'churnstream_alerts_emitted_total': 5.0, 'churnstream_state_customers': 4.0}
    """
    totals: dict[str, float] = {}
    for sample in found:
        totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def total(found: Iterable[Sample], wanted: Mapping[str, Mapping[str, str]]) -> float:
    """The sum of the samples whose name is in `wanted` and whose labels include the labels
    `wanted` gives for that name (a subset: other labels are summed over).

    >>> total(text_samples('''
    ... churnstream_alerts_emitted_total{kind="band_change"} 2.0
    ... churnstream_alerts_emitted_total{kind="churn_risk"} 3.0
    ... churnstream_events_processed_total{type="login"} 5.0
    ... '''), {"churnstream_alerts_emitted_total": {"kind": "churn_risk"}})
    3.0
    """
    return sum(
        (s.value for s in found if s.name in wanted and wanted[s.name].items() <= s.labels.items()),
        0.0,
    )


def settled(found: Iterable[Sample]) -> float:
    """How many of the produced events a worker is done with, from its /metrics samples:
    applied, dropped as a repeat of an applied event id, or dead-lettered as too late. A
    message redelivered after it was applied (a duplicate with cause `redelivery`) is not
    counted again.

    >>> settled(text_samples('''
    ... churnstream_events_processed_total{type="login"} 5.0
    ... churnstream_events_duplicate_total{type="login",cause="event_id"} 2.0
    ... churnstream_events_duplicate_total{type="login",cause="redelivery"} 4.0
    ... churnstream_events_invalid_total{reason="too_late"} 1.0
    ... churnstream_events_invalid_total{reason="invalid_json"} 3.0
    ... '''))
    8.0
    """
    counted = {
        "churnstream_events_processed_total": {},
        "churnstream_events_duplicate_total": {"cause": REPEATED_ID},
        "churnstream_events_invalid_total": {"reason": "too_late"},
    }
    return total(found, counted)


def samples_or_empty(url: str) -> list[Sample]:
    """The samples of a /metrics page; none when it does not answer."""
    try:
        return list(samples(url))
    except OSError:
        return []


def scrape_or_empty(url: str) -> dict[str, float]:
    return sums(samples_or_empty(url))


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
    echo("1/6 starting the local Kafka broker (first run fetches its jars from Maven Central)")
    subprocess.run([str(KAFKA_SCRIPT), "up"], check=True)  # noqa: S603
    try:
        echo("2/6 creating topics")
        create_topics(settings)
        workdir = settings.data_dir.parent
        workdir.mkdir(parents=True, exist_ok=True)
        log, relay_log = workdir / "demo-worker.log", workdir / "demo-slack-relay.log"
        env = settings.child_env(os.environ)
        relay_env = {
            **env,
            "CHURNSTREAM_SLACK_WEBHOOK_URL": "",  # console mode
            "CHURNSTREAM_RELAY_GROUP": f"{settings.app_id}-slack-relay",
            "CHURNSTREAM_RELAY_JOURNAL": str(workdir / "slack-relay.sqlite3"),
        }
        url = f"http://{settings.web_host}:{settings.web_port}"
        cli = [sys.executable, "-m", "churnstream.streams.cli"]
        echo(f"3/6 starting a worker (log: {log})")
        trainer_log = workdir / "demo-trainer.log"
        echo(f"4/6 starting the Slack relay in console mode (alerts: {relay_log}) and the")
        echo(f"     churn-model trainer (log: {trainer_log})")
        trainer_env = {**env, "CHURNSTREAM_TRAINER_PUBLISH_SECONDS": "5"}
        with (
            child([*cli, "worker"], env, log) as proc,
            child([*cli, "slack-relay"], relay_env, relay_log),
            child([*cli, "trainer"], trainer_env, trainer_log),
        ):
            _wait(lambda: "Recovery complete" in log.read_text(errors="replace"), proc, log)
            echo(f"5/6 streaming {customers} simulated customers over {days} days of event time")
            bad = malformed_messages(max(10, customers // 20), seed=seed)
            producer = KafkaProducer(
                bootstrap_servers=settings.bootstrap_servers,
                linger_ms=20,
                max_request_size=2_000_000,
            )
            for m in bad:
                producer.send(settings.topic(m.topic_type), key=m.key, value=m.value)
            started = time.monotonic()

            def caught_up(n: int) -> Callable[[], bool]:
                def check() -> bool:
                    try:
                        return settled(samples(f"{url}/metrics")) >= n
                    except OSError:
                        return False

                return check

            # A day at a time, at most a day ahead of the worker: the topics stay within a day
            # of each other, as in a live stream. (Dumping months at once is a backfill: the
            # state still comes out right, but alerts along the way reflect topic drift.)
            sent = previous = 0
            for _, day in groupby(simulate(customers, days, seed), key=lambda e: e["ts"][:10]):
                _wait(caught_up(previous), proc, log, timeout=600)
                previous = sent
                sent += produce_events(settings, day, producer=producer)
                producer.flush()
            producer.close()
            echo(f"     produced {sent:,} events and {len(bad)} malformed messages")
            _wait(caught_up(sent), proc, log, timeout=3600)

            def relayed() -> bool:  # the relay has printed every alert published
                alerts = scrape_or_empty(f"{url}/metrics").get(
                    "churnstream_alerts_emitted_total", 0
                )
                return len(printed_alerts(relay_log)) >= alerts

            _wait(relayed, proc, log, timeout=120)
            elapsed = time.monotonic() - started
            print_summary(settings, url, sent, elapsed, relay_log)
    finally:
        if not keep_broker:
            subprocess.run([str(KAFKA_SCRIPT), "down"], check=False)  # noqa: S603


def riskiest(settings: Settings, url: str, n: int = 5) -> list[dict[str, Any]]:
    """Customers in red or yellow now (and not gone), lowest health first (all had an alert)."""
    alerted = {
        RiskChange.model_validate_json(v).customer_id
        for v in read_all(settings, settings.topic("risk-changes"))
    }
    now = []
    for customer_id in sorted(alerted):
        with urllib.request.urlopen(f"{url}/customers/{customer_id}", timeout=5) as resp:  # noqa: S310
            customer = orjson.loads(resp.read())
        if customer["band"] != "green" and customer["segment"] != "churned":
            now.append(customer)
    return sorted(now, key=lambda c: c["health_score"])[:n]


def read_all(settings: Settings, topic: str) -> list[bytes]:
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        values: list[bytes] = []
        while any(consumer.position(tp) < end[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=1000).values():
                values.extend(r.value for r in records)
        return values
    finally:
        consumer.close()


def printed_alerts(relay_log: Path) -> list[str]:
    lines = relay_log.read_text(errors="replace").splitlines()
    return [line for line in lines if line.startswith(("[info]", "[warning]", "[critical]"))]


def print_summary(settings: Settings, url: str, sent: int, elapsed: float, relay_log: Path) -> None:
    echo = typer.echo
    m = scrape(f"{url}/metrics")
    with urllib.request.urlopen(f"{url}/metrics/summary", timeout=5) as resp:  # noqa: S310
        summary = orjson.loads(resp.read())
    echo("6/6 summary")
    echo(
        f"     events processed:  {m['churnstream_events_processed_total']:,.0f} in {elapsed:.0f} s "
        f"({sent / elapsed:,.0f} events/s, produced and processed together)"
    )
    echo(
        f"     dead-lettered:     {m.get('churnstream_events_invalid_total', 0):.0f} "
        f"(topic {settings.topic('dead-letter')}, each with its reason)"
    )
    bands = summary["bands"]
    echo(
        f"     bands:             {bands.get('green', 0)} green, {bands.get('yellow', 0)} yellow, "
        f"{bands.get('red', 0)} red of {summary['customers']} customers"
    )
    echo(f"     alerts published:  {m.get('churnstream_alerts_emitted_total', 0):,.0f}")
    nps, csat = summary["nps"], summary["csat"]
    echo(
        "     NPS / CSAT:        "
        + (f"{nps:.0f}" if nps is not None else "–")
        + " / "
        + (f"{csat:.0%}" if csat is not None else "–")
    )
    echo("     riskiest customers now:")
    for c in riskiest(settings, url):
        drivers = ", ".join(f"{d['name']} {d['contribution']:+.1f}" for d in c["drivers"][:3])
        echo(
            f"       {c['customer_id']}  health {c['health_score']:5.1f}  {c['segment']:9}"
            f"  {c['plan'] or '-':10} drivers: {drivers}"
        )
    with urllib.request.urlopen(f"{url}/model", timeout=5) as resp:  # noqa: S310
        model = orjson.loads(resp.read())
    if model.get("model_version") in (None, "prior"):
        echo(
            "     churn model:       not enough matured labels yet; the health score drives alerts"
        )
    else:
        q = model["quality"]["total"]
        auc = "–" if q["roc_auc"] is None else f"{q['roc_auc']:.3f}"
        echo(
            f"     churn model:       {model['model_version']} from {model['examples']:,} matured "
            f"examples; progressive AUC {auc} over {q['examples']:,} ({url}/model)"
        )
    posted = printed_alerts(relay_log)
    echo(f"     Slack relay:       {len(posted):,} alerts printed to {relay_log}")
    echo(f"     customer API:      {url}/customers/<customer_id>   summary: {url}/metrics/summary")
    echo(f"     Prometheus:        {url}/metrics   (Grafana dashboard: deploy/grafana/)")


def _wait(check: object, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            msg = f"the worker exited:\n{tail}"
            raise RuntimeError(msg)
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    msg = f"timed out after {timeout}s; see {log}"
    raise TimeoutError(msg)
