"""The customer-success metrics teams report on, computed from the same stream.

CSAT (share of 4-5 answers), NPS (promoters - detractors, in points), and per calendar month
of event time: logo churn and retention, gross and net revenue retention, expansion and
contraction MRR, new and reactivated customers; trial-to-paid conversion; customers per
band and segment; the average lifetime value.

A month's figures are derived customer by customer from their subscription histories, in
event time: its opening cohort is who was active and paying at its start, however late an
event of the month before arrives. Each worker aggregates the customers of its own
partitions; a customer whose partition moves takes their part of the current and the last
month's figures to the new owner. The rates do not add up
over workers, so `report()` also gives the counts and sums behind each one (answers,
promoters, trials, lifetime values, a month's opening cohort): Prometheus sums those over
workers and divides (`deploy/prometheus/rules.yml`).

>>> b = BusinessMetrics()
>>> b.observe_survey("csat", 5); b.observe_survey("csat", 2); b.observe_survey("nps", 10)
>>> b.csat(), b.nps()
(0.5, 100.0)
"""

from __future__ import annotations

import calendar
import math
import sys
from collections.abc import Iterable
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
    micros = round(frac * 1e6)
    seconds = int(whole) + (micros >= 1_000_000) - (micros < 0)  # floor, before 1970 too
    return _month_of_day(seconds // 86_400)


@lru_cache(maxsize=1024)  # strftime per event was 3 % of a worker's main thread (py-spy)
def _month_of_day(day: int) -> str:
    d = datetime.fromtimestamp(day * 86_400, tz=UTC)
    return f"{d.year:04d}-{d.month:02d}"  # strftime's %Y has no leading zeros before 1000


def month_index(month: str) -> int:
    """A `YYYY-MM` month as a count of months (year * 12 + month - 1): consecutive months
    are consecutive numbers, so the later of two is the larger.

    >>> month_index("2024-12"), month_index("2025-01"), month_index("0001-01")
    (24299, 24300, 12)
    """
    return int(month[:4]) * 12 + int(month[5:]) - 1


def month_at(index: int) -> str:
    """The `YYYY-MM` month of a `month_index`.

    >>> month_at(24299), month_at(month_index("0001-01"))
    ('2024-12', '0001-01')
    """
    year, number = divmod(index, 12)
    return f"{year:04d}-{number + 1:02d}"


def month_bounds(month: str) -> tuple[float, float]:
    """The POSIX times a `YYYY-MM` month starts at and the next one starts at.

    >>> month_bounds("2024-12"), month_bounds("9999-12")[1]
    ((1733011200.0, 1735689600.0), 253402300800.0)
    """
    year, number = divmod(month_index(month), 12)
    start = datetime(year, number + 1, 1, tzinfo=UTC).timestamp()
    return start, start + calendar.monthrange(year, number + 1)[1] * 86_400.0


def month_before(month: str) -> str | None:
    """The month before a `YYYY-MM` month (none before year 1).

    >>> month_before("2025-01"), month_before("2025-07"), month_before("0001-01")
    ('2024-12', '2025-06', None)
    """
    index = month_index(month) - 1
    return month_at(index) if index >= 12 else None


def cents(amount: float) -> int:
    """MRR in whole cents: sums of them are exact, in any order (a recount adds customers in
    store order, the stream in event order)."""
    return round(amount * 100)


@dataclass(slots=True)
class Month:
    """A month's figures, or one customer's part of them (`month_share`); MRR in cents."""

    start_customers: int = 0
    start_cents: int = 0
    churned_customers: int = 0
    churned_cents: int = 0
    expansion_cents: int = 0
    contraction_cents: int = 0
    new_customers: int = 0
    reactivated: int = 0

    def add(self, other: Month, sign: int = 1) -> None:
        for name in MONTH_FIELDS:
            setattr(self, name, getattr(self, name) + sign * getattr(other, name))

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "start_customers": self.start_customers,
            "start_mrr": self.start_cents / 100,
            "churned_customers": self.churned_customers,
            "churned_mrr": self.churned_cents / 100,
            "expansion_mrr": self.expansion_cents / 100,
            "contraction_mrr": self.contraction_cents / 100,
            "new_customers": self.new_customers,
            "reactivated": self.reactivated,
        }
        if self.start_customers:
            out["logo_churn_rate"] = self.churned_customers / self.start_customers
            out["retention_rate"] = 1.0 - out["logo_churn_rate"]
        if self.start_cents > 0:
            kept = self.start_cents - self.churned_cents - self.contraction_cents
            out["gross_revenue_retention"] = max(0.0, kept / self.start_cents)
            out["net_revenue_retention"] = max(
                0.0, (kept + self.expansion_cents) / self.start_cents
            )
        return out


MONTH_FIELDS = tuple(Month.__slots__)

# A customer's subscription history as the figures need it: (ts, action, MRR in cents), in
# the order the record keeps its rows (time, then event id).
Row = tuple[float, str, int]


def history_of(subscriptions: list[list[Any]]) -> tuple[Row, ...]:
    """The rows of a record's subscription history (`[ts, event_id, action, plan, mrr]`)."""
    return tuple((float(r[0]), sys.intern(str(r[2])), cents(r[4])) for r in subscriptions)


def after(account: tuple[int, bool, bool], action: str, mrr: int) -> tuple[int, bool, bool]:
    """The account (MRR in cents, active, in trial) after a subscription event."""
    if action == "cancelled":
        return (0, False, False)
    return (mrr, True, action == "trial_started")


