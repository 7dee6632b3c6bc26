"""Which event ids a customer has had, for as long as a copy could still be accepted.

An event of type T is accepted only within the lateness bound behind the customer's latest
T event, so to recognise a re-sent event id it suffices to remember the ids of T events in
that window. They are kept as 4-byte BLAKE2b digests in one bucket per type and day (a few
hundred bytes for a busy customer); a false match needs two of one customer's ids in the
window to share 32 bits (about one in ten million for a customer with 400 events a week).

>>> seen = SeenIds()
>>> seen.add("usage", "e1", 100.0), seen.contains("usage", "e1"), seen.contains("usage", "e2")
(None, True, False)
>>> seen.prune("usage", oldest_day=1); seen.contains("usage", "e1")
False
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

DAY = 86_400.0
WIDTH = 4


def digest(event_id: str) -> bytes:
    return hashlib.blake2b(event_id.encode(), digest_size=WIDTH).digest()


@dataclass(slots=True)
class SeenIds:
    """Digests by type and day. A record read from the table keeps each type's buckets in
    their stored (base64) form until an event of that type needs them: an event touches one
    type, so the others pass through unchanged (decoding every bucket was a tenth of the
    scoring step's time)."""

    buckets: dict[str, dict[int, bytearray]] = field(default_factory=dict)
    stored: dict[str, dict[str, str]] = field(default_factory=dict)  # not yet decoded

    def _days(self, kind: str) -> dict[int, bytearray]:
        raw = self.stored.pop(kind, None)
        if raw is not None:
            self.buckets[kind] = {
                int(day): bytearray(base64.b64decode(b)) for day, b in raw.items()
            }
        return self.buckets.setdefault(kind, {})

    def contains(self, kind: str, event_id: str) -> bool:
        d = digest(event_id)
        for bucket in self._days(kind).values():
            i = bucket.find(d)
            while i != -1:  # a match must start on a digest boundary
                if i % WIDTH == 0:
                    return True
                i = bucket.find(d, i + 1)
        return False

    def add(self, kind: str, event_id: str, ts: float) -> None:
        self._days(kind).setdefault(int(ts // DAY), bytearray()).extend(digest(event_id))

    def prune(self, kind: str, oldest_day: int) -> None:
        """Forget the days before `oldest_day` (no copy from then could be accepted)."""
        days = self._days(kind)
        for day in [d for d in days if d < oldest_day]:
            del days[day]

    def to_dict(self) -> dict[str, dict[str, str]]:
        out = {
            kind: {str(day): base64.b64encode(b).decode() for day, b in days.items()}
            for kind, days in self.buckets.items()
            if days
        }
        return out | self.stored

    @classmethod
    def from_dict(cls, d: dict[str, dict[str, str]]) -> SeenIds:
        return cls(stored=dict(d))
