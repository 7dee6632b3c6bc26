"""Event-to-alert latency on the real broker: events produced at a steady rate, alerts read
as a downstream service reads them.

The latency of an alert is the time from the producer sending the event behind it to a
consumer of `risk-changes` receiving the alert (both on this machine's clock). An alert
names its customer and the event time of the event that caused it; that pair finds the
event's send time.

>>> percentiles([0.010, 0.020, 0.030, 0.040])["p50_ms"]
25.0
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from itertools import islice
from typing import Any

import orjson
from kafka import KafkaConsumer

from churnstream.streams.producing import make_producer
from churnstream.streams.settings import Settings

TICK = 0.01  # seconds between paced sends
WARM_UP = 5.0  # seconds at the start of a run that `after_first_5s` leaves out


def _key(customer_id: str, ts: str) -> tuple[str, datetime]:
    return customer_id, datetime.fromisoformat(ts)


def percentiles(seconds: list[float]) -> dict[str, float]:
    if len(seconds) < 2:
        return {"p50_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan")}
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49] * 1000, 1),
        "p95_ms": round(cuts[94] * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
    }


def _follow_alerts(
    settings: Settings, received: list[tuple[float, bytes, float]], stopping: threading.Event
) -> None:
    """Append each alert's (time received, record, the record's own timestamp) to `received`:
    the worker's producer stamps a record when the worker sends it."""
    consumer = KafkaConsumer(
        settings.topic("risk-changes"),
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
        **settings.kafka_python_security(),  # type: ignore[arg-type]
    )
    try:
        while not stopping.is_set():
            for records in consumer.poll(timeout_ms=100).values():
                now = time.time()
                received += [(now, r.value, r.timestamp / 1000) for r in records]
    finally:
        consumer.close()


def paced_alert_latency(
    settings: Settings,
    events: Iterable[dict[str, Any]],
    rate: float,
    seconds: float,
    samples: list[tuple[float, float, float]] | None = None,
) -> dict[str, Any]:
    """Send `events` at `rate` per second for `seconds` (a worker must be consuming) and
    measure each resulting alert's latency; waits up to 30 s for the last alerts. Each
    alert's (time received, latency in seconds, time the worker sent it) is appended to
    `samples` if given."""
    received: list[tuple[float, bytes, float]] = []
    stopping = threading.Event()
    follower = threading.Thread(target=_follow_alerts, args=(settings, received, stopping))
    follower.start()
    producer = make_producer(settings, linger_ms=0)
    topics = settings.event_topics()
    # Before the clock starts: kafka-python's producer fetches a topic's metadata on its
    # first send to it, and blocks the send about 100 ms (on the AMD EPYC VM); the run's
    # first events carried that wait of this producer's start in their latency.
    for topic in topics.values():
        producer.partitions_for(topic)
    # And every event it can send: the bench's `events` simulates its whole stream for the
    # first, which left the pacing behind from its start, so that it sent 1,052 events in
    # its first 50 ms (a 20 s run at 2,200/s on the AMD EPYC VM; docs/BENCHMARKS.md, "Short
    # phases"): a burst the worker's first alerts queued behind.
    it = iter(list(islice(events, math.ceil(rate * seconds))))
    sent_at: dict[tuple[str, datetime], float] = {}
    started, first_send = time.monotonic(), time.time()
    sent = 0
    try:
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate) - sent
            for event in [e for _, e in zip(range(due), it, strict=False)]:
                sent_at.setdefault(_key(event["customer_id"], event["ts"]), time.time())
                producer.send(
                    topics[event["type"]],
                    key=event["customer_id"].encode(),
                    value=orjson.dumps(event),
                )
                sent += 1
            producer.flush()
            time.sleep(TICK)
        time.sleep(30)  # the last events' alerts
    finally:
        producer.close()
        stopping.set()
        follower.join()
    matched = []  # (received, latency, stamped) of each alert whose event this run sent
    for at, value, stamped in received:
        alert = orjson.loads(value)
        was_sent = sent_at.get(_key(alert["customer_id"], alert["ts"]))
        if was_sent is not None:
            matched.append((at, at - was_sent, stamped))
    if samples is not None:
        samples += matched
    latencies = [lat for _, lat, _ in matched]
    return {
        "rate_events_per_s": round(sent / seconds),
        "events": sent,
        "alerts": len(latencies),
        **percentiles(latencies),
        "max_ms": round(max(latencies) * 1000, 1) if latencies else float("nan"),
        # Where the time went: from the event's send to the worker's sending of the alert
        # (the alert record's timestamp), and from there to this consumer reading it.
        "to_worker_send": percentiles([stamped - (at - lat) for at, lat, stamped in matched]),
        "worker_send_to_read": percentiles([at - stamped for at, _, stamped in matched]),
        # Without the run's first seconds: a fresh worker on new topics, every customer's
        # first record, and the simulated customers' first alerts all at once.
        f"after_first_{WARM_UP:g}s": percentiles(after_warm_up(matched, first_send)),
    }


def after_warm_up(matched: list[tuple[float, float, float]], first_send: float) -> list[float]:
    """The latencies of the alerts whose event was sent `WARM_UP` seconds or more after the
    run's first send (`matched`: each alert's time received, latency, record timestamp).

    >>> after_warm_up([(100.2, 0.2, 100.1), (107.0, 0.5, 106.9)], first_send=100.0)
    [0.5]
    """
    return [lat for at, lat, _ in matched if at - lat - first_send >= WARM_UP]
