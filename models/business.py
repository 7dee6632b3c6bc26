"""The customer-success metrics teams report on, computed from the same stream.

CSAT (share of 4-5 answers), NPS (promoters - detractors, in points), and per calendar month
of event time: logo churn and retention, gross and net revenue retention, expansion and
contraction MRR, new and reactivated customers; trial-to-paid conversion; customers per
band and segment; the average lifetime value.

A month's opening cohort (customers and MRR) is taken when the first event of that month
arrives; events that arrive after that but belong to the month before count in the new
month. Each worker aggregates the customers of its own partitions. The rates do not add up
over workers, so `report()` also gives the counts and sums behind each one (answers,
promoters, trials, lifetime values, a month's opening cohort): Prometheus sums those over
workers and divides (`deploy/prometheus/rules.yml`).

>>> b = BusinessMetrics()
>>> b.observe_survey("csat", 5); b.observe_survey("csat", 2); b.observe_survey("nps", 10)
>>> b.csat(), b.nps()
(0.5, 100.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any


def month_of(ts: float) -> str:
    """The UTC month of a POSIX time, as `YYYY-MM`.

    >>> month_of(1_735_689_599.0), month_of(1_735_689_600.0)
    ('2024-12', '2025-01')
    """
    frac, whole = math.modf(ts)  # rounded to the microsecond as `datetime.fromtimestamp` does
    seconds = int(whole) + (round(frac * 1e6) >= 1_000_000)
    return _month_of_day(seconds // 86_400)


@lru_cache(maxsize=1024)  # strftime per event was 3 % of a worker's main thread (py-spy)
def _month_of_day(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m")


@dataclass(slots=True)
class Month:
    start_customers: int = 0
    start_mrr: float = 0.0
    churned_customers: int = 0
    churned_mrr: float = 0.0
    expansion_mrr: float = 0.0
    contraction_mrr: float = 0.0
    new_customers: int = 0
    reactivated: int = 0
    cohort: set[str] = field(default_factory=set)

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "start_customers": self.start_customers,
            "start_mrr": round(self.start_mrr, 2),
            "churned_customers": self.churned_customers,
            "churned_mrr": round(self.churned_mrr, 2),
            "expansion_mrr": round(self.expansion_mrr, 2),
            "contraction_mrr": round(self.contraction_mrr, 2),
            "new_customers": self.new_customers,
            "reactivated": self.reactivated,
        }
        if self.start_customers:
            out["logo_churn_rate"] = self.churned_customers / self.start_customers
            out["retention_rate"] = 1.0 - out["logo_churn_rate"]
        if self.start_mrr > 0:
            kept = self.start_mrr - self.churned_mrr - self.contraction_mrr
            out["gross_revenue_retention"] = max(0.0, kept / self.start_mrr)
            out["net_revenue_retention"] = max(0.0, (kept + self.expansion_mrr) / self.start_mrr)
        return out


@dataclass(slots=True)
class BusinessMetrics:
    csat_answers: int = 0
    csat_satisfied: int = 0
    nps_answers: int = 0
    promoters: int = 0
    detractors: int = 0
    trials_started: int = 0
    trials_converted: int = 0
    months: dict[str, Month] = field(default_factory=dict)
    current_month: str | None = None
    # customer -> [mrr, active, in trial]
    accounts: dict[str, list[Any]] = field(default_factory=dict)
    bands: dict[str, str] = field(default_factory=dict)
    segments: dict[str, str] = field(default_factory=dict)
    lifetime_values: dict[str, float] = field(default_factory=dict)

    def observe_survey(self, kind: str, score: float) -> None:
        if kind == "csat":
            self.csat_answers += 1
            self.csat_satisfied += score >= 4
        elif kind == "nps":
            self.nps_answers += 1
            self.promoters += score >= 9
            self.detractors += score <= 6

    def csat(self) -> float | None:
        return self.csat_satisfied / self.csat_answers if self.csat_answers else None

    def nps(self) -> float | None:
        if not self.nps_answers:
            return None
        return 100.0 * (self.promoters - self.detractors) / self.nps_answers

    def advance(self, ts: float) -> Month:
        """The month of `ts`, opening it (and taking its cohort) when it is a new month."""
        m = month_of(ts)
        if self.current_month is None or m > self.current_month:
            active = {c: a for c, a in self.accounts.items() if a[1] and not a[2]}
            self.months[m] = Month(
                start_customers=len(active),
                start_mrr=sum(a[0] for a in active.values()),
                cohort=set(active),
            )
            self.current_month = m
        return self.months.setdefault(self.current_month, Month())

    def observe_subscription(self, customer_id: str, action: str, mrr: float, ts: float) -> None:
        month = self.advance(ts)
        acct = self.accounts.get(customer_id)
        before = acct[0] if acct else 0.0
        was_active = bool(acct and acct[1])
        if action == "trial_started":
            self.trials_started += 1
            self.accounts[customer_id] = [mrr, True, True]
            return
        if action == "cancelled":
            if was_active and customer_id in month.cohort:
                month.churned_customers += 1
                month.churned_mrr += before
            self.accounts[customer_id] = [0.0, False, False]
            return
        if action == "started":
            if acct and acct[2]:
                self.trials_converted += 1
            if not was_active or (acct and acct[2]):
                month.new_customers += 1
        elif action == "reactivated":
            month.reactivated += 1
        elif was_active:
            delta = mrr - before
            if delta > 0:
                month.expansion_mrr += delta
            elif delta < 0:
                month.contraction_mrr -= delta
        self.accounts[customer_id] = [mrr, True, False]

    def forget_customers(self) -> None:
        """Drop what is kept customer by customer (accounts, bands, segments, lifetime
        values), to count again the customers a worker owns after a rebalance; the surveys,
        trials and months counted so far stay."""
        self.accounts.clear()
        self.bands.clear()
        self.segments.clear()
        self.lifetime_values.clear()

    def restore_account(self, customer_id: str, subscriptions: list[list[Any]]) -> None:
        """The account as `observe_subscription` leaves it after the latest of the customer's
        subscription events (`[ts, event_id, action, plan, mrr]`, in time order); nothing
        for a customer without any.

        >>> b = BusinessMetrics()
        >>> b.restore_account("c1", [[1.0, "e1", "trial_started", "pro", 0.0],
        ...                          [2.0, "e2", "started", "pro", 99.0]])
        >>> b.restore_account("c2", [[1.0, "e3", "cancelled", "pro", 50.0]])
        >>> b.restore_account("c3", [])
        >>> b.accounts
        {'c1': [99.0, True, False], 'c2': [0.0, False, False]}
        """
        if not subscriptions:
            return
        _, _, action, _, mrr = subscriptions[-1]
        if action == "cancelled":
            self.accounts[customer_id] = [0.0, False, False]
        else:
            self.accounts[customer_id] = [mrr, True, action == "trial_started"]

    def observe_customer(
        self, customer_id: str, band: str | None, segment: str, ltv: float | None
    ) -> None:
        if band is not None:
            self.bands[customer_id] = band
        self.segments[customer_id] = segment
        if ltv is None:
            self.lifetime_values.pop(customer_id, None)
        else:
            self.lifetime_values[customer_id] = ltv

    def monthly_retention(self, default: float) -> float:
        """Mean logo retention over the months with an opening cohort of 20 or more."""
        rates = [
            m.report()["retention_rate"] for m in self.months.values() if m.start_customers >= 20
        ]
        return sum(rates) / len(rates) if rates else default

    def count_by(self, mapping: dict[str, str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in mapping.values():
            out[v] = out.get(v, 0) + 1
        return dict(sorted(out.items()))

    def report(self) -> dict[str, Any]:
        ltvs = list(self.lifetime_values.values())
        return {
            "customers": len(self.segments),
            "bands": self.count_by(self.bands),
            "segments": self.count_by(self.segments),
            "csat": self.csat(),
            "csat_answers": self.csat_answers,
            "csat_satisfied": self.csat_satisfied,
            "nps": self.nps(),
            "nps_answers": self.nps_answers,
            "nps_promoters": self.promoters,
            "nps_detractors": self.detractors,
            "trials_started": self.trials_started,
            "trials_converted": self.trials_converted,
            "trial_conversion_rate": (
                self.trials_converted / self.trials_started if self.trials_started else None
            ),
            "average_lifetime_value": sum(ltvs) / len(ltvs) if ltvs else None,
            "lifetime_value_sum": sum(ltvs),
            "lifetime_value_customers": len(ltvs),
            "months": {m: v.report() for m, v in sorted(self.months.items())},
        }
