"""A local HTTP server that answers like a Slack incoming webhook.

Slack answers a good POST with 200 and the body `ok`; a bad payload with 400
`invalid_payload`; rate limiting with 429 and a `Retry-After` header (seconds); its own
trouble with 5xx. Tests script the answers: a queue of canned answers, a `rule` looked at
for every request (say, refuse one customer's alerts), or `down` (drop the connection).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: str = "ok"
    retry_after: float | None = None


OK = Answer()
RATE_LIMITED = Answer(429, "rate_limited", retry_after=1)
SERVER_ERROR = Answer(500, "rollup_error")
INVALID = Answer(400, "invalid_payload")


class FakeSlack:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queue: list[Answer] = []
        self.rule: Callable[[str, dict[str, Any]], Answer | None] | None = None
        self.down = False
        self.accepted: list[tuple[str, dict[str, Any]]] = []  # (path, payload)
        self.requests: list[tuple[str, int]] = []  # (path, status answered; 0: dropped)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with fake.lock:
                    if fake.down:
                        fake.requests.append((self.path, 0))
                        self.close_connection = True
                        self.connection.close()
                        return
                    try:
                        payload = json.loads(raw)
                    except ValueError:
                        payload = None
                    answer = None
                    if payload is None:
                        answer = INVALID
                    elif fake.queue:
                        answer = fake.queue.pop(0)
                    elif fake.rule is not None:
                        answer = fake.rule(self.path, payload)
                    answer = answer or OK
                    fake.requests.append((self.path, answer.status))
                    if answer.status == 200:
                        fake.accepted.append((self.path, payload))
                body = answer.body.encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                if answer.retry_after is not None:
                    self.send_header("Retry-After", f"{answer.retry_after:g}")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/services/T000/B000/XXXX") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def texts(self) -> list[str]:
        with self.lock:
            return [p["text"] for _, p in self.accepted]
