"""The loopback HTTP server that answers /metrics from a background thread, with one-line errors
for a port that is taken."""

from __future__ import annotations

import errno
from types import TracebackType

from prometheus_client import CollectorRegistry, start_http_server

from chaos.errors import SetupError

DEFAULT_METRICS_PORT = 9464


class MetricsServer:
    """An HTTP server answering /metrics from a background thread; `close()` stops it."""

    def __init__(self, registry: CollectorRegistry, port: int, host: str) -> None:
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        self.host = host
        self.port: int = self._server.server_port
        self._closed = False

    @property
    def url(self) -> str:
        """The address of the metrics page."""
        return f"http://{self.host}:{self.port}/metrics"

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
