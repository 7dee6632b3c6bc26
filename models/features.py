"""A customer's feature state: updated per event, in event time, independent of arrival order.

Every field merges commutatively, so the state after a set of events is the same however
the five topics interleaved: earliest/latest times are min/max; active days and weeks are bit
masks anchored at the latest event of their own type; ticket and survey "latest" values are
last-writer-wins on `(ts, event_id)`; decayed activity is a `DecayedSum`; tickets and
subscription rows are pruned against the latest event of their own type.

Every structure depends only on events of one type, and Kafka keeps the order of one
customer's events within a topic, so however far the five topics drift apart while a worker
catches up on a backlog, the state comes out the same. Windows are fixed (64 days, 8 weeks),
so an event is only accepted within the lateness bound, which is shorter, behind the latest
event of its type (`latest[type]`).

`derive(state, now)` turns the state into the feature dict the health score and the churn
model read. `now` is event time, passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from churnstream.models.decay import DecayedSum
from churnstream.models.sentiment import ticket_sentiment
from churnstream.schemas.events import (
    Event,
    LoginEvent,
    SubscriptionEvent,
    SurveyEvent,
    TicketEvent,
    UsageEvent,
)

DAY = 86_400.0
WEEK_DAYS = 7
LOGIN_WINDOW_DAYS = 64
USAGE_WEEKS = 8
SURVEY_HALF_LIFE = 90 * DAY
TICKET_KEEP = 30 * DAY  # solved/closed tickets stay this long for resolution and reopen stats
MAX_TICKETS = 40
SUBSCRIPTION_KEEP = 120 * DAY
HALF_LIVES = {"7d": 7 * DAY, "30d": 30 * DAY}
MOMENTUM_MIN_DAYS = 21  # before that there is no baseline to compare with


def steady_ratio(tenure_days: float) -> float:
    """The 7-day over 30-day decayed sum of a signal steady for `tenure_days` days.

    Momentum divides by it, so 1 means "as usual" for a customer of any age.
    """

    def filled(h: float) -> float:
        return (1 - 2 ** (-tenure_days / h)) / (1 - 2 ** (-1 / h))

    return filled(7.0) / filled(30.0)


PRIORITY = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
CLOSED = frozenset({"solved", "closed"})


def _mask(bits: int) -> int:
    return (1 << bits) - 1


@dataclass(slots=True)
class Ticket:
    opened: float | None = None  # ts of the first "opened"
    priority: int = 1
    status: str = "opened"
    status_at: tuple[float, str] = (float("-inf"), "")  # (ts, event_id) of the status
    reopens: int = 0
    sentiment: float | None = None
    sentiment_at: tuple[float, str] = (float("-inf"), "")

    def to_list(self) -> list[Any]:
        return [
            self.opened,
            self.priority,
            self.status,
            list(self.status_at),
            self.reopens,
            self.sentiment,
            list(self.sentiment_at),
        ]

    @classmethod
    def from_list(cls, v: list[Any]) -> Ticket:
        return cls(v[0], v[1], v[2], _at(v[3]), v[4], v[5], _at(v[6]))


def _at(v: list[Any]) -> tuple[float, str]:
    """A `(ts, event_id)` pair read back from JSON, where "never" (-inf) was written as null."""
    return (float("-inf") if v[0] is None else v[0], v[1])


@dataclass(slots=True)
class Survey:
    latest_at: tuple[float, str]
    latest: float
    weighted: DecayedSum  # sum of score x weight
    weights: DecayedSum  # sum of weight

    def average(self, now: float) -> float:
        """Decayed mean score (90-day half-life); scores were added as score + 1."""
        w = self.weights.value(now, SURVEY_HALF_LIFE)
        return self.weighted.value(now, SURVEY_HALF_LIFE) / w - 1.0 if w > 0 else self.latest


@dataclass(slots=True)
class FeatureState:
    first_ts: float | None = None
    last_ts: float | None = None
    latest: dict[str, float] = field(default_factory=dict)  # by event type
    login_days: int = 0  # bit i: a login on day(latest login) - i
    usage: dict[str, DecayedSum] = field(default_factory=dict)  # by half-life name
    logins: dict[str, DecayedSum] = field(default_factory=dict)  # login days
    login_counts: dict[str, DecayedSum] = field(default_factory=dict)  # every login
    # Index/bit i: the week of the latest usage event minus i.
    usage_weeks: list[float] = field(default_factory=lambda: [0.0] * USAGE_WEEKS)
    feature_weeks: dict[str, int] = field(default_factory=dict)
    tickets: dict[str, Ticket] = field(default_factory=dict)
    surveys: dict[str, Survey] = field(default_factory=dict)
    # Subscription events, sorted by (ts, event_id): [ts, event_id, action, plan, mrr].
    subscriptions: list[list[Any]] = field(default_factory=list)
    customer_since: float | None = None

    # -- updating --------------------------------------------------------------------------

    @property
    def last_login(self) -> float | None:
        return self.latest.get("login")

    @property
    def last_usage(self) -> float | None:
        return self.latest.get("usage")

    def _advance(self, kind: str, ts: float) -> tuple[int, int]:
        """Record `ts` as seen; move `kind`'s window forward. Returns (days, weeks) back."""
        day = int(ts // DAY)
        previous = self.latest.get(kind)
        anchor = day if previous is None else max(day, int(previous // DAY))
        if previous is not None and day > int(previous // DAY):
            old = int(previous // DAY)
            if kind == "login":
                self.login_days = (self.login_days << (day - old)) & _mask(LOGIN_WINDOW_DAYS)
            elif kind == "usage" and (shift := day // WEEK_DAYS - old // WEEK_DAYS):
                keep = max(0, USAGE_WEEKS - shift)
                self.usage_weeks = [0.0] * min(shift, USAGE_WEEKS) + self.usage_weeks[:keep]
                self.feature_weeks = {
                    f: m
                    for f, m in (
                        (f, (m << shift) & _mask(USAGE_WEEKS))
                        for f, m in self.feature_weeks.items()
                    )
                    if m
                }
        self.latest[kind] = ts if previous is None else max(previous, ts)
        self.first_ts = ts if self.first_ts is None else min(self.first_ts, ts)
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        return anchor - day, anchor // WEEK_DAYS - day // WEEK_DAYS

    def apply(self, event: Event) -> None:
        """Fold one event in. Commutative: any order of the same events gives the same state."""
        ts = event.ts.timestamp()
        days_back, weeks_back = self._advance(event.type, ts)
        day = int(ts // DAY)
        if isinstance(event, LoginEvent):
            for name, h in HALF_LIVES.items():
                self.login_counts[name] = self.login_counts.get(name, DecayedSum.empty()).add(
                    1.0, ts, h
                )
            if days_back < LOGIN_WINDOW_DAYS and not self.login_days >> days_back & 1:
                self.login_days |= 1 << days_back
                # A login day counts once, at the day's start, so its order does not matter.
                for name, h in HALF_LIVES.items():
                    self.logins[name] = self.logins.get(name, DecayedSum.empty()).add(
                        1.0, day * DAY, h
                    )
        elif isinstance(event, UsageEvent):
            for name, h in HALF_LIVES.items():
                self.usage[name] = self.usage.get(name, DecayedSum.empty()).add(
                    event.quantity, ts, h
                )
            if weeks_back < USAGE_WEEKS:
                self.usage_weeks[weeks_back] += event.quantity
                self.feature_weeks[event.feature] = (
                    self.feature_weeks.get(event.feature, 0) | 1 << weeks_back
                )
        elif isinstance(event, TicketEvent):
            self._apply_ticket(event, ts)
        elif isinstance(event, SurveyEvent):
            self._apply_survey(event, ts)
        elif isinstance(event, SubscriptionEvent):
            self._apply_subscription(event, ts)
        self._prune(event.type)

    def _apply_ticket(self, e: TicketEvent, ts: float) -> None:
        t = self.tickets.setdefault(e.ticket_id, Ticket())
        at = (ts, e.event_id)
        if e.status == "opened":
            t.opened = ts if t.opened is None else min(t.opened, ts)
        if e.status == "reopened":
            t.reopens += 1
        if at > t.status_at:
            t.status, t.status_at, t.priority = e.status, at, PRIORITY[e.priority]
        text = " ".join(x for x in (e.subject, e.body) if x)
        if text and at > t.sentiment_at:
            t.sentiment, t.sentiment_at = ticket_sentiment(text), at

    def _apply_survey(self, e: SurveyEvent, ts: float) -> None:
        assert e.score is not None  # noqa: S101 - guaranteed by the schema
        at = (ts, e.event_id)
        s = self.surveys.get(e.kind)
        if s is None:
            s = self.surveys[e.kind] = Survey(at, e.score, DecayedSum.empty(), DecayedSum.empty())
        elif at > s.latest_at:
            s.latest_at, s.latest = at, e.score
        # A score of 0 (an NPS detractor) still counts: weight it with score + 1, remove 1 later.
        s.weighted = s.weighted.add(e.score + 1.0, ts, SURVEY_HALF_LIFE)
        s.weights = s.weights.add(1.0, ts, SURVEY_HALF_LIFE)

    def _apply_subscription(self, e: SubscriptionEvent, ts: float) -> None:
        row = [ts, e.event_id, e.action, e.plan, e.mrr]
        self.subscriptions.append(row)
        self.subscriptions.sort(key=lambda r: (r[0], r[1]))
        if e.action in ("started", "trial_started"):
            self.customer_since = (
                ts if self.customer_since is None else min(self.customer_since, ts)
            )

    def _prune(self, kind: str) -> None:
        if kind == "ticket":
            self._prune_tickets(self.latest["ticket"] - TICKET_KEEP)
        elif kind == "subscription":
            # Keep the subscription rows of the last 120 days and the one before them.
            cut = self.latest["subscription"] - SUBSCRIPTION_KEEP
            older = [i for i, r in enumerate(self.subscriptions) if r[0] < cut]
            if len(older) > 1:
                del self.subscriptions[: older[-1]]

    def _prune_tickets(self, horizon: float) -> None:
        stale = [
            k for k, t in self.tickets.items() if t.status in CLOSED and t.status_at[0] < horizon
        ]
        for k in stale:
            del self.tickets[k]
        if len(self.tickets) > MAX_TICKETS:
            by_age = sorted(
                self.tickets,
                key=lambda k: (self.tickets[k].status not in CLOSED, self.tickets[k].status_at),
            )
            for k in by_age[: len(self.tickets) - MAX_TICKETS]:
                del self.tickets[k]

    # -- serialisation ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "latest": self.latest,
            "login_days": self.login_days,
            "usage": {k: v.log_total for k, v in self.usage.items()},
            "logins": {k: v.log_total for k, v in self.logins.items()},
            "login_counts": {k: v.log_total for k, v in self.login_counts.items()},
            "usage_weeks": self.usage_weeks,
            "feature_weeks": self.feature_weeks,
            "tickets": {k: t.to_list() for k, t in self.tickets.items()},
            "surveys": {
                k: [list(s.latest_at), s.latest, s.weighted.log_total, s.weights.log_total]
                for k, s in self.surveys.items()
            },
            "subscriptions": self.subscriptions,
            "customer_since": self.customer_since,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureState:
        return cls(
            first_ts=d["first_ts"],
            last_ts=d["last_ts"],
            latest=dict(d["latest"]),
            login_days=d["login_days"],
            usage={k: DecayedSum(v) for k, v in d["usage"].items()},
            logins={k: DecayedSum(v) for k, v in d["logins"].items()},
            login_counts={k: DecayedSum(v) for k, v in d["login_counts"].items()},
            usage_weeks=list(d["usage_weeks"]),
            feature_weeks=dict(d["feature_weeks"]),
            tickets={k: Ticket.from_list(v) for k, v in d["tickets"].items()},
            surveys={
                k: Survey((v[0][0], v[0][1]), v[1], DecayedSum(v[2]), DecayedSum(v[3]))
                for k, v in d["surveys"].items()
            },
            subscriptions=[list(r) for r in d["subscriptions"]],
            customer_since=d["customer_since"],
        )

    # -- reading ---------------------------------------------------------------------------

    def subscription_at(self, ts: float) -> list[Any] | None:
        """The last subscription row at or before `ts`."""
        latest = None
        for row in self.subscriptions:
            if row[0] > ts:
                break
            latest = row
        return latest


def _bits(mask: int, first: int, last: int) -> int:
    """How many of bits first..last (inclusive) are set."""
    return ((mask >> first) & _mask(last - first + 1)).bit_count()


def derive(s: FeatureState, now: float) -> dict[str, float]:
    """The feature dict at event time `now` (>= the state's events). Absent data: no key."""
    f: dict[str, float] = {}
    now_day = int(now // DAY)
    login_anchor = int(s.latest.get("login", now) // DAY)
    usage_anchor = int(s.latest.get("usage", now) // DAY)
    day_offset = now_day - login_anchor  # whole days since the login mask's anchor
    if s.last_login is not None:
        f["days_since_login"] = min(365.0, (now - s.last_login) / DAY)
    if s.last_usage is not None:
        f["days_since_usage"] = min(365.0, (now - s.last_usage) / DAY)
    for name, h in HALF_LIVES.items():
        f[f"login_days_{name}"] = s.logins[name].value(now, h) if name in s.logins else 0.0
        f[f"usage_{name}"] = s.usage[name].value(now, h) if name in s.usage else 0.0
        f[f"logins_{name}"] = s.login_counts[name].value(now, h) if name in s.login_counts else 0.0
    tenure = (now - s.first_ts) / DAY if s.first_ts is not None else 0.0
    if tenure >= MOMENTUM_MIN_DAYS:
        expected = steady_ratio(tenure)
        for signal in ("logins", "usage"):
            long = f[f"{signal}_30d"]
            ratio = f[f"{signal}_7d"] / long / expected if long > 0 else 0.0
            f[f"{signal}_momentum"] = min(2.0, ratio)
    f["active_days_30d"] = (
        float(_bits(s.login_days, 0, max(0, 29 - day_offset))) if day_offset < 30 else 0.0
    )
    week_offset = now_day // WEEK_DAYS - usage_anchor // WEEK_DAYS
    recent = sum(s.usage_weeks[max(0, 0 - week_offset) : max(0, 4 - week_offset)])
    prior = sum(s.usage_weeks[max(0, 4 - week_offset) : max(0, 8 - week_offset)])
    f["usage_trend"] = max(-1.0, min(3.0, (recent - prior) / (prior + 1.0)))
    lo, hi = max(0, -week_offset), 3 - week_offset
    f["breadth_30d"] = float(
        sum(1 for m in s.feature_weeks.values() if hi >= lo and _bits(m, lo, hi))
    )
    prior_breadth = sum(
        1
        for m in s.feature_weeks.values()
        if _bits(m, max(0, 4 - week_offset), max(0, 7 - week_offset))
    )
    f["breadth_trend"] = f["breadth_30d"] - prior_breadth
    # Resolved tickets count for 30 days (the state prunes them on its next ticket event).
    tickets = [
        t
        for t in s.tickets.values()
        if t.status not in CLOSED or t.status_at[0] >= now - TICKET_KEEP
    ]
    open_t = [t for t in tickets if t.status not in CLOSED]
    f["open_tickets"] = float(len(open_t))
    f["urgent_open_tickets"] = float(sum(1 for t in open_t if t.priority >= 2))
    f["reopens_30d"] = float(sum(t.reopens for t in tickets))
    f["tickets_30d"] = float(
        sum(1 for t in tickets if t.opened is not None and t.opened >= now - 30 * DAY)
    )
    resolved = [
        t.status_at[0] - t.opened for t in tickets if t.status in CLOSED and t.opened is not None
    ]
    if resolved:
        f["resolution_days"] = sum(resolved) / len(resolved) / DAY
    oldest_open = [now - t.opened for t in open_t if t.opened is not None]
    if oldest_open:
        f["oldest_open_ticket_days"] = max(oldest_open) / DAY
    sentiments = [t.sentiment for t in tickets if t.sentiment is not None]
    if sentiments:
        f["ticket_sentiment"] = sum(sentiments) / len(sentiments)
    for kind, sv in s.surveys.items():
        f[f"{kind}_latest"] = sv.latest
        f[f"{kind}_avg"] = sv.average(now)
    current = s.subscriptions[-1] if s.subscriptions else None
    if current is not None:
        f["mrr"] = float(current[4])
        f["in_trial"] = 1.0 if current[2] == "trial_started" else 0.0
        f["cancelled"] = 1.0 if current[2] == "cancelled" else 0.0
        before = s.subscription_at(now - 90 * DAY)
        base = float(before[4]) if before is not None else None
        if base:
            f["mrr_change_90d"] = max(-1.0, min(3.0, (f["mrr"] - base) / base))
        recent_rows = [r for r in s.subscriptions if r[0] >= now - 90 * DAY]
        f["upgrades_90d"] = float(sum(1 for r in recent_rows if r[2] == "upgraded"))
        f["downgrades_90d"] = float(sum(1 for r in recent_rows if r[2] == "downgraded"))
    if s.customer_since is not None:
        f["months_since_start"] = max(0.0, (now - s.customer_since) / (30.4375 * DAY))
    if s.first_ts is not None:
        f["tenure_days"] = max(0.0, (now - s.first_ts) / DAY)
    return f


def current_plan(s: FeatureState) -> str | None:
    return str(s.subscriptions[-1][3]) if s.subscriptions else None
