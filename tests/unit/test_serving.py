"""The bounded servers of the live page, the exporter and the operator's /healthz, for real on
loopback: a client that trickles its request a byte at a time, each byte within the idle
timeout, is still dropped once the whole-request deadline passes; an answer under way (an event
stream) is not."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
from prometheus_client import CollectorRegistry

from chaos.monitoring.metrics_server import MetricsServer
from chaos.operator.health import HealthServer
from chaos.view.model import ViewModel
from chaos.view.web import WebView

IDLE = 1.0
HEADERS = 2.0
EVERY = 0.5
"""A byte this often: well within the idle timeout."""


@contextmanager
def web_view() -> Iterator[tuple[int, Callable[[], int]]]:
    web = WebView(ViewModel("t"), 0, idle_seconds=IDLE, header_seconds=HEADERS)
    try:
        yield web.port, web.server.open_connections
    finally:
        web.close(drain_seconds=0)


@contextmanager
def metrics_server() -> Iterator[tuple[int, Callable[[], int]]]:
    with MetricsServer(CollectorRegistry(), 0, "127.0.0.1", idle_seconds=IDLE,
                       header_seconds=HEADERS) as server:
        yield server.port, server.open_connections


@contextmanager
def health_server() -> Iterator[tuple[int, Callable[[], int]]]:
    server = HealthServer(lambda: True, 0, "127.0.0.1", idle_seconds=IDLE,
                          header_seconds=HEADERS)
    try:
        yield server.port, server.server.open_connections
    finally:
        server.close()


def trickle(port: int, limit: float) -> float:
    """Sends a request a byte every EVERY seconds until the server closes the connection;
    the seconds that took. Fails the test after LIMIT seconds."""
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 1000
    with socket.create_connection(("127.0.0.1", port), timeout=EVERY) as sock:
        start = time.monotonic()
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
                if sock.recv(1) == b"":
                    return time.monotonic() - start
            except TimeoutError:  # still open, nothing said: the next byte
                pass
            except (ConnectionResetError, BrokenPipeError):
                return time.monotonic() - start
            if time.monotonic() - start > limit:
                break
    pytest.fail(f"a trickling client still connected after {limit}s")


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)  # polls another thread's count
    return True


@pytest.mark.parametrize("serve", [web_view, metrics_server, health_server],
                         ids=["web", "metrics", "health"])
def test_a_request_trickled_a_byte_at_a_time_is_dropped_at_the_deadline(
        serve: Callable[[], AbstractContextManager[tuple[int, Callable[[], int]]]]) -> None:
    with serve() as (port, open_connections):
        took = trickle(port, limit=HEADERS * 4)
        assert HEADERS * 0.95 <= took <= HEADERS + IDLE, took
        assert wait_until(lambda: open_connections() == 0, 5), "its slot is freed"


def test_an_event_stream_outlives_the_header_deadline() -> None:
    with web_view() as (port, open_connections):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 200"), "the stream is answered"
            sock.settimeout(0.1)
            end = time.monotonic() + HEADERS * 1.5
            while time.monotonic() < end:
                try:
                    assert sock.recv(65536) != b"", "the stream was closed"
                except TimeoutError:  # nothing new to send: still open
                    pass
            assert open_connections() == 1
