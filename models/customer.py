"""A customer's state as the worker keeps it, and the step that applies one event to it.

>>> from churnstream.schemas.events import parse_event_dict
>>> e = parse_event_dict({"event_id": "e1", "customer_id": "c1", "type": "login",
...                       "ts": "2025-01-01T00:00:00Z"})
>>> s = CustomerState.new("c1")
>>> apply_event(s, e, source=("events.login", 0, 7)), apply_event(s, e, source=("events.login", 0, 7))
(True, False)
>>> s.event_counts
{'login': 1}
>>> CustomerState.from_dict(s.to_dict()) == s
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from churnstream.models.delivery import AppliedOffsets
from churnstream.schemas.events import Event

Source = tuple[str, int, int]
"""Where a message came from: topic, partition, offset."""


@dataclass(slots=True)
class CustomerState:
    customer_id: str
    event_counts: dict[str, int] = field(default_factory=dict)
    applied: AppliedOffsets = field(default_factory=AppliedOffsets)

    @classmethod
    def new(cls, customer_id: str) -> CustomerState:
        return cls(customer_id=customer_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "event_counts": self.event_counts,
            "applied": self.applied.by_source,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomerState:
        return cls(
            customer_id=data["customer_id"],
            event_counts=dict(data.get("event_counts", {})),
            applied=AppliedOffsets(dict(data.get("applied", {}))),
        )


def apply_event(state: CustomerState, event: Event, source: Source) -> bool:
    """Apply `event`, read from `source`, to `state`; False when it was applied before."""
    if not state.applied.first_time(*source):
        return False
    state.event_counts[event.type] = state.event_counts.get(event.type, 0) + 1
    return True
