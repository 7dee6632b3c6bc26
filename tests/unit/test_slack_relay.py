"""The Slack relay's delivery policy against a local server that speaks the webhook protocol."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from churnstream.schemas.records import DeadLetter, Driver, RiskChange
from churnstream.streams.metrics import RelayMetrics
from churnstream.streams.settings import Settings
from churnstream.streams.slack_message import route, severity, slack_message
from churnstream.streams.slack_relay import PostedJournal, SlackRelay, WebhookPoster
from fake_slack import INVALID, RATE_LIMITED, SERVER_ERROR, Answer, FakeSlack

WHERE = ("churnstream.risk-changes", 0, 7)


def alert(i: int = 1, band: str = "red", previous: str | None = "yellow", **kw: Any) -> RiskChange:
    fields: dict[str, Any] = {
        "alert_id": f"a{i}",
        "customer_id": f"cus_{i}",
        "ts": datetime(2025, 3, 1, 12, tzinfo=UTC),
        "kind": "band_change",
        "health_score": 35.0,
        "previous_health_score": 48.0,
        "band": band,
        "previous_band": previous,
        "segment": "at-risk/mid",
        "drivers": [Driver(name="support", contribution=-9.0, direction="down")],
        "score_change_7d": -13.0,
        "lifetime_value": 9000.0,
        "plan": "growth",
    }
    fields.update(kw)
    return RiskChange(**fields)


class Relay:
    """A SlackRelay wired to a fake Slack, with its sleeps, dead letters and echoes recorded."""

    def __init__(self, tmp: Path, slack: FakeSlack | None, **settings: Any) -> None:
        if slack is not None:
            settings.setdefault("slack_webhook_url", slack.url())
        self.settings = Settings(relay_journal=tmp / "posted.sqlite3", **settings)
        self.sleeps: list[float] = []
        self.dead: list[tuple[DeadLetter, bytes | None]] = []
        self.lines: list[str] = []
        self.metrics = RelayMetrics.create(CollectorRegistry())
        self.journal = PostedJournal(self.settings.relay_journal)
        self.relay = SlackRelay(
            self.settings,
            WebhookPoster(timeout=5),
            self.journal,
            self.metrics,
            lambda d, k: self.dead.append((d, k)),
            echo=self.lines.append,
            sleep=self.sleeps.append,
        )

    def handle(self, a: RiskChange | bytes) -> str:
        value = a if isinstance(a, bytes) else a.model_dump_json().encode()
        return self.relay.handle(value, WHERE, b"cus_1")

    def metric(self, name: str, **labels: str) -> float:
        v = self.metrics.registry.get_sample_value(f"churnstream_relay_{name}", labels)
        return v or 0.0


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as s:
        yield s


def test_an_alert_is_posted_as_block_kit_once(tmp_path: Path, slack: FakeSlack) -> None:
    r = Relay(tmp_path, slack, slack_crm_url="https://crm.example.com/a/{customer_id}")
    assert r.handle(alert()) == "posted"
    assert r.handle(alert()) == "duplicate"  # the same alert id, redelivered
    [(path, payload)] = slack.accepted
    assert path == "/services/T000/B000/XXXX"
    assert payload == slack_message(alert(), "https://crm.example.com/a/{customer_id}")
    blocks = payload["attachments"][0]["blocks"]
    assert blocks[0]["text"]["text"] == "cus_1: yellow → red (health 35, -13.0 in 7 days)"
    fields = " ".join(f["text"] for f in blocks[1]["fields"])
    for shown in ("35 (was 48)", "at-risk/mid", "growth", "$9,000", "–"):
        assert shown in fields
    assert "▼ support -9.0" in blocks[2]["elements"][0]["text"]
    assert blocks[3]["elements"][0]["url"] == "https://crm.example.com/a/cus_1"
    assert r.metric("alerts_posted_total", route="default") == 1
    assert r.metric("alerts_skipped_total", reason="duplicate") == 1


def test_the_journal_survives_a_restart(tmp_path: Path, slack: FakeSlack) -> None:
    first = Relay(tmp_path, slack)
    assert first.handle(alert()) == "posted"
    first.journal.close()
    again = Relay(tmp_path, slack)
    assert again.handle(alert()) == "duplicate"
    assert len(slack.accepted) == 1


def test_rate_limits_honour_retry_after(tmp_path: Path, slack: FakeSlack) -> None:
    slack.queue = [Answer(429, "rate_limited", retry_after=7), RATE_LIMITED]
    r = Relay(tmp_path, slack)
    assert r.handle(alert()) == "posted"
    assert r.sleeps == [7.0, 1.0]
    assert [s for _, s in slack.requests] == [429, 429, 200]
    assert r.metric("retries_total", reason="rate_limited") == 2


def test_server_errors_and_dropped_connections_retry_with_backoff(
    tmp_path: Path, slack: FakeSlack
) -> None:
    r = Relay(
        tmp_path,
        slack,
    )
    slack.queue = [SERVER_ERROR] * 4
    assert r.handle(alert(1)) == "posted"
    assert len(r.sleeps) == 4 and r.sleeps == sorted(r.sleeps) and r.sleeps[-1] > r.sleeps[0]
    slack.down = True
    outage = threading.Timer(0.3, lambda: setattr(slack, "down", False))
    outage.start()
    r.relay.sleep = lambda s: threading.Event().wait(0.05)  # let the outage end
    assert r.handle(alert(2)) == "posted"
    assert r.metric("retries_total", reason="network") >= 1
    assert [p["text"][:5] for _, p in slack.accepted] == ["cus_1", "cus_2"]


def test_a_poison_alert_goes_to_the_dead_letter_topic(tmp_path: Path, slack: FakeSlack) -> None:
    slack.rule = lambda path, payload: INVALID
    r = Relay(tmp_path, slack, slack_max_rejections=3)
    a = alert()
    assert r.handle(a) == "dead_lettered"
    assert [s for _, s in slack.requests] == [400, 400, 400]
    [(dead, key)] = r.dead
    assert key == b"cus_1" and dead.error_code == "slack_rejected" and "400" in dead.reason
    assert dead.original_bytes() == a.model_dump_json().encode()
    assert (dead.topic, dead.partition, dead.offset) == WHERE
    assert r.metric("alerts_failed_total", reason="slack_rejected") == 1
    slack.rule = None
    assert r.handle(a) == "posted"  # not journaled as posted: a fixed alert may go later


def test_a_record_that_is_not_an_alert_is_dead_lettered(tmp_path: Path, slack: FakeSlack) -> None:
    r = Relay(tmp_path, slack)
    assert r.handle(b'{"alert_id": "x"}') == "dead_lettered"
    assert r.dead[0][0].error_code == "bad_alert" and slack.requests == []


def test_minimum_severity_and_routes(tmp_path: Path, slack: FakeSlack) -> None:
    better = alert(1, band="green", previous="yellow")
    worse = alert(2, band="yellow", previous="green")
    red = alert(3, band="red", segment="dormant/enterprise")
    assert [severity(a) for a in (better, worse, red)] == ["info", "warning", "critical"]
    r = Relay(
        tmp_path,
        slack,
        slack_min_severity="warning",
        slack_routes=[{"segments": ["enterprise"], "webhook_url": slack.url("/enterprise")}],
    )
    assert [r.handle(a) for a in (better, worse, red)] == ["below_severity", "posted", "posted"]
    assert [p for p, _ in slack.accepted] == ["/services/T000/B000/XXXX", "/enterprise"]
    assert route(red, r.settings)[0] == "route0"


def test_without_a_webhook_alerts_go_to_the_console(tmp_path: Path) -> None:
    r = Relay(tmp_path, None)
    assert r.handle(alert()) == "posted"
    assert r.lines == [
        "[critical] cus_1: yellow → red (health 35, -13.0 in 7 days) at-risk/mid ▼ support -9.0"
    ]
    assert r.metric("alerts_posted_total", route="console") == 1


def test_stopping_during_an_outage_leaves_the_alert_unposted(
    tmp_path: Path, slack: FakeSlack
) -> None:
    slack.rule = lambda path, payload: SERVER_ERROR
    r = Relay(tmp_path, slack)
    r.relay.sleep = lambda s: r.relay.stopping.set()
    assert r.handle(alert()) == "stopped"
    assert not r.journal.seen("a1")
