"""`churnstream slack-relay`: risk-change alerts from Kafka to Slack, each posted once.

A plain kafka-python consumer group reads `risk-changes` one record at a time, in partition
order (so one customer's alerts keep their order), and commits a record's offset only once it
is done: posted (Slack answered 2xx), skipped (posted before, or below the minimum severity)
or dead-lettered. Slack's answers decide what happens next:

- 429: wait what `Retry-After` says, then try again;
- 5xx, timeouts, refused connections: try again with exponential backoff, for as long as it
  takes (an outage loses nothing; the relay holds its place);
- other 4xx: the alert itself is wrong (a poison alert); after `slack_max_rejections`
  answers like that it goes to the dead-letter topic.

Posted alert ids go to a small SQLite journal before the offset is committed, so a relay
restarted after a crash does not post them again; only a crash between Slack's answer and
the journal write can repeat one post. The webhook URL is a secret: it is never logged.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.error import URLError

from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import OffsetAndMetadata
from pydantic import ValidationError
from slack_sdk.webhook import WebhookClient
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from churnstream.schemas.records import DeadLetter, RiskChange
from churnstream.streams.metrics import RelayMetrics
from churnstream.streams.settings import Settings
from churnstream.streams.slack_message import console_line, route, slack_message, wanted

log = logging.getLogger(__name__)


class SlackUnavailable(Exception):
    """Slack could not take the message now (429, 5xx, network); try again later."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class SlackRejected(Exception):
    """Slack refused the message itself (4xx other than 429)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"Slack answered {status}: {body[:200]}")
        self.status = status


class WebhookPoster:
    """POSTs payloads to incoming webhooks with slack-sdk; sorts the answers."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._clients: dict[str, WebhookClient] = {}

    def post(self, url: str, payload: dict[str, Any]) -> None:
        client = self._clients.get(url)
        if client is None:
            # No slack-sdk retry handlers: the relay decides (and they log the URL).
            client = self._clients[url] = WebhookClient(
                url, timeout=int(self.timeout), retry_handlers=[]
            )
        try:
            resp = client.send_dict(payload)
        except (URLError, OSError) as err:
            msg = "network"
            raise SlackUnavailable(msg) from err
        if 200 <= resp.status_code < 300:
            return
        if resp.status_code == 429:
            retry_after = _seconds(
                resp.headers.get("Retry-After") or resp.headers.get("retry-after")
            )
            msg = "rate_limited"
            raise SlackUnavailable(msg, retry_after)
        if resp.status_code >= 500:
            msg = "server_error"
            raise SlackUnavailable(msg)
        raise SlackRejected(resp.status_code, resp.body or "")


def _seconds(value: Any) -> float | None:
    try:
        return max(0.0, float(value[0] if isinstance(value, list) else value))
    except (TypeError, ValueError, IndexError):
        return None


class PostedJournal:
    """Alert ids already posted, on local disk (SQLite), pruned to the newest `keep`."""

    def __init__(self, path: Path, keep: int = 200_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS posted (alert_id TEXT PRIMARY KEY, posted_at REAL)"
        )
        self.db.execute(
            "DELETE FROM posted WHERE rowid <= (SELECT MAX(rowid) FROM posted) - ?", (keep,)
        )
        self.db.commit()

    def seen(self, alert_id: str) -> bool:
        row = self.db.execute("SELECT 1 FROM posted WHERE alert_id = ?", (alert_id,)).fetchone()
        return row is not None

    def add(self, alert_id: str, at: float) -> None:
        self.db.execute("INSERT OR IGNORE INTO posted VALUES (?, ?)", (alert_id, at))
        self.db.commit()

    def close(self) -> None:
        self.db.close()


Outcome = Literal["posted", "duplicate", "below_severity", "dead_lettered", "stopped"]


