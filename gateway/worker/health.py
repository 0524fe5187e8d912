"""The worker's health and metrics endpoint: `/healthz`, `/readyz` and `/metrics` on a local port.

`/healthz` answers while the process runs. `/readyz` answers 200 when the store is reachable and every source
has had a successful poll within its allowed staleness, 503 otherwise, with the reasons as JSON. `/metrics` is
the Prometheus text format.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from gateway import logs
from gateway.service import reads
from gateway.store.port import Store

log = logs.get(__name__)

Readiness = Callable[[], tuple[bool, dict[str, Any]]]


def readiness(store: Store | None, states: Callable[[], list[dict[str, Any]]]) -> tuple[bool, dict[str, Any]]:
    """Ready when the store answers and no source is stale (`states`: every source's state, JSON-ready); the
    problems named."""
    problems: list[str] = []
    try:
        assert store is not None
        reads.ping(store)
    except Exception as exc:
        problems.append(f"store: {type(exc).__name__}: {exc}")
    described = states()
    problems.extend(
        f"source {s['partner']}/{s['source']}: "
        + (
            "no successful poll yet"
            if s["seconds_since_ok"] is None
            else f"no successful poll for {s['seconds_since_ok']:.0f} s"
        )
        + (f"; last error: {s['last_error']}" if s["last_error"] else "")
        for s in described
        if s["stale"]
    )
    return not problems, {"problems": problems, "sources": described}


class HealthServer:
    """A small HTTP server on its own thread."""

    def __init__(self, host: str, port: int, ready: Readiness, registry: CollectorRegistry) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.ready = ready
        self.registry = registry
        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="health", daemon=True)

    @property
    def port(self) -> int:
        """The port it listens on (the one asked for, or the one given for 0)."""
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        """Serve in the background."""
        self.thread.start()
        log.info("health_listening", host=self.httpd.server_address[0], port=self.port)

    def stop(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        """Route one GET."""
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            self._send(request, 200, "application/json", b'{"status": "alive"}')
        elif path == "/readyz":
            try:
                ok, detail = self.ready()
            except Exception as exc:
                ok, detail = False, {"error": f"{type(exc).__name__}: {exc}"}
            body = json.dumps({"ready": ok, **detail}, default=str).encode()
            self._send(request, 200 if ok else 503, "application/json", body)
        elif path == "/metrics":
            self._send(request, 200, CONTENT_TYPE_LATEST, generate_latest(self.registry))
        else:
            self._send(request, 404, "application/json", b'{"error": "not found"}')

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, content_type: str, body: bytes) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
