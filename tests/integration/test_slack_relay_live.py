"""The Slack relay on the real broker: outages, rate limits, poison alerts and restarts."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import KAFKA
from kafka import KafkaProducer

from churnstream.models.replay import replay
from churnstream.schemas.events import parse_event_dict
from churnstream.schemas.records import DeadLetter, RiskChange
from churnstream.streams.demo import scrape
from churnstream.streams.settings import Settings
from churnstream.streams.simulation import simulate
from fake_slack import INVALID, OK, RATE_LIMITED, SERVER_ERROR, Answer, FakeSlack
from harness import REPO, free_port, http_get, read_topic, settings_env, wait_for


def alerts_of_a_simulated_stream() -> list[RiskChange]:
    events = simulate(customers=40, days=60, seed=4)
    return replay([parse_event_dict(e) for e in events]).alerts


def send_alerts(settings: Settings, alerts: list[RiskChange]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    for a in alerts:
        producer.send(
            settings.topic("risk-changes"),
            key=a.customer_id.encode(),
            value=a.model_dump_json().encode(),
        )
    producer.flush()
    producer.close()


def relay_settings_for(
    settings: Settings, slack: FakeSlack, tmp_path: Path, **extra: object
) -> Settings:
    return Settings(
        **settings.model_dump(exclude_none=True)
        | {
            "slack_webhook_url": slack.url(),
            "relay_group": f"{settings.app_id}-relay",
            "relay_journal": tmp_path / "posted.sqlite3",
            "relay_metrics_port": free_port(),
        }
        | extra
    )


def assert_posted_once_in_order(slack: FakeSlack, expected: list[RiskChange]) -> None:
    posted = [p["attachments"][0]["blocks"][0]["block_id"] for _, p in slack.accepted]
    assert sorted(posted) == sorted(a.alert_id for a in expected), "each alert exactly once"
    position = {alert_id: i for i, alert_id in enumerate(posted)}
    by_customer: dict[str, list[str]] = {}
    for a in expected:
        by_customer.setdefault(a.customer_id, []).append(a.alert_id)
    for ids in by_customer.values():
        assert [position[i] for i in ids] == sorted(position[i] for i in ids), "order kept"


class RelayProcess:
    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings, self.log = settings, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RelayProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "churnstream.streams.cli", "slack-relay"],
            env=settings_env(self.settings)
            | {"CHURNSTREAM_SLACK_WEBHOOK_URL": self.settings.slack_webhook_url.get_secret_value()},  # type: ignore[union-attr]
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        return self

    def signal(self, kill: bool) -> None:
        assert self.proc is not None
        self.proc.kill() if kill else self.proc.terminate()
        self.proc.wait(30)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as s:
        yield s


def test_every_alert_reaches_slack_once_in_order_through_outages_and_restarts(  # type: ignore[no-untyped-def]
    settings, slack: FakeSlack, tmp_path: Path
) -> None:
    alerts = alerts_of_a_simulated_stream()
    poison = alerts[5].customer_id  # Slack refuses this customer's messages (400)
    relay_settings = relay_settings_for(settings, slack, tmp_path, slack_max_rejections=2)
    calls = {"n": 0}

    def rule(path: str, payload: dict[str, Any]) -> Answer:
        calls["n"] += 1
        if payload["text"].startswith(poison + ":"):
            return INVALID
        return RATE_LIMITED if calls["n"] % 7 == 0 else OK

    slack.rule = rule
    slack.queue = [SERVER_ERROR] * 3  # Slack is having a bad moment as the relay starts
    send_alerts(settings, alerts)
    expected = [a for a in alerts if a.customer_id != poison]

    relay = RelayProcess(relay_settings, tmp_path / "relay.log").start()
    wait_for(lambda: len(slack.accepted) >= len(expected) // 4, 120, "a quarter posted")
    slack.down = True  # an outage: connections dropped
    time.sleep(1.5)
    relay.signal(kill=True)  # killed during the outage: nothing half-done
    relay = RelayProcess(relay_settings, tmp_path / "relay.log").start()
    time.sleep(2)
    slack.down = False
    wait_for(lambda: len(slack.accepted) >= len(expected) // 2, 120, "half posted")
    relay.signal(kill=False)  # a clean restart
    relay = RelayProcess(relay_settings, tmp_path / "relay.log").start()
    wait_for(lambda: len(slack.accepted) >= len(expected), 180, "every alert posted")
    time.sleep(2)  # anything posted twice would arrive now

    assert_posted_once_in_order(slack, expected)
    statuses = {s for _, s in slack.requests}
    assert {0, 400, 429, 500} <= statuses

    dead = [
        DeadLetter.model_validate_json(r.value)
        for r in read_topic(settings, settings.topic("dead-letter"), expect=1)
    ]
    poisoned = [a for a in alerts if a.customer_id == poison]
    assert sorted(d.original_bytes() for d in dead) == sorted(
        a.model_dump_json().encode() for a in poisoned
    )
    assert {d.error_code for d in dead} == {"slack_rejected"}

    metrics = http_get(f"http://127.0.0.1:{relay_settings.relay_metrics_port}/metrics")[1].decode()
    assert 'churnstream_relay_alerts_posted_total{route="default"}' in metrics
    process = scrape(f"http://127.0.0.1:{relay_settings.relay_metrics_port}/metrics")
    assert process["process_cpu_seconds_total"] > 0
    assert process["process_resident_memory_bytes"] > 0
    relay.signal(kill=False)
    log = (tmp_path / "relay.log").read_text()
    assert slack.url() not in log and "/services/" not in log, "the webhook URL is a secret"


def test_a_minute_of_slack_errors_and_a_broker_outage_lose_nothing(  # type: ignore[no-untyped-def]
    settings, slack: FakeSlack, tmp_path: Path
) -> None:
    """Slack answers 5xx and 429 for a minute; meanwhile the broker is stopped for 30 s.
    The relay resumes by itself, and every alert (sent before and after the broker outage)
    is posted exactly once, in order per customer."""
    alerts = alerts_of_a_simulated_stream()
    half = len(alerts) // 2
    relay_settings = relay_settings_for(settings, slack, tmp_path)

    outage = {"until": 0.0, "n": 0}

    def rule(path: str, payload: dict[str, Any]) -> Answer:
        if time.monotonic() < outage["until"]:
            outage["n"] += 1
            return SERVER_ERROR if outage["n"] % 2 else RATE_LIMITED
        return OK

    slack.rule = rule
    send_alerts(settings, alerts[:half])
    outage["until"] = time.monotonic() + 60  # Slack is failing as the relay starts
    relay = RelayProcess(relay_settings, tmp_path / "relay.log").start()
    wait_for(lambda: outage["n"] >= 3, 60, "the relay to meet Slack's errors")
    subprocess.run([KAFKA, "down"], check=True, capture_output=True, timeout=120)
    time.sleep(30)
    subprocess.run([KAFKA, "up"], check=True, capture_output=True, timeout=300)
    send_alerts(settings, alerts[half:])
    assert relay.proc is not None and relay.proc.poll() is None, "the relay stayed up"
    wait_for(lambda: len(slack.accepted) >= len(alerts), 240, "every alert posted")
    time.sleep(3)  # anything posted twice would arrive now
    relay.signal(kill=False)

    assert_posted_once_in_order(slack, alerts)
    failures = [s for _, s in slack.requests if s in (429, 500)]
    assert outage["n"] == len(failures) >= 4, "Slack's errors were met and retried"
