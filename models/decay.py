"""Exponentially decayed sums whose value does not depend on the order of additions.

A contribution `q` at time `t` is worth `q * 2**(-(T - t) / h)` at a later time `T`. Kept as
`log(sum q * 2**(t / h))` against the fixed epoch, so adding is commutative and a late event
is simply added; the log keeps the numbers small for any date.

>>> s = DecayedSum.empty()
>>> s = s.add(4.0, at=0.0, half_life=10.0).add(4.0, at=10.0, half_life=10.0)
>>> round(s.value(at=10.0, half_life=10.0), 9)
6.0
>>> t = DecayedSum.empty().add(4.0, at=10.0, half_life=10.0).add(4.0, at=0.0, half_life=10.0)
>>> abs(t.value(10.0, 10.0) - s.value(10.0, 10.0)) < 1e-12
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LN2 = math.log(2.0)


def log_add(a: float | None, b: float) -> float:
    """log(exp(a) + exp(b)), with None standing for log(0)."""
    if a is None:
        return b
    high, low = (a, b) if a >= b else (b, a)
    return high + math.log1p(math.exp(low - high))


@dataclass(frozen=True, slots=True)
class DecayedSum:
    log_total: float | None  # None: nothing added yet

    @classmethod
    def empty(cls) -> DecayedSum:
        return cls(None)

    def add(self, amount: float, at: float, half_life: float) -> DecayedSum:
        if amount <= 0:
            return self
        return DecayedSum(log_add(self.log_total, math.log(amount) + at * LN2 / half_life))

    def value(self, at: float, half_life: float) -> float:
        if self.log_total is None:
            return 0.0
        exponent = self.log_total - at * LN2 / half_life
        return math.exp(exponent) if exponent < 700 else math.inf
