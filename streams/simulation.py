"""A seeded, realistic stream of product events for demos, tests and benchmarks.

Customers sign up over the first part of the period on one of three plans, some through a
trial. Healthy customers log in and use features at their own pace, open the odd ticket,
answer surveys well, renew and sometimes upgrade. A share of them drift toward churn: their
activity and breadth fall, tickets grow and turn sour, scores drop, some downgrade, and weeks
later they cancel. Everything is event time; the same seed gives the same events.

>>> events = list(simulate(customers=5, days=20, seed=7))
>>> sorted({e["type"] for e in events}) <= ["login", "survey", "subscription", "ticket", "usage"]
True
>>> events == list(simulate(customers=5, days=20, seed=7))
True
>>> all(a["ts"] <= b["ts"] for a, b in zip(events, events[1:]))
True
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)

PLANS = {  # plan: (share of customers, MRR range, users range)
    "starter": (0.55, (29.0, 99.0), (1, 5)),
    "growth": (0.35, (199.0, 799.0), (5, 30)),
    "enterprise": (0.10, (1500.0, 6000.0), (30, 120)),
}
PLAN_ORDER = ["starter", "growth", "enterprise"]
FEATURES = [
    "dashboards",
    "reports",
    "exports",
    "api",
    "alerts",
    "integrations",
    "workflows",
    "segments",
    "forecasts",
    "sso",
    "audit-log",
    "mobile",
]
GOOD_SUBJECTS = [
    "Question about exports",
    "How do I add a user?",
    "Feature request: dark mode",
    "Thanks for the quick fix",
    "Help setting up SSO",
]
BAD_SUBJECTS = [
    "Dashboard broken again",
    "Data missing from reports",
    "Very slow, unusable",
    "Billing error, charged twice",
    "Still not fixed after a week",
]
GOOD_BODIES = [
    "Could you point me to the docs? Great product so far.",
    "Works well, just wondering how to configure this. Thanks!",
    "Love the new release, one small question about the API.",
]
BAD_BODIES = [
    "This is frustrating. The export failed again and support has not helped.",
    "We are considering cancelling. The app is slow and the reports are wrong.",
    "Terrible experience, broken for days, very disappointed with the service.",
]
NPS_COMMENTS_GOOD = ["Great tool, our team loves it", "Saves us hours every week"]
NPS_COMMENTS_BAD = ["Too expensive for what it does", "Buggy and slow lately", "Poor support"]


@dataclass(slots=True)
class _Customer:
    customer_id: str
    plan: str
    mrr: float
    users: int
    start_day: int
    activity: float  # mean logins per active day
    features: list[str]
    trial: bool
    converts: bool
    churn_day: int | None  # day the cancellation comes
    drift_days: int  # how long before churn_day the decline starts
    reactivate_day: int | None = None
    cancelled: bool = False
    seq: int = 0
    open_tickets: dict[str, int] = field(default_factory=dict)  # ticket id -> solve day
    ticket_priority: dict[str, str] = field(default_factory=dict)

    def drift(self, day: int) -> float:
        """0 for a healthy day, rising to about 0.9 on the day of cancellation."""
        if self.churn_day is None or self.cancelled:
            return 0.0
        onset = self.churn_day - self.drift_days
        if day < onset:
            return 0.0
        return min(0.9, 0.9 * (day - onset + 1) / max(1, self.drift_days))


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:  # normal approximation for large rates
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _new_customer(rng: random.Random, index: int, days: int, churn_share: float) -> _Customer:
    plan = rng.choices(PLAN_ORDER, weights=[PLANS[p][0] for p in PLAN_ORDER])[0]
    _, (lo, hi), (ulo, uhi) = PLANS[plan]
    start_day = rng.randrange(0, max(1, days // 2)) if index % 3 else 0
    trial = rng.random() < 0.3
    converts = not trial or rng.random() < 0.6
    churn_day = None
    if converts and rng.random() < churn_share:
        earliest = start_day + 30
        if earliest < days + 30:
            churn_day = rng.randrange(earliest, days + 30)  # some cancel after the window
    drift_days = rng.randint(21, 50)
    if not converts:  # a trial that lapses fades over its two weeks, then cancels
        churn_day, drift_days = start_day + 14, 12
    users = rng.randint(ulo, uhi)
    breadth = rng.randint(3, len(FEATURES))
    return _Customer(
        customer_id=f"cus_{index:06d}",
        plan=plan,
        mrr=round(rng.uniform(lo, hi), 2),
        users=users,
        start_day=start_day,
        activity=rng.uniform(0.4, 2.5) * math.log2(users + 1),
        features=rng.sample(FEATURES, breadth),
        trial=trial,
        converts=converts,
        churn_day=churn_day,
        drift_days=drift_days,
        reactivate_day=(churn_day + rng.randint(20, 60))
        if churn_day and rng.random() < 0.1
        else None,
    )


def _event(c: _Customer, at: datetime, etype: str, **fields: Any) -> dict[str, Any]:
    c.seq += 1
    return {
        "event_id": f"{c.customer_id}-{c.seq:06d}",
        "customer_id": c.customer_id,
        "type": etype,
        "ts": at.isoformat().replace("+00:00", "Z"),
        **fields,
    }


def _day_events(c: _Customer, day: int, base: datetime, rng: random.Random) -> list[dict[str, Any]]:
    """One customer's events on one day, unsorted."""
    out: list[dict[str, Any]] = []
    day_start = base + timedelta(days=day)

    def at() -> datetime:
        return day_start + timedelta(
            seconds=rng.randrange(86_400), microseconds=rng.randrange(10**6)
        )

    def sub(action: str, mrr: float | None = None) -> None:
        out.append(
            _event(
                c,
                at(),
                "subscription",
                action=action,
                plan=c.plan,
                mrr=mrr if mrr is not None else c.mrr,
            )
        )

    if day == c.start_day:
        sub("trial_started", 0.0) if c.trial else sub("started")
    if day < c.start_day:
        return out
    if c.cancelled:
        if c.reactivate_day is not None and day == c.reactivate_day:
            c.cancelled = False
            c.churn_day = None
            sub("reactivated")
        return out
    in_trial = c.trial and day < c.start_day + 14
    if c.trial and day == c.start_day + 14:
        if c.converts:
            sub("started")
        else:
            sub("cancelled", 0.0)
            c.cancelled = True
            return out
    drift = c.drift(day)
    # Weekends are quieter.
    weekday = (day_start.weekday() < 5) * 0.8 + 0.2
    logins = _poisson(rng, c.activity * weekday * (1 - drift))
    breadth = max(1, round(len(c.features) * (1 - 0.7 * drift)))
    for _ in range(logins):
        out.append(_event(c, at(), "login", user_id=f"{c.customer_id}-u{rng.randrange(c.users)}"))
        for _ in range(rng.randint(0, 3)):
            out.append(
                _event(
                    c,
                    at(),
                    "usage",
                    feature=rng.choice(c.features[:breadth]),
                    quantity=float(rng.randint(1, 20)),
                )
            )
    # Tickets: opened at a rate that grows with drift, solved some days later.
    if rng.random() < 0.02 + 0.12 * drift:
        tid = f"t-{c.customer_id}-{c.seq}"
        sour = rng.random() < 0.2 + 0.8 * drift
        priority = rng.choices(
            ["low", "normal", "high", "urgent"], weights=[3, 5, 2 + 6 * drift, 0.5 + 3 * drift]
        )[0]
        out.append(
            _event(
                c,
                at(),
                "ticket",
                ticket_id=tid,
                status="opened",
                priority=priority,
                subject=rng.choice(BAD_SUBJECTS if sour else GOOD_SUBJECTS),
                body=rng.choice(BAD_BODIES if sour else GOOD_BODIES),
            )
        )
        c.open_tickets[tid] = day + rng.randint(0, 2) + round(8 * drift * rng.random())
        c.ticket_priority[tid] = priority
    for tid, solve_day in list(c.open_tickets.items()):
        if day == solve_day:
            if rng.random() < 0.1 + 0.3 * drift:  # reopened instead of solved
                out.append(
                    _event(
                        c,
                        at(),
                        "ticket",
                        ticket_id=tid,
                        status="reopened",
                        priority=c.ticket_priority[tid],
                    )
                )
                c.open_tickets[tid] = day + rng.randint(1, 5)
                continue
            out.append(
                _event(
                    c,
                    at(),
                    "ticket",
                    ticket_id=tid,
                    status="solved",
                    priority=c.ticket_priority[tid],
                )
            )
            del c.open_tickets[tid]
            del c.ticket_priority[tid]
            if rng.random() < 0.5:  # CSAT after a solved ticket
                csat = min(5, max(1, round(rng.gauss(4.4 - 2.6 * drift, 0.7))))
                out.append(_event(c, at(), "survey", kind="csat", score=csat))
    # NPS about once a quarter; CES after some sessions.
    if not in_trial and rng.random() < 1 / 90:
        nps = min(10, max(0, round(rng.gauss(8.6 - 6.5 * drift, 1.4))))
        comment = rng.choice(NPS_COMMENTS_BAD if nps <= 6 else NPS_COMMENTS_GOOD)
        out.append(_event(c, at(), "survey", kind="nps", score=nps, comment=comment))
    if logins and rng.random() < 0.01:
        label = rng.choice(
            ["very easy", "easy", "neutral"]
            if drift < 0.3
            else ["difficult", "very difficult", "neutral"]
        )
        out.append(_event(c, at(), "survey", kind="ces", rating_label=label))
    # Commercial movements.
    if not in_trial and day > c.start_day and (day - c.start_day) % 30 == 0 and c.churn_day != day:
        sub("renewed")
    if drift == 0 and not in_trial and rng.random() < 0.004:
        idx = PLAN_ORDER.index(c.plan)
        if idx < 2 and rng.random() < 0.4:
            c.plan = PLAN_ORDER[idx + 1]
        c.mrr = round(c.mrr * rng.uniform(1.1, 1.6), 2)
        sub("upgraded")
    elif drift > 0.3 and rng.random() < 0.01:
        c.mrr = round(c.mrr * rng.uniform(0.5, 0.85), 2)
        sub("downgraded")
    if c.churn_day == day:
        sub("cancelled", 0.0)
        c.cancelled = True
    return out


def simulate(
    customers: int = 1000,
    days: int = 90,
    seed: int = 1,
    start: datetime = DEFAULT_START,
    churn_share: float = 0.25,
) -> Iterator[dict[str, Any]]:
    """Yield event objects (the JSON contract) in timestamp order."""
    rng = random.Random(seed)
    population = [_new_customer(rng, i, days, churn_share) for i in range(customers)]
    for day in range(days):
        todays: list[dict[str, Any]] = []
        for c in population:
            todays.extend(_day_events(c, day, start, rng))
        todays.sort(key=lambda e: (e["ts"], e["event_id"]))
        yield from todays


def churned_customers(customers: int, days: int, seed: int, churn_share: float = 0.25) -> set[str]:
    """The customers whose stream contains a cancellation (ground truth for tests)."""
    return {
        e["customer_id"]
        for e in simulate(customers, days, seed, churn_share=churn_share)
        if e["type"] == "subscription" and e["action"] == "cancelled"
    }
