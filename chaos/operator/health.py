"""The operator's /healthz for the kubelet's liveness probe: 200 while kopf's event loop runs a
call within LOOP_SECONDS, 503 otherwise. Served by chaos.serving's bounded server (a connection
cap, idle and header deadlines), not by kopf's own liveness endpoint, whose server waits for a
request's headers without any deadline."""

from __future__ import annotations

import asyncio
import errno
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

from chaos.errors import SetupError
from chaos.serving import HEADER_SECONDS, BoundedHandler, BoundedHTTPServer

PATH = "/healthz"
MAX_CONNECTIONS = 4
"""The kubelet probes over one connection at a time; any pod can reach the port."""
IDLE_SECONDS = 10.0
LOOP_SECONDS = 3.0
"""How long kopf's loop may take to run a call (the probe's timeoutSeconds is 5)."""


class KopfLoop:
    """kopf's event loop, once it runs; alive() asks it to run a call."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None

    def alive(self, timeout: float = LOOP_SECONDS) -> bool:
        loop = self.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return False
        ran = threading.Event()
        try:
            loop.call_soon_threadsafe(ran.set)
        except RuntimeError:  # closed meanwhile
            return False
        return ran.wait(timeout)


class HealthServer:
    """Answers GET /healthz from a background thread: 200 while HEALTHY() holds, else 503."""

    def __init__(self, healthy: Callable[[], bool], port: int, host: str,
                 idle_seconds: float = IDLE_SECONDS,
                 header_seconds: float = HEADER_SECONDS) -> None:
        self.server = _Server((host, port), _Handler, MAX_CONNECTIONS, idle_seconds,
                              header_seconds)
        self.server.healthy = healthy
        self.port: int = self.server.server_port
        self._thread = threading.Thread(target=self.server.serve_forever, name="health",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


def serve(healthy: Callable[[], bool], port: int, host: str = "0.0.0.0") -> HealthServer:
    """Serve /healthz on host:port; one line when the port cannot be had."""
    try:
        return HealthServer(healthy, port, host)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise SetupError(f"port {port} is already in use on {host}: pick another with "
                             "--health-port") from None
        raise SetupError(f"cannot serve /healthz on {host}:{port}: "
                         f"{error.strerror or error}") from None


class _Server(BoundedHTTPServer):
    healthy: Callable[[], bool]


class _Handler(BoundedHandler, BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        if self.path.split("?")[0] != PATH:
            self._answer(404, b"not found\n")
        elif self.server.healthy():
            self._answer(200, b"ok\n")
        else:
            self._answer(503, b"kopf is not running\n")

    def _answer(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a probe every ten seconds is no news."""
