"""Messages on the `model-examples` topic: what the workers tell the trainer.

`{"kind": "snapshot", ...}` carries a customer's features at a moment (and what the model
said then); `{"kind": "cancel", "customer_id", "at"}` says the customer cancelled. Times are
event time, in seconds.

>>> from churnstream.models.labels import Snapshot
>>> raw = snapshot_message(Snapshot("c1", 86400.0, {"x": 1.0}, 0.1, "churn-lr-v3", 71.5))
>>> decode(raw)
Snapshot(customer_id='c1', at=86400.0, features={'x': 1.0}, probability=0.1, model_version='churn-lr-v3', health_score=71.5)
>>> decode(cancel_message("c1", 90000.0))
('cancel', 'c1', 90000.0)
"""

from __future__ import annotations

from typing import Any

import orjson

from churnstream.models.labels import Snapshot


def snapshot_message(s: Snapshot) -> bytes:
    return orjson.dumps(
        {
            "kind": "snapshot",
            "customer_id": s.customer_id,
            "at": s.at,
            "features": s.features,
            "probability": s.probability,
            "model_version": s.model_version,
            "health_score": s.health_score,
        }
    )


def cancel(customer_id: str, at: float) -> dict[str, Any]:
    return {"kind": "cancel", "customer_id": customer_id, "at": at}


def cancel_message(customer_id: str, at: float) -> bytes:
    return orjson.dumps(cancel(customer_id, at))


def decode(raw: bytes) -> Snapshot | tuple[str, str, float]:
    d: dict[str, Any] = orjson.loads(raw)
    if d["kind"] == "cancel":
        return ("cancel", str(d["customer_id"]), float(d["at"]))
    return Snapshot(
        str(d["customer_id"]),
        float(d["at"]),
        {str(k): float(v) for k, v in d["features"].items()},
        d.get("probability"),
        d.get("model_version"),
        d.get("health_score"),
    )
