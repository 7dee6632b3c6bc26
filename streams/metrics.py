"""All worker metrics in one object, built against a registry that tests can replace.

No customer ids in label values: labels are event types, reasons, kinds and bands only.

>>> from prometheus_client import CollectorRegistry
>>> m = WorkerMetrics.create(CollectorRegistry())
>>> m.events_invalid.labels(reason="bad_json").inc()
>>> m.registry.get_sample_value("churnstream_events_invalid_total", {"reason": "bad_json"})
1.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from churnstream.models.business import month_index

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
DELAY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 600.0)


def process_registry() -> CollectorRegistry:
    """The registry of one churnstream process's /metrics, with the series every Prometheus
    client exports by default: `process_cpu_seconds_total`, `process_resident_memory_bytes`
    and the other `process_*` (Linux), `python_gc_*` and `python_info`.

    >>> r = process_registry()
    >>> r.get_sample_value("process_cpu_seconds_total") > 0
    True
    >>> r.get_sample_value("process_resident_memory_bytes") > 0
    True
    >>> r.get_sample_value("python_gc_collections_total", {"generation": "0"}) >= 0
    True

    A /metrics read restricted to some samples (`?name[]=`) finds these too, though their
    collectors do not say beforehand what they export:

    >>> [s.name for m in r.restricted_registry(["process_cpu_seconds_total"]).collect()
    ...  for s in m.samples]
    ['process_cpu_seconds_total']
    """
    registry = CollectorRegistry(support_collectors_without_names=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


# Customer-success aggregates (this worker's customers; monthly ones for the latest month).
# The rates are this worker's alone: an average of them over workers weighs a worker with 10
# answers like one with 10,000. The fleet's rates divide sums of the counts below
# (`deploy/prometheus/rules.yml` records them as `churnstream:<rate>:fleet`).
BUSINESS_GAUGES = {
    "csat": "This worker's CSAT: share of answers 4 or 5, 0-1",
    "nps": "This worker's net promoter score, -100 to 100",
    "trial_conversion_rate": "This worker's trials that became paying, 0-1",
    "average_lifetime_value": "Average lifetime value of this worker's customers",
    "logo_churn_rate": "This worker's customers lost this month over those at its start",
    "retention_rate": "1 - logo churn rate, this month, this worker's customers",
    "gross_revenue_retention": "This worker's GRR this month: (start MRR - churn - contraction) "
    "/ start MRR",
    "net_revenue_retention": "This worker's NRR this month: GRR plus expansion",
}
# Counts since the worker started (`BusinessMetrics.report()` key -> help): they only grow
# while it lives, so they are counters (`_total`), summed over workers, and `increase()`
# gives a window's answers across restarts.
BUSINESS_COUNTERS = {
    "csat_answers": "CSAT answers applied since the worker started",
    "csat_satisfied": "CSAT answers of 4 or 5 applied since the worker started",
    "nps_answers": "NPS answers applied since the worker started",
    "nps_promoters": "NPS answers of 9 or 10 applied since the worker started",
    "nps_detractors": "NPS answers of 0 to 6 applied since the worker started",
    "trials_started": "Trials started since the worker started",
    "trials_converted": "Trials that became paying since the worker started",
}
# Sums over this worker's customers, for the fleet's averages.
BUSINESS_SUMS = {
    "lifetime_value_sum": "Sum of the lifetime values of this worker's customers",
    "lifetime_value_customers": "This worker's customers with a lifetime value",
}
# A month's sums over this worker's customers (`Month.report()` key -> help), labelled with
# the month, for each month it derives from its customers' histories: its current one and the
# one before. The fleet's rates sum them by month (`deploy/prometheus/rules.yml`), so that a
# worker that has not yet seen the next month's first event adds nothing to that month,
# rather than last month's figures.
MONTH_SUMS = {
    "start_customers": "Paying customers at the start of the month (its cohort)",
    "start_mrr": "MRR of the month's cohort at its start",
    "churned_customers": "Customers of the month's cohort lost in the month",
    "churned_mrr": "MRR lost to cancellations in the month",
    "expansion_mrr": "MRR gained from upgrades in the month",
    "contraction_mrr": "MRR lost to downgrades in the month",
}


class ReportedCounters(Collector):
    """Counters whose values are counted elsewhere and handed over whole (`set`), read at each
    scrape: `BusinessMetrics` keeps the counts, this only shows them.

    >>> r = CollectorRegistry()
    >>> c = ReportedCounters({"answers": "Answers"}, r, prefix="x")
    >>> c.set({"answers": 3, "other": 9})
    >>> r.get_sample_value("x_answers_total")
    3.0
    """

    def __init__(self, help_texts: dict[str, str], registry: CollectorRegistry, prefix: str):
        self._help = {f"{prefix}_{k}": (k, h) for k, h in help_texts.items()}
        self._values: dict[str, float] = dict.fromkeys(help_texts, 0.0)
        registry.register(self)

    def set(self, values: dict[str, Any]) -> None:
        # One assignment: a scrape on the metrics thread sees the old counts or the new.
        self._values = {k: float(values[k]) for k in self._values}

    def collect(self) -> Iterable[Metric]:
        values = self._values
        for name, (key, help_text) in self._help.items():
            yield CounterMetricFamily(name, help_text, value=values[key])

    def describe(self) -> Iterable[Metric]:
        return self.collect()


@dataclass(frozen=True, slots=True)
class WorkerMetrics:
    registry: CollectorRegistry
    events_consumed: Counter
    events_processed: Counter
    events_duplicate: Counter
    events_recovered: Counter
    events_invalid: Counter
    events_misplaced: Counter
    processing_seconds: Histogram
    batch_delay_seconds: Histogram
    dead_letters: Counter
    changelog_records: Counter
    changelog_failures: Counter
    alerts: Counter
    republished: Counter
    recounts: Counter
    unreadable_records: Gauge
    outbox_in_flight: Gauge
    consumer_lag: Gauge
    state_customers: Gauge
    state_bytes: Gauge
    customers_by_band: Gauge
    customers_by_segment: Gauge
    business: dict[str, Gauge]
    business_counts: ReportedCounters
    business_sums: dict[str, Gauge]
    month_sums: dict[str, Gauge]
    month_index: Gauge
    model_version: Gauge
    gc_frozen_objects: Gauge
    runtime: Info

    def observe_business(self, report: dict[str, Any]) -> None:
        """Set the customer-success gauges from `BusinessMetrics.report()`."""
        for band in ("green", "yellow", "red"):
            self.customers_by_band.labels(band=band).set(report["bands"].get(band, 0))
        self.customers_by_segment.clear()  # a segment that has no customers left
        for segment, n in report["segments"].items():
            self.customers_by_segment.labels(segment=segment).set(n)
        months = report["months"]
        month = months[max(months)] if months else {}
        values = {
            "csat": report["csat"],
            "nps": report["nps"],
            "trial_conversion_rate": report["trial_conversion_rate"],
            "average_lifetime_value": report["average_lifetime_value"],
            "logo_churn_rate": month.get("logo_churn_rate"),
            "retention_rate": month.get("retention_rate"),
            "gross_revenue_retention": month.get("gross_revenue_retention"),
            "net_revenue_retention": month.get("net_revenue_retention"),
        }
        for key, value in values.items():
            # NaN, not 0 or the last value, while a rate has nothing to divide by (no answers
            # yet, a month whose cohort is empty).
            self.business[key].set(math.nan if value is None else value)
        self.business_counts.set(report)
        for key in BUSINESS_SUMS:
            self.business_sums[key].set(report[key])
        for gauge in (self.month_index, *self.month_sums.values()):
            gauge.clear()  # a month no longer derived from the histories
        for m in report["live_months"]:
            self.month_index.labels(month=m).set(month_index(m))
            for key, gauge in self.month_sums.items():
                gauge.labels(month=m).set(months[m][key])

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
                "Events recognised as applied already and skipped, by type and cause "
                "(redelivery: the same Kafka message again; event_id: another message "
                "repeating an applied event id)",
                ["type", "cause"],
                registry=registry,
            ),
            events_recovered=Counter(
                name("events_recovered"),
                "Events Faust skipped or left unfetched that the worker read itself, by type",
                ["type"],
                registry=registry,
            ),
            events_invalid=Counter(
                name("events_invalid"),
                "Invalid events sent to the dead-letter topic, by reason",
                ["reason"],
                registry=registry,
            ),
            events_misplaced=Counter(
                name("events_misplaced"),
                "Events on another partition than Kafka's default partitioner (murmur2 of the "
                "key, over CHURNSTREAM_TOPIC_PARTITIONS) gives their customer id, by type",
                ["type"],
                registry=registry,
            ),
            processing_seconds=Histogram(
                name("event_processing_seconds"),
                "Time to process one event in the worker",
                ["type"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            batch_delay_seconds=Histogram(
                name("batch_delay_seconds"),
                "Age of a batch's oldest message (its Kafka timestamp) when the worker starts"
                " the batch",
                ["type"],
                buckets=DELAY_BUCKETS,
                registry=registry,
            ),
            dead_letters=Counter(
                name("dead_letters_published"),
                "Records published to the dead-letter topic",
                registry=registry,
            ),
            changelog_records=Counter(
                name("changelog_records_sent"),
                "Customer-state records sent to the table's changelog topic",
                registry=registry,
            ),
            changelog_failures=Counter(
                name("changelog_send_failures"),
                "Batches of customer state Kafka refused (the worker stops on the first)",
                registry=registry,
            ),
            alerts=Counter(
                name("alerts_emitted"),
                "Risk-change alerts published, by kind",
                ["kind"],
                registry=registry,
            ),
            republished=Counter(
                name("outbox_republished"),
                "Messages published again from a record another worker incarnation stored "
                "(it may have died before publishing them)",
                registry=registry,
            ),
            recounts=Counter(
                name("customer_recounts"),
                "Times the worker counted its customers again from its store, after a "
                "rebalance (the per-customer gauges: bands, segments, state size)",
                registry=registry,
            ),
            unreadable_records=Gauge(
                name("state_records_unreadable"),
                "Stored customer records the last recount could not decode and left out "
                "(the customer's next events go to the dead-letter topic as processing errors)",
                registry=registry,
            ),
            outbox_in_flight=Gauge(
                name("outbox_in_flight"),
                "Outbox messages (alerts, cancellation labels) sent and not yet confirmed by "
                "Kafka; stays above 0 while Kafka does not answer",
                registry=registry,
            ),
            consumer_lag=Gauge(
                name("consumer_lag_messages"),
                "Messages behind the end of the assigned event partitions, by type",
                ["type"],
                registry=registry,
            ),
            state_customers=Gauge(
                name("state_customers"),
                "Customer records this worker wrote since it started",
                registry=registry,
            ),
            state_bytes=Gauge(
                name("state_bytes"),
                "Bytes of those customer records (encoded, as stored)",
                registry=registry,
            ),
            customers_by_band=Gauge(
                name("customers"), "Customers by health band", ["band"], registry=registry
            ),
            customers_by_segment=Gauge(
                name("segment_customers"),
                "Customers by behaviour/size segment",
                ["segment"],
                registry=registry,
            ),
            business={
                key: Gauge(name(key), help_text, registry=registry)
                for key, help_text in BUSINESS_GAUGES.items()
            },
            business_counts=ReportedCounters(BUSINESS_COUNTERS, registry, prefix),
            business_sums={
                key: Gauge(name(key), help_text, registry=registry)
                for key, help_text in BUSINESS_SUMS.items()
            },
            month_sums={
                key: Gauge(name(f"month_{key}"), help_text, ["month"], registry=registry)
                for key, help_text in MONTH_SUMS.items()
            },
            month_index=Gauge(
                name("month_index"),
                "Each month this worker derives from its customers' histories (its current one "
                "and the one before), as months since January of year 0: the fleet's latest "
                "month is the highest",
                ["month"],
                registry=registry,
            ),
            model_version=Gauge(
                name("worker_model_version"),
                "Version of the churn model this worker scores with (0: none yet)",
                registry=registry,
            ),
            gc_frozen_objects=Gauge(
                name("worker_gc_frozen_objects"),
                "Objects frozen out of the garbage collector at start-up (the imports and the "
                "app): full collections skip them",
                registry=registry,
            ),
            runtime=Info(
                name("worker"), "The worker's runtime: its asyncio event loop", registry=registry
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
