"""Usage judged against peers: online mean and variance of usage per plan (River stats).

Each customer counts at most once per day of event time, so busy customers do not
dominate. `zscore` answers only once a plan has `min_peers` samples, else falls back to
all plans, else None (the health score then uses an absolute curve).

>>> p = PeerBaseline()
>>> for i in range(40):
...     p.observe("starter", float(i))
>>> z = p.zscore("starter", 39.0, min_peers=30)
>>> z is not None and z > 1
True
>>> p.zscore("enterprise", 10.0, min_peers=30) is not None  # falls back to all plans
True
"""

from __future__ import annotations

import math

from river import stats

ALL = "*"


class PeerBaseline:
    def __init__(self) -> None:
        self._var: dict[str, stats.Var] = {}

    def observe(self, plan: str | None, usage_30d: float) -> None:
        x = math.log1p(max(0.0, usage_30d))
        for key in {plan or ALL, ALL}:
            self._var.setdefault(key, stats.Var()).update(x)

    def count(self, plan: str | None) -> int:
        v = self._var.get(plan or ALL)
        return int(v.mean.n) if v is not None else 0

    def zscore(self, plan: str | None, usage_30d: float, min_peers: int) -> float | None:
        for key in (plan or ALL, ALL):
            v = self._var.get(key)
            if v is not None and v.mean.n >= min_peers:
                sd = math.sqrt(v.get()) if v.get() > 0 else 0.0
                if sd == 0:
                    return 0.0
                return (math.log1p(max(0.0, usage_30d)) - v.mean.get()) / sd
        return None
