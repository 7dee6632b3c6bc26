"""Usage judged against peers: online mean and variance of usage per plan (River stats).

Each customer counts at most once per day of event time, so busy customers do not
dominate. `zscore` answers only once a plan has `min_peers` samples, else falls back to
all plans, else None (the health score then uses an absolute curve).

A worker keeps one baseline per partition, stored beside the partition's customers
(`to_dict`, `from_dict`): the peers a customer is judged against do not depend on which
worker owns them, nor on whether it restarted (`ScoringContext.peers_for`).

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
        self.changed = False  # observed since it was last stored (the caller resets it)

    def observe(self, plan: str | None, usage_30d: float) -> None:
        x = math.log1p(max(0.0, usage_30d))
        for key in {plan or ALL, ALL}:
            self._var.setdefault(key, stats.Var()).update(x)
        self.changed = True

    def to_dict(self) -> dict[str, list[float]]:
        """Per plan: samples, mean and sum of squared deviations (River's running state).

        >>> p = PeerBaseline()
        >>> for x in (0.0, 1.0, 3.0):
        ...     p.observe("pro", x)
        >>> q = PeerBaseline.from_dict(p.to_dict())
        >>> q.to_dict() == p.to_dict() and q.zscore("pro", 2.0, 3) == p.zscore("pro", 2.0, 3)
        True
        """
        return {k: [v.mean.n, v.mean.get(), v._S] for k, v in sorted(self._var.items())}

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> PeerBaseline:
        baseline = cls()
        for key, (n, mean, squares) in d.items():
            var = stats.Var()
            var.mean.n, var.mean._mean, var._S = float(n), float(mean), float(squares)
            baseline._var[key] = var
        return baseline

    def copy(self) -> PeerBaseline:
        """An independent copy, `changed` included.

        >>> p = PeerBaseline()
        >>> p.observe("pro", 3.0)
        >>> q = p.copy()
        >>> q.observe("pro", 5.0)
        >>> p.count("pro"), q.count("pro"), q.changed
        (1, 2, True)
        """
        twin = PeerBaseline.from_dict(self.to_dict())
        twin.changed = self.changed
        return twin

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
