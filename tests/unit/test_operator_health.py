"""The operator's /healthz, for real on loopback: 200 while kopf's event loop runs calls, 503
before it starts, while it is stuck and after it ends (test_serving drops a client that
trickles its request to it at the header deadline)."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from chaos.operator.health import PATH, HealthServer, KopfLoop


@contextmanager
def health_server(loop: KopfLoop) -> Iterator[HealthServer]:
    server = HealthServer(lambda: loop.alive(timeout=0.5), 0, "127.0.0.1")
    try:
        yield server
    finally:
        server.close()


def status(port: int, path: str = PATH) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


@contextmanager
def running_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def test_healthy_only_while_the_loop_runs_calls() -> None:
    kopf = KopfLoop()
    with health_server(kopf) as server:
        assert status(server.port) == 503, "kopf has not started"
        with running_loop() as loop:
            kopf.loop = loop
            assert status(server.port) == 200
            assert status(server.port, "/other") == 404
            loop.call_soon_threadsafe(time.sleep, 1.5)  # a stuck loop
            assert status(server.port) == 503
        assert status(server.port) == 503, "kopf has ended"
