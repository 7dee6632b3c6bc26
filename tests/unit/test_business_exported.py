"""The counts and sums a worker exports behind its customer-success rates: summed over
workers, they give the whole stream's rates, which the workers' own rates averaged do not."""

from __future__ import annotations

import math
import zlib

from prometheus_client import CollectorRegistry

from churnstream.models.business import Month, month_index
from churnstream.models.replay import replay
from churnstream.schemas.events import parse_event_dict
from churnstream.streams.metrics import BUSINESS_COUNTERS, MONTH_SUMS, WorkerMetrics
from churnstream.streams.simulation import simulate


def exported(report: dict) -> CollectorRegistry:  # type: ignore[type-arg]
    metrics = WorkerMetrics.create(CollectorRegistry())
    metrics.observe_business(report)
    return metrics.registry


def test_summed_counts_give_the_whole_streams_rates() -> None:
    events = [parse_event_dict(e) for e in simulate(customers=120, days=90, seed=4)]
    whole = replay(events).business.report()
    # Two workers, each with the customers of its own partitions.
    shares = [
        replay([e for e in events if zlib.crc32(e.customer_id.encode()) % 2 == part])
        for part in (0, 1)
    ]
    reports = [share.business.report() for share in shares]
    registries = [exported(report) for report in reports]

    def summed(name: str) -> float:
        return sum(r.get_sample_value(f"churnstream_{name}") or 0.0 for r in registries)

    for key in BUSINESS_COUNTERS:
        assert summed(f"{key}_total") == whole[key], key
    assert whole["nps_answers"] > 0 and whole["trials_started"] > 0
    promoters, detractors = summed("nps_promoters_total"), summed("nps_detractors_total")
    nps = 100 * (promoters - detractors) / summed("nps_answers_total")
    assert abs(nps - whole["nps"]) < 1e-9
    assert summed("csat_satisfied_total") / summed("csat_answers_total") == whole["csat"]
    averaged = sum(r["nps"] for r in reports) / 2
    assert abs(averaged - whole["nps"]) > 0.1  # what the dashboard showed before

    # Each worker's sums are its own report's figures, for each month it derives from its
    # customers' histories (its current month and the one before), labelled with the month.
    for report, registry in zip(reports, registries, strict=True):
        assert len(report["live_months"]) == 2
        indices = [
            registry.get_sample_value("churnstream_month_index", {"month": m})
            for m in report["live_months"]
        ]
        assert indices == [month_index(m) for m in report["live_months"]]
        assert indices[1] == indices[0] + 1  # last month, then this one
        for m in report["live_months"]:
            for key in MONTH_SUMS:
                value = registry.get_sample_value(f"churnstream_month_{key}", {"month": m})
                assert value == report["months"][m][key], (m, key)
        earlier = sorted(set(report["months"]) - set(report["live_months"]))
        assert earlier and all(
            registry.get_sample_value("churnstream_month_index", {"month": m}) is None
            for m in earlier
        )
        ltvs = registry.get_sample_value("churnstream_lifetime_value_customers")
        assert ltvs == report["lifetime_value_customers"] > 0
        assert (
            registry.get_sample_value("churnstream_lifetime_value_sum")
            == (report["lifetime_value_sum"])
        )

    # Summed by month over the two workers, the whole stream's months.
    for m in whole["live_months"]:
        for key in MONTH_SUMS:
            total = sum(
                r.get_sample_value(f"churnstream_month_{key}", {"month": m}) or 0.0
                for r in registries
            )
            assert abs(total - whole["months"][m][key]) < 1e-6, (m, key)


def test_a_worker_without_answers_exports_zero_counts() -> None:
    registry = exported(replay([]).business.report())
    assert registry.get_sample_value("churnstream_nps_answers_total") == 0.0
    # A worker without a month exports no month's sums (the fleet's sums by month leave it
    # out), and no unlabelled ones: the month's MRR movement is labelled with its month.
    assert registry.get_sample_value("churnstream_month_index", {"month": "2025-01"}) is None
    for name in ("churned_mrr", "expansion_mrr"):
        assert registry.get_sample_value(f"churnstream_{name}") is None, name
    # A rate with nothing to divide by is NaN, not 0 (nor the value it had before).
    assert math.isnan(registry.get_sample_value("churnstream_nps"))
    assert math.isnan(registry.get_sample_value("churnstream_logo_churn_rate"))


def test_a_month_without_a_cohort_does_not_show_the_last_months_churn() -> None:
    metrics = WorkerMetrics.create(CollectorRegistry())
    report = replay([]).business.report()
    january = Month(start_customers=10, churned_customers=1).report()
    metrics.observe_business(report | {"months": {"2025-01": january}, "live_months": ["2025-01"]})
    assert metrics.registry.get_sample_value("churnstream_logo_churn_rate") == 0.1
    # February opens with no paying customers (say, all in trial): no churn rate yet.
    both = {"2025-01": january, "2025-02": Month().report()}
    metrics.observe_business(report | {"months": both, "live_months": ["2025-01", "2025-02"]})
    assert math.isnan(metrics.registry.get_sample_value("churnstream_logo_churn_rate"))
    february = {"month": "2025-02"}
    assert metrics.registry.get_sample_value("churnstream_month_start_customers", february) == 0
