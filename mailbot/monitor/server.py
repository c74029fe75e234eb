"""The HTTP server of `[metrics] listen`: `/metrics` (Prometheus text) and `/healthz`.

A `ThreadingHTTPServer` on a thread of its own, so a slow scrape never holds up the daemon
and a hung database read never blocks `/healthz` for the next caller. `port` is the port
bound (the one picked when the config says 0). Requests are not logged: a scraper calls
every few seconds.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .health import Verdict

log = logging.getLogger("mailbot.monitor")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    registry: CollectorRegistry
    health: Callable[[], Verdict]


class _V6Server(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 — the name http.server calls
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            try:
                body = generate_latest(self.server.registry)
            except Exception:
                log.exception("metrics: the scrape failed")
                self._send(500, b"scrape failed\n", "text/plain; charset=utf-8")
                return
            self._send(200, body, CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            verdict = self.server.health()
            self._send(200 if verdict.ok else 503, verdict.text().encode("utf-8"),
                       "text/plain; charset=utf-8")
        else:
            self._send(404, b"not found: try /metrics or /healthz\n", "text/plain; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class MetricsServer:
    """Serves `registry` and `health` on HOST:PORT until `stop()`."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry,
                 health: Callable[[], Verdict]) -> None:
        server_class = _V6Server if ":" in host else _Server
        try:
            self._server = server_class((host, port), _Handler)
        except OSError as exc:
            raise OSError(exc.errno, f"[metrics] listen {host}:{port}: {exc.strerror}") from exc
        self._server.registry = registry
        self._server.health = health
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={
            "poll_interval": 0.2}, name="metrics-http", daemon=True)
        self._thread.start()
        log.info("metrics and /healthz on http://%s:%d", host, self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
