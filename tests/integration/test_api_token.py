"""The HTTP API beyond loopback requires the bearer token; /metrics stays open to scrapers,
whole or restricted to the samples named by `name[]` (prometheus_client's own convention)."""

from __future__ import annotations

from urllib.parse import urlencode

from churnstream.streams.demo import text_samples, total
from churnstream.streams.producing import produce_events
from churnstream.streams.topics import create_topics
from harness import http_get, http_json, wait_for


def test_api_requires_the_token_when_bound_beyond_loopback(make_settings, start_worker) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(web_host="0.0.0.0", api_token="t0ken")  # noqa: S104
    create_topics(settings)
    worker = start_worker(settings)
    produce_events(
        settings,
        [{"event_id": "e1", "customer_id": "c1", "type": "login", "ts": "2025-02-01T10:00:00Z"}],
    )
    url = f"{worker.url}/customers/c1"
    wait_for(lambda: http_json(url, token="t0ken")[0] == 200, 60, "c1 to be known")
    _, body = http_json(url, token="t0ken")
    assert body["customer_id"] == "c1" and body["event_counts"] == {"login": 1}
    assert http_json(url)[0] == 401
    assert http_json(url, token="wrong")[0] == 401
    assert http_json(f"{worker.url}/metrics/summary")[0] == 401
    assert http_json(f"{worker.url}/metrics/summary", token="t0ken")[0] == 200
    status, whole = http_get(f"{worker.url}/metrics")
    assert status == 200
    assert len({s.name for s in text_samples(whole.decode())}) > 50
    names = ("churnstream_events_processed_total", "process_cpu_seconds_total")
    status, body = http_get(f"{worker.url}/metrics?{urlencode([('name[]', n) for n in names])}")
    found = list(text_samples(body.decode()))
    assert status == 200 and {s.name for s in found} == set(names)
    assert total(found, {"churnstream_events_processed_total": {"type": "login"}}) == 1
