"""Comparing live worker state with an offline replay of the same events."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from churnstream.models.replay import ReplayResult
from churnstream.schemas.records import RiskChange
from harness import http_json


def close(a: Any, b: Any, path: str = "") -> list[str]:
    """Differences between two JSON-like values; floats to 1e-9 relative."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a)} != {sorted(b)}"]
        return [d for k in a for d in close(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} != {len(b)}"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in close(x, y, f"{path}[{i}]")
        ]
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        ok = math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
        return [] if ok else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def live_records(url: str, customer_ids: list[str]) -> dict[str, Any]:
    out = {}
    for cid in customer_ids:
        status, body = http_json(f"{url}/customers/{cid}?raw=1")
        if status == 200:
            out[cid] = body
    return out


def state_differences(live: dict[str, Any], expected: ReplayResult) -> list[str]:
    """Per customer: features and counts of the live record against the replay's."""
    diffs = []
    for cid, record in expected.records.items():
        got = live.get(cid)
        if got is None:
            diffs.append(f"{cid}: missing in the live worker")
            continue
        want = record.to_dict()
        diffs += [f"{cid}{d}" for d in close(got["features"], want["features"], ".features")]
        diffs += [f"{cid}{d}" for d in close(got["counts"], want["counts"], ".counts")]
    return diffs


def alerts_missing(live: dict[str, Any], alerts: list[RiskChange]) -> dict[str, tuple[int, int]]:
    """Customers whose records raised a different number of alerts than were published
    (distinct ids): customer -> (raised, published)."""
    published = Counter(a.customer_id for a in {a.alert_id: a for a in alerts}.values())
    raised = {cid: r["risk"]["alerts"] for cid, r in live.items()}
    return {
        cid: (raised.get(cid, 0), published[cid])
        for cid in set(raised) | set(published)
        if raised.get(cid, 0) != published[cid]
    }
