"""Event and output contracts: pydantic models, decoding, JSON Schema files."""

from churnstream.schemas.errors import ChurnstreamError, InvalidEvent
from churnstream.schemas.events import (
    EVENT_TYPES,
    Event,
    LoginEvent,
    SubscriptionEvent,
    SurveyEvent,
    TicketEvent,
    UsageEvent,
)
from churnstream.schemas.records import DeadLetter, Driver, RiskChange

__all__ = [
    "EVENT_TYPES",
    "ChurnstreamError",
    "DeadLetter",
    "Driver",
    "Event",
    "InvalidEvent",
    "LoginEvent",
    "RiskChange",
    "SubscriptionEvent",
    "SurveyEvent",
    "TicketEvent",
    "UsageEvent",
]
