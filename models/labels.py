"""Labels that arrive late: feature snapshots become churn examples once their outcome is known.

A snapshot taken at time `s` asks "does this customer cancel within the horizon H?". A
cancellation at `T` marks the customer's pending snapshots with `T - H <= s <= T` positive
(older ones negative). Every example, positive or negative, is released when event time has
passed `s + H` plus the lateness bound: a positive is known earlier, but learning positives
sooner than negatives would teach the model a churn rate far above the real one (in the
first weeks it would see nothing else). Waiting the lateness bound also lets a late
cancellation count.

No example is labelled with anything after `s + H`, and the features are the snapshot's own.
Examples carry deterministic ids, so a snapshot delivered twice is labelled once.

>>> lab = ChurnLabeler(horizon=30 * DAY, lateness=7 * DAY)
>>> lab.add(Snapshot("c1", 0.0, {"x": 1.0}))
True
>>> lab.add(Snapshot("c1", 0.0, {"x": 1.0}))  # delivered twice
False
>>> lab.add(Snapshot("c2", 0.0, {"x": 2.0}))
True
>>> lab.cancelled("c1", 20 * DAY)  # known now, released with the negatives
1
>>> lab.advance(36 * DAY), [(e.customer_id, e.label) for e in lab.advance(37 * DAY)]
([], [('c1', True), ('c2', False)])
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    customer_id: str
    at: float  # event time
    features: dict[str, float]
    probability: float | None = None  # what the model said then
    model_version: str | None = None
    health_score: float | None = None  # what the health score said then (for evaluation)

    @property
    def id(self) -> str:
        return f"{self.customer_id}@{self.at:.3f}"


@dataclass(frozen=True, slots=True)
class Example:
    snapshot: Snapshot
    label: bool
    labelled_at: float  # event time the label became known

    @property
    def id(self) -> str:
        return self.snapshot.id

    @property
    def customer_id(self) -> str:
        return self.snapshot.customer_id


@dataclass
class ChurnLabeler:
    horizon: float = 30 * DAY
    lateness: float = 7 * DAY
    pending: dict[str, deque[Snapshot]] = field(default_factory=dict)
    _by_time: list[tuple[float, str, str]] = field(default_factory=list)  # (at, customer, id)
    positive: set[str] = field(default_factory=set)  # pending snapshot ids with a cancellation
    _ids: set[str] = field(default_factory=set)  # pending and recently labelled ids
    _recent: deque[str] = field(default_factory=deque)
    watermark: float = float("-inf")
    keep_ids: int = 1_000_000

    def add(self, snap: Snapshot) -> bool:
        """Hold a snapshot until its outcome is known; False if it was seen already."""
        if snap.id in self._ids:
            return False
        self._remember(snap.id)
        self.pending.setdefault(snap.customer_id, deque()).append(snap)
        heapq.heappush(self._by_time, (snap.at, snap.customer_id, snap.id))
        return True

    def _remember(self, example_id: str) -> None:
        self._ids.add(example_id)
        self._recent.append(example_id)
        while len(self._recent) > self.keep_ids:
            self._ids.discard(self._recent.popleft())

    def cancelled(self, customer_id: str, at: float) -> int:
        """The customer cancelled at `at`: mark their pending snapshots up to `at` (positive
        within the horizon); returns how many were marked."""
        marked = 0
        for snap in self.pending.get(customer_id, ()):
            if snap.at <= at and snap.id not in self.positive and snap.at >= at - self.horizon:
                self.positive.add(snap.id)
                marked += 1
        return marked

    def advance(self, watermark: float) -> list[Example]:
        """Event time has reached `watermark`: release the examples whose horizon, plus the
        lateness bound, has passed; unmarked ones are negatives."""
        self.watermark = max(self.watermark, watermark)
        cut = self.watermark - self.horizon - self.lateness
        out = []
        while self._by_time and self._by_time[0][0] <= cut:
            at, customer_id, snap_id = heapq.heappop(self._by_time)
            queue = self.pending[customer_id]
            snap = queue.popleft()  # snapshots of a customer mature in the order taken
            if not queue:
                del self.pending[customer_id]
            label = snap_id in self.positive
            self.positive.discard(snap_id)
            out.append(Example(snap, label=label, labelled_at=at + self.horizon))
        return out

    def __len__(self) -> int:
        return sum(len(q) for q in self.pending.values())
