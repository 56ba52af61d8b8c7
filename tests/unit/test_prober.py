"""The prober against a real HTTP server on loopback: failures and outages are counted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chaos.observe.prober import Prober, ProbeWindow


class Switchable(BaseHTTPRequestHandler):
    healthy = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 (http.server's spelling)
        self.send_response(200 if self.healthy.is_set() else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Switchable)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_counts_failures_and_the_longest_outage(server: ThreadingHTTPServer) -> None:
    windows: list[ProbeWindow] = []
    results: list[bool] = []
    done = threading.Event()

    def on_request(ok: bool, latency: float) -> None:
        results.append(ok)
        if len(results) == 10:
            Switchable.healthy.set()
        if len(results) >= 20:
            done.set()

    Switchable.healthy.clear()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    prober = Prober(url, 50, 1.0, on_request, windows.append).start()
    assert done.wait(10)
    prober.stop()
    assert results[:10] == [False] * 10 and all(results[10:20])
    assert prober.failures == 10 and prober.requests == len(results)
    # ten failed requests at 50/s: an outage of about 0.2 s
    assert 0.15 <= prober.longest_outage <= 1.0
    assert sum(w.requests for w in windows) == prober.requests


def test_refused_connections_are_failures() -> None:
    prober = Prober("http://127.0.0.1:9/", 10, 0.5, lambda ok, t: None, lambda w: None)
    ok, latency = prober.probe_once()
    assert not ok and latency < 1.0
