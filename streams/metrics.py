"""All worker metrics in one object, built against a registry that tests can replace.

No customer ids in label values: labels are event types, reasons, kinds and bands only.

>>> from prometheus_client import CollectorRegistry
>>> m = WorkerMetrics.create(CollectorRegistry())
>>> m.events_invalid.labels(reason="bad_json").inc()
>>> m.registry.get_sample_value("churnstream_events_invalid_total", {"reason": "bad_json"})
1.0
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True, slots=True)
class WorkerMetrics:
    registry: CollectorRegistry
    events_consumed: Counter
    events_processed: Counter
    events_duplicate: Counter
    events_invalid: Counter
    processing_seconds: Histogram
    dead_letters: Counter
    alerts: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry, prefix: str = "churnstream") -> WorkerMetrics:
        def name(n: str) -> str:
            return f"{prefix}_{n}"

        return cls(
            registry=registry,
            events_consumed=Counter(
                name("events_consumed"),
                "Messages read from the event topics, by topic type",
                ["type"],
                registry=registry,
            ),
            events_processed=Counter(
                name("events_processed"),
                "Valid events applied to customer state, by type",
                ["type"],
                registry=registry,
            ),
            events_duplicate=Counter(
                name("events_duplicate"),
                "Redelivered events recognised and skipped, by type",
                ["type"],
                registry=registry,
            ),
            events_invalid=Counter(
                name("events_invalid"),
                "Invalid events sent to the dead-letter topic, by reason",
                ["reason"],
                registry=registry,
            ),
            processing_seconds=Histogram(
                name("event_processing_seconds"),
                "Time to process one event in the worker",
                ["type"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            dead_letters=Counter(
                name("dead_letters_published"),
                "Records published to the dead-letter topic",
                registry=registry,
            ),
            alerts=Counter(
                name("alerts_emitted"),
                "Risk-change alerts published, by kind",
                ["kind"],
                registry=registry,
            ),
        )


@dataclass(frozen=True, slots=True)
class RelayMetrics:
    """The Slack relay's own metrics (served on `relay_metrics_port`)."""

    registry: CollectorRegistry
    consumed: Counter
    posted: Counter
    retries: Counter
    failed: Counter
    skipped: Counter
    post_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry, prefix: str = "churnstream_relay") -> RelayMetrics:
        def name(n: str) -> str:
            return f"{prefix}_{n}"

        return cls(
            registry=registry,
            consumed=Counter(name("alerts_consumed"), "Alerts read", registry=registry),
            posted=Counter(
                name("alerts_posted"),
                "Alerts Slack accepted (or printed), by route",
                ["route"],
                registry=registry,
            ),
            retries=Counter(
                name("retries"),
                "Attempts that will be repeated: rate_limited, server_error, network, rejected",
                ["reason"],
                registry=registry,
            ),
            failed=Counter(
                name("alerts_failed"),
                "Alerts given up on and dead-lettered, by reason",
                ["reason"],
                registry=registry,
            ),
            skipped=Counter(
                name("alerts_skipped"),
                "Alerts not posted: duplicate (posted before) or below_severity",
                ["reason"],
                registry=registry,
            ),
            post_seconds=Histogram(
                name("post_seconds"),
                "Time of one webhook request",
                buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
                registry=registry,
            ),
        )
