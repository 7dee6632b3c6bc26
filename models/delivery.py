"""Applying a Kafka message to a customer's state at most once.

The worker runs at-least-once: after a crash, messages since the last committed offset are
delivered again. Each customer's state remembers the highest offset it applied from every
source partition; a message at or below it was applied already and changes nothing.

>>> seen = AppliedOffsets()
>>> seen.first_time("login", 3, 10), seen.first_time("login", 3, 10), seen.first_time("login", 3, 11)
(True, False, True)
>>> seen.first_time("usage", 3, 5)
True
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class AppliedOffsets:
    """Highest applied offset per `topic:partition` (a handful of entries per customer)."""

    by_source: dict[str, int] = field(default_factory=dict)

    def first_time(self, topic: str, partition: int, offset: int) -> bool:
        """Record the message; True when it was not applied before."""
        source = f"{topic}:{partition}"
        if offset <= self.by_source.get(source, -1):
            return False
        self.by_source[source] = offset
        return True

    def seen(self, topic: str, partition: int, offset: int) -> bool:
        return offset <= self.by_source.get(f"{topic}:{partition}", -1)
