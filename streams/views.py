"""The worker's HTTP API: customer summaries (routed to the partition owner) and /metrics."""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from churnstream.models.scoring import summary
from churnstream.streams import peer_store
from churnstream.streams.app import Wiring
from churnstream.streams.stored import UnreadableRecord, decode_record


def register(wiring: Wiring) -> None:
    app, table = wiring.app, wiring.state

    def authorised(request: Any) -> bool:
        token = wiring.settings.api_token
        if token is None:
            return True
        given = request.headers.get("Authorization", "").encode()
        return hmac.compare_digest(given, f"Bearer {token.get_secret_value()}".encode())

    @app.page("/customers/{customer_id}")
    @app.table_route(table=table, match_info="customer_id")
    async def get_customer(web: Any, request: Any, customer_id: str) -> Any:
        if not authorised(request):
            return web.json({"error": "unauthorised"}, status=401)
        raw = None if peer_store.reserved(customer_id.encode()) else table.get(customer_id.encode())
        if raw is None:
            return web.json({"error": f"unknown customer {customer_id}"}, status=404)
        if request.query.get("raw") == "1":  # the stored record, for operators and tests
            return web.bytes(raw, content_type="application/json")
        try:
            record = decode_record(raw)
        except UnreadableRecord as exc:
            error = f"the stored record of {customer_id} is unreadable: {exc} (?raw=1 shows it)"
            return web.json({"error": error}, status=500)
        body = orjson.dumps(summary(record, wiring.context))
        return web.bytes(body, content_type="application/json")

    @app.page("/model")
    async def model_report(web: Any, request: Any) -> Any:
        """The churn model this worker scores with and its progressive validation."""
        if not authorised(request):
            return web.json({"error": "unauthorised"}, status=401)
        if not wiring.model_info:
            return web.json({"model_version": None, "note": "no model published yet"})
        return web.json(wiring.model_info)

    @app.page("/model/suggested-weights")
    async def suggested_weights(web: Any, request: Any) -> Any:
        """Health component weights the model suggests; the score keeps its configured ones."""
        if not authorised(request):
            return web.json({"error": "unauthorised"}, status=401)
        return web.json(
            {**wiring.suggested_weights, "configured": dict(wiring.context.config.weights)}
        )

    @app.page("/metrics/summary")
    async def metrics_summary(web: Any, request: Any) -> Any:
        if not authorised(request):
            return web.json({"error": "unauthorised"}, status=401)
        body = orjson.dumps(wiring.business.report())
        return web.bytes(body, content_type="application/json")

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        """Prometheus' text format; `?name[]=<sample name>` (repeatable) serves only those
        samples, as prometheus_client's own exporters do (the bench's frequent progress reads
        ask for three instead of the whole page)."""
        names, registry = request.query.getall("name[]", []), wiring.metrics.registry
        body = generate_latest(registry.restricted_registry(names) if names else registry)
        return web.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])
