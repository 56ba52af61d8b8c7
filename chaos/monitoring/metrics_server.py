"""The HTTP server that answers /metrics from a background thread (prometheus_client's WSGI app
behind chaos.serving's bounds: a connection cap and an idle timeout), with one-line errors for a
port that is taken."""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import CollectorRegistry, make_wsgi_app

from chaos.errors import SetupError
from chaos.serving import HEADER_SECONDS, BoundedHandler, BoundedHTTPServer

DEFAULT_METRICS_PORT = 9464
MAX_CONNECTIONS = 16
"""Prometheus scrapes over one connection; the rest is for people with curl. In the cluster any
pod can reach the port, so a crowd of idle sockets must not cost a thread each."""
IDLE_SECONDS = 10.0
"""A connection that sends no request this long is closed."""


class MetricsServer:
    """An HTTP server answering /metrics from a background thread; `close()` stops it."""

    def __init__(self, registry: CollectorRegistry, port: int, host: str,
                 max_connections: int = MAX_CONNECTIONS,
                 idle_seconds: float = IDLE_SECONDS,
                 header_seconds: float = HEADER_SECONDS) -> None:
        self._server = _Server((host, port), _QuietHandler, max_connections, idle_seconds,
                               header_seconds)
        self._server.set_app(nosniff(make_wsgi_app(registry)))
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics",
                                        daemon=True)
        self._thread.start()
        self.host = host
        self.port: int = self._server.server_port
        self._closed = False

    @property
    def url(self) -> str:
        """The address of the metrics page."""
        return f"http://{self.host}:{self.port}/metrics"

    def open_connections(self) -> int:
        """How many connections are open now (at most the cap)."""
        return self._server.open_connections()

    def close(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Server(BoundedHTTPServer, WSGIServer):
    """A WSGI server with chaos.serving's bounds."""


class _QuietHandler(BoundedHandler, WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a scrape every few seconds is no news."""


def nosniff(app: WSGIApplication) -> WSGIApplication:
    """APP, its answers marked X-Content-Type-Options: nosniff (a browser never reads the
    metrics as anything but text)."""

    def marked(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]],
                  exc_info: Any = None) -> Callable[[bytes], object]:
            return start_response(status, [*headers, ("X-Content-Type-Options", "nosniff")],
                                  exc_info)

        return app(environ, start)

    return marked


def serve(
    registry: CollectorRegistry, port: int = DEFAULT_METRICS_PORT, host: str = "127.0.0.1"
) -> MetricsServer:
    """Serve `registry` on http://host:port/metrics; port 0 picks a free port."""
    try:
        return MetricsServer(registry, port, host)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise SetupError(
                f"port {port} is already in use on {host}: pick another with --metrics-port"
            ) from None
        raise SetupError(
            f"cannot serve metrics on {host}:{port}: {error.strerror or error}"
        ) from None
