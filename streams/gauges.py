"""Gauges refreshed on a timer: consumer lag, state size, bands, segments, business metrics."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from churnstream.streams.app import Wiring

REFRESH_SECONDS = 5.0


def consumer_lag(consumer: Any, topics: dict[str, str]) -> dict[str, int]:
    """Messages between each assigned event partition's read position and its end, by type."""
    by_topic = {name: kind for kind, name in topics.items()}
    lag: dict[str, int] = defaultdict(int)
    for kind in topics:
        lag[kind] = 0
    for tp in consumer.assignment():
        kind = by_topic.get(tp.topic)
        if kind is None:
            continue
        end = consumer.highwater(tp) or 0
        read = consumer._read_offset.get(tp)
        lag[kind] += max(0, end - (read + 1 if read is not None else 0))
    return dict(lag)


def refresh(wiring: Wiring) -> None:
    m = wiring.metrics
    for kind, n in consumer_lag(wiring.app.consumer, wiring.settings.event_topics()).items():
        m.consumer_lag.labels(type=kind).set(n)
    m.state_customers.set(len(wiring.state_sizes))
    m.state_bytes.set(sum(wiring.state_sizes.values()))
    m.observe_business(wiring.business.report())


def register(wiring: Wiring) -> None:
    @wiring.app.timer(interval=REFRESH_SECONDS)
    async def refresh_gauges() -> None:
        refresh(wiring)
