"""The product events churnstream consumes: one pydantic model per type, a union on `type`.

Every message is a UTF-8 JSON object keyed by `customer_id` on its type's topic.

>>> e = parse_event_dict({"event_id": "e1", "customer_id": "c1", "type": "usage",
...                       "ts": "2025-03-01T12:00:00+01:00", "feature": "reports"})
>>> e.type, e.quantity, e.ts.isoformat()
('usage', 1.0, '2025-03-01T11:00:00+00:00')
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    model_validator,
)

EVENT_TYPES = ("login", "usage", "ticket", "survey", "subscription")

Id = Annotated[str, StringConstraints(min_length=1, max_length=128)]
# Not starting with NUL: the state table keeps its own entries under such keys
# (`streams.peer_store`).
CustomerId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00]")]
ShortText = Annotated[str, StringConstraints(max_length=2_000)]
LongText = Annotated[str, StringConstraints(max_length=20_000)]

# RFC 3339 date-time: a full date, a time and a mandatory offset (Z or ±hh:mm).
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def _rfc3339(value: Any) -> datetime:
    """Accept only an RFC 3339 string with an offset; return it in UTC."""
    if not isinstance(value, str):
        msg = "ts must be an RFC 3339 string with an offset, e.g. 2025-01-31T09:30:00Z"
        raise ValueError(msg)  # noqa: TRY004 - pydantic turns ValueError into a field error
    if not _RFC3339.match(value):
        msg = f"ts {value[:40]!r} is not RFC 3339 with an offset (naive timestamps are rejected)"
        raise ValueError(msg)
    text = value.replace(" ", "T").replace("t", "T").replace("z", "Z")
    # Python parses at most 6 fractional digits; RFC 3339 allows more.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    return datetime.fromisoformat(text).astimezone(UTC)


EventTime = Annotated[datetime, BeforeValidator(_rfc3339)]


class _Event(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: Id
    customer_id: CustomerId
    ts: EventTime
    user_id: Id | None = None


class LoginEvent(_Event):
    """A user of the customer signed in."""

    type: Literal["login"]


class UsageEvent(_Event):
    """Use of a product feature; `quantity` counts units of use (calls, reports, seats...)."""

    type: Literal["usage"]
    feature: Id
    quantity: float = Field(default=1.0, ge=0, le=1e9, allow_inf_nan=False)


TicketStatus = Literal["opened", "updated", "solved", "closed", "reopened"]
TicketPriority = Literal["low", "normal", "high", "urgent"]


class TicketEvent(_Event):
    """A support ticket changed."""

    type: Literal["ticket"]
    ticket_id: Id
    status: TicketStatus
    priority: TicketPriority = "normal"
    subject: ShortText | None = None
    body: LongText | None = None


SurveyKind = Literal["nps", "csat", "ces"]

SCORE_RANGES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}

DEFAULT_RATING_LABELS: dict[str, dict[str, float]] = {
    "nps": {
        "extremely likely": 10,
        "very likely": 9,
        "likely": 7,
        "neutral": 5,
        "unlikely": 3,
        "very unlikely": 1,
        "extremely unlikely": 0,
    },
    "csat": {
        "very satisfied": 5,
        "satisfied": 4,
        "neutral": 3,
        "dissatisfied": 2,
        "very dissatisfied": 1,
    },
    "ces": {
        "very easy": 7,
        "easy": 6,
        "somewhat easy": 5,
        "neutral": 4,
        "somewhat difficult": 3,
        "difficult": 2,
        "very difficult": 1,
    },
}
"""Rating labels to scores, per survey kind (CES: higher is easier). Keys are lower case."""


class SurveyEvent(_Event):
    """An NPS, CSAT or CES answer: a numeric `score` or a `rating_label` that maps to one.

    The label mapping comes from the validation context key `rating_labels` (settings), or
    `DEFAULT_RATING_LABELS`.
    """

    type: Literal["survey"]
    kind: SurveyKind
    score: float | None = Field(default=None, allow_inf_nan=False)
    rating_label: ShortText | None = None
    comment: LongText | None = None

    @model_validator(mode="before")
    @classmethod
    def _score_from_label(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping) or data.get("score") is not None:
            return data
        label, kind = data.get("rating_label"), data.get("kind")
        if not isinstance(label, str) or kind not in SCORE_RANGES:
            return data
        context = info.context if isinstance(info.context, Mapping) else {}
        labels = context.get("rating_labels") or DEFAULT_RATING_LABELS
        score = labels.get(kind, {}).get(label.strip().lower())
        if score is None:
            known = ", ".join(sorted(labels.get(kind, {}))) or "none"
            msg = f"rating_label {label[:60]!r} is not known for {kind} (known: {known})"
            raise ValueError(msg)
        return {**data, "score": score}

    @model_validator(mode="after")
    def _score_in_range(self) -> SurveyEvent:
        if self.score is None:
            msg = "a survey needs a score or a rating_label"
            raise ValueError(msg)
        low, high = SCORE_RANGES[self.kind]
        if not low <= self.score <= high:
            msg = f"{self.kind} score must be between {low} and {high}, got {self.score}"
            raise ValueError(msg)
        if self.kind == "nps" and self.score != int(self.score):
            msg = f"nps score must be a whole number, got {self.score}"
            raise ValueError(msg)
        return self


SubscriptionAction = Literal[
    "trial_started", "started", "renewed", "upgraded", "downgraded", "cancelled", "reactivated"
]


class SubscriptionEvent(_Event):
    """A change to the customer's subscription; `mrr` is the monthly recurring revenue after it."""

    type: Literal["subscription"]
    action: SubscriptionAction
    plan: Id
    mrr: float = Field(ge=0, le=1e9, allow_inf_nan=False)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "USD"


Event = Annotated[
    LoginEvent | UsageEvent | TicketEvent | SurveyEvent | SubscriptionEvent,
    Field(discriminator="type"),
]
EVENT_MODELS: dict[str, type[_Event]] = {
    "login": LoginEvent,
    "usage": UsageEvent,
    "ticket": TicketEvent,
    "survey": SurveyEvent,
    "subscription": SubscriptionEvent,
}
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event_dict(
    data: Mapping[str, Any], rating_labels: Mapping[str, Mapping[str, float]] | None = None
) -> Event:
    """Validate one decoded JSON object as an event; raises pydantic's ValidationError."""
    context = {"rating_labels": rating_labels} if rating_labels else None
    return EVENT_ADAPTER.validate_python(data, context=context)


def event_to_json_dict(event: BaseModel) -> dict[str, Any]:
    """The event as its JSON object (timestamps in RFC 3339, UTC)."""
    return event.model_dump(mode="json", exclude_none=True)
