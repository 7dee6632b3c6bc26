"""Records churnstream publishes: risk-change alerts and dead letters.

>>> dl = DeadLetter.from_message(b"not json", key=b"c1", topic="churnstream.events.login",
...                              partition=3, offset=42, code="bad_json", reason="not valid JSON")
>>> dl.original_bytes()
b'not json'
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

Id = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Band = Literal["green", "yellow", "red"]
AlertKind = Literal["band_change", "score_drop", "churn_risk"]


class Driver(BaseModel):
    """One reason behind a score or a change: a component or feature and its contribution."""

    model_config = ConfigDict(frozen=True)

    name: str
    contribution: float = Field(description="points of health score, or log-odds for churn")
    direction: Literal["up", "down"]


class RiskChange(BaseModel):
    """An alert on `churnstream.risk-changes`, keyed by `customer_id`.

    `alert_id` is derived from the customer, the kind and the event that caused it, so a
    redelivered event produces the same id.
    """

    model_config = ConfigDict(frozen=True)

    alert_id: Id
    customer_id: Id
    ts: AwareDatetime = Field(description="event time of the event that caused the alert")
    kind: AlertKind
    health_score: float = Field(ge=0, le=100)
    previous_health_score: float | None = Field(default=None, ge=0, le=100)
    band: Band
    previous_band: Band | None = None
    churn_probability: float | None = Field(default=None, ge=0, le=1)
    drivers: list[Driver] = Field(default_factory=list)
    segment: str = Field(
        description='behaviour/size, as the customer stands after the alert ("at-risk/smb" for '
        "an established customer the alert moved to red)"
    )
    model_version: str | None = None
    score_change_7d: float | None = None
    lifetime_value: float | None = None
    plan: str | None = None


class DeadLetter(BaseModel):
    """A message churnstream could not accept, with everything needed to inspect or replay it."""

    model_config = ConfigDict(frozen=True)

    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    key_b64: str | None = None
    value_b64: str = Field(description="the original message value, base64")
    error_code: str = Field(description="short stable label, e.g. bad_json, schema")
    reason: str = Field(description="what was wrong, for people")
    message_ts: datetime | None = Field(default=None, description="the Kafka record timestamp")

    @classmethod
    def from_message(
        cls,
        value: bytes | None,
        *,
        key: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        code: str,
        reason: str,
        message_ts: datetime | None = None,
    ) -> DeadLetter:
        return cls(
            topic=topic,
            partition=partition,
            offset=offset,
            key_b64=base64.b64encode(key).decode() if key is not None else None,
            value_b64=base64.b64encode(value or b"").decode(),
            error_code=code,
            reason=reason,
            message_ts=message_ts,
        )

    def original_bytes(self) -> bytes:
        return base64.b64decode(self.value_b64)