def month_share(rows: tuple[Row, ...], start: float, end: float) -> Month:
    """One customer's part of the figures of the month [start, end), from their history.

    In the opening cohort when active and paying (not in a trial) at its start; churned
    (once) when the cohort customer cancels in it, losing the MRR they had then; expansion
    and contraction from a paying customer's changes of MRR in it.

    >>> day, start, end = 86_400.0, 31 * 86_400.0, 59 * 86_400.0
    >>> rows = ((day, "trial_started", 0), (2 * day, "started", 9900),
    ...         (40 * day, "upgraded", 15000), (50 * day, "cancelled", 0),
    ...         (51 * day, "reactivated", 5000), (52 * day, "cancelled", 0))
    >>> month_share(rows, 0.0, start)
    Month(start_customers=0, start_cents=0, churned_customers=0, churned_cents=0, \
expansion_cents=0, contraction_cents=0, new_customers=1, reactivated=0)
    >>> month_share(rows, start, end)
    Month(start_customers=1, start_cents=9900, churned_customers=1, churned_cents=15000, \
expansion_cents=5100, contraction_cents=0, new_customers=0, reactivated=1)
    """
    share = Month()
    account = (0, False, False)
    i = 0
    while i < len(rows) and rows[i][0] < start:
        account = after(account, rows[i][1], rows[i][2])
        i += 1
    cohort = account[1] and not account[2]
    if cohort:
        share.start_customers, share.start_cents = 1, account[0]
    for ts, action, mrr in rows[i:]:
        if ts >= end:
            break
        before, active, trial = account
        if action == "cancelled":
            if cohort and active and not share.churned_customers:
                share.churned_customers, share.churned_cents = 1, before
        elif action == "started":
            share.new_customers += not active or trial
        elif action == "reactivated":
            share.reactivated += 1
        elif action != "trial_started" and active and not trial:
            share.expansion_cents += max(0, mrr - before)
            share.contraction_cents += max(0, before - mrr)
        account = after(account, action, mrr)
    return share


@dataclass(slots=True)
class BusinessMetrics:
    """The aggregates of the customers a worker owns.

    Surveys and trials are counted event by event. The figures of the current month and the
    one before are derived from the subscription histories of the customers held now
    (`histories`): a customer counted again elsewhere after a rebalance, or again here
    after a restart, carries their whole month along. Earlier months keep the figures they
    had when they left those two.
    """

    csat_answers: int = 0
    csat_satisfied: int = 0
    nps_answers: int = 0
    promoters: int = 0
    detractors: int = 0
    trials_started: int = 0
    trials_converted: int = 0
    months: dict[str, Month] = field(default_factory=dict)
    current_month: str | None = None
    histories: dict[str, tuple[Row, ...]] = field(default_factory=dict)
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

    def live_months(self) -> tuple[str, ...]:
        """The months derived from the histories: the current one and the one before."""
        if self.current_month is None:
            return ()
        before = month_before(self.current_month)
        return (self.current_month,) if before is None else (before, self.current_month)

    def advance(self, ts: float) -> None:
        """Move to the month of `ts` when it is later than the current one: a month that
        becomes live is counted from the histories, one that stops being live keeps its
        figures."""
        m = month_of(ts)
        if self.current_month is not None and m <= self.current_month:
            return
        was = self.live_months()
        self.current_month = m
        for month in self.live_months():
            if month not in was:
                self.months[month] = Month()
                self._count(self.histories.values(), (month,), 1)

    def _count(
        self, histories: Iterable[tuple[Row, ...]], months: Iterable[str], sign: int
    ) -> None:
        for month in months:
            total = self.months[month]  # opened by `advance`
            start, end = month_bounds(month)
            for rows in histories:
                total.add(month_share(rows, start, end), sign)

    def set_history(self, customer_id: str, subscriptions: list[list[Any]]) -> None:
        """Count the customer in the live months with this subscription history (the
        record's rows) in place of the one counted before; nothing for a customer without
        any.

        >>> b = BusinessMetrics()
        >>> b.advance(40 * 86_400.0)  # 1970-02
        >>> b.set_history("c1", [[1.0, "e1", "trial_started", "pro", 0.0],
        ...                      [2.0, "e2", "started", "pro", 99.0]])
        >>> b.set_history("c2", [[3.0, "e3", "started", "pro", 50.0],
        ...                      [35 * 86_400.0, "e4", "cancelled", "pro", 0.0]])
        >>> b.set_history("c3", [])
        >>> {m: (v.start_customers, v.start_cents, v.churned_customers) for m, v in b.months.items()}
        {'1970-01': (0, 0, 0), '1970-02': (2, 14900, 1)}
        >>> b.months["1970-01"].new_customers
        2
        """
        old = self.histories.pop(customer_id, None)
        if old is not None:
            self._count((old,), self.live_months(), -1)
        if subscriptions:
            new = self.histories[customer_id] = history_of(subscriptions)
            self._count((new,), self.live_months(), 1)

    def observe_subscription(
        self, customer_id: str, action: str, at: tuple[float, str], subscriptions: list[list[Any]]
    ) -> None:
        """A subscription event applied at `at` (time, event id); `subscriptions` is the
        customer's history with it. A trial converts when a start follows a trial's start."""
        if action == "trial_started":
            self.trials_started += 1
        elif action == "started":
            rows = [r for r in subscriptions if (r[0], r[1]) < at]
            self.trials_converted += bool(rows) and rows[-1][2] == "trial_started"
        self.set_history(customer_id, subscriptions)

    def forget_customers(self) -> None:
        """Drop what is kept customer by customer (histories and the live months counted
        from them, bands, segments, lifetime values), to count again the customers a worker
        owns after a rebalance; the surveys, trials and earlier months counted so far stay."""
        self.histories.clear()
        for month in self.live_months():
            self.months[month] = Month()
        self.bands.clear()
        self.segments.clear()
        self.lifetime_values.clear()

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
            "live_months": [m for m in self.live_months() if m in self.months],
        }