@dataclass
class SlackRelay:
    settings: Settings
    poster: WebhookPoster
    journal: PostedJournal
    metrics: RelayMetrics
    dead_letter: Callable[[DeadLetter, bytes | None], None]
    echo: Callable[[str], None] = print
    sleep: Callable[[float], None] | None = None  # default: waits that a stop interrupts
    max_backoff: float = 30.0
    stopping: threading.Event = field(default_factory=threading.Event)

    def _sleep(self, seconds: float) -> None:
        if self.sleep is not None:
            self.sleep(seconds)
        else:
            self.stopping.wait(seconds)

    def _wait(self, state: RetryCallState) -> float:
        err = state.outcome.exception() if state.outcome else None
        if isinstance(err, SlackUnavailable) and err.retry_after is not None:
            return err.retry_after
        return float(wait_exponential(multiplier=0.5, max=self.max_backoff)(state))

    def _count_retry(self, state: RetryCallState) -> None:
        err = state.outcome.exception() if state.outcome else None
        reason = err.reason if isinstance(err, SlackUnavailable) else "error"
        self.metrics.retries.labels(reason=reason).inc()
        log.warning("Slack unavailable (%s); trying again", reason)

    def deliver(self, url: str, payload: dict[str, Any]) -> None:
        """Post until Slack accepts; raises SlackRejected, or SlackUnavailable when stopping."""
        retrying = Retrying(
            retry=retry_if_exception_type(SlackUnavailable),
            stop=lambda _state: self.stopping.is_set(),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._count_retry,
            reraise=True,
        )
        for attempt in retrying:
            with attempt, self.metrics.post_seconds.time():
                self.poster.post(url, payload)

    def handle(
        self, value: bytes | None, where: tuple[str, int, int], key: bytes | None
    ) -> Outcome:
        """Everything for one record; returns once it may be committed (or on stop)."""
        self.metrics.consumed.inc()
        try:
            alert = RiskChange.model_validate_json(value or b"")
        except ValidationError as err:
            return self._dead_letter(value, key, where, "bad_alert", str(err).splitlines()[0])
        if self.journal.seen(alert.alert_id):
            self.metrics.skipped.labels(reason="duplicate").inc()
            return "duplicate"
        if not wanted(alert, self.settings):
            self.metrics.skipped.labels(reason="below_severity").inc()
            return "below_severity"
        name, url = route(alert, self.settings)
        if url is None:
            self.echo(console_line(alert))
        else:
            payload = slack_message(alert, self.settings.slack_crm_url)
            for rejections in range(1, self.settings.slack_max_rejections + 1):
                try:
                    self.deliver(url, payload)
                    break
                except SlackUnavailable:
                    return "stopped"
                except SlackRejected as err:
                    if rejections == self.settings.slack_max_rejections:
                        return self._dead_letter(value, key, where, "slack_rejected", str(err))
                    self.metrics.retries.labels(reason="rejected").inc()
                    self._sleep(1.0)
        self.journal.add(alert.alert_id, time.time())
        self.metrics.posted.labels(route=name).inc()
        return "posted"

    def _dead_letter(
        self,
        value: bytes | None,
        key: bytes | None,
        where: tuple[str, int, int],
        code: str,
        reason: str,
    ) -> Outcome:
        topic, partition, offset = where
        self.dead_letter(
            DeadLetter.from_message(
                value,
                key=key,
                topic=topic,
                partition=partition,
                offset=offset,
                code=code,
                reason=reason,
            ),
            key,
        )
        self.metrics.failed.labels(reason=code).inc()
        log.error("alert at %s/%d@%d dead-lettered: %s", topic, partition, offset, reason)
        return "dead_lettered"


def run_relay(settings: Settings, relay: SlackRelay, poll_ms: int = 1000) -> None:
    """Consume until `relay.stopping` is set; commit each record's offset once handled."""
    security = settings.kafka_python_security()
    consumer = KafkaConsumer(
        settings.topic("risk-changes"),
        bootstrap_servers=settings.bootstrap_servers,
        group_id=settings.relay_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=20,
        # An outage may hold one record for long; stay in the group meanwhile.
        max_poll_interval_ms=3_600_000,
        **security,  # type: ignore[arg-type]
    )
    try:
        while not relay.stopping.is_set():
            for tp, records in consumer.poll(timeout_ms=poll_ms).items():
                for r in records:
                    outcome = relay.handle(r.value, (r.topic, r.partition, r.offset), r.key)
                    if outcome == "stopped":
                        return
                    consumer.commit({tp: OffsetAndMetadata(r.offset + 1, "", -1)})
    finally:
        consumer.close(autocommit=False)


def dead_letter_sender(
    settings: Settings,
) -> tuple[KafkaProducer, Callable[[DeadLetter, bytes | None], None]]:
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        **settings.kafka_python_security(),  # type: ignore[arg-type]
    )
    topic = settings.topic("dead-letter")

    def send(record: DeadLetter, key: bytes | None) -> None:
        producer.send(topic, key=key, value=record.model_dump_json().encode()).get(timeout=30)

    return producer, send
