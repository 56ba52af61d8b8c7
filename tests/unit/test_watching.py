"""How long `watch` waits: until its stop event or --duration, whichever comes first."""

from __future__ import annotations

import threading
import time

from chaos.cli.watching import _wait


def test_the_watch_ends_after_its_duration() -> None:
    began = time.monotonic()
    _wait(threading.Event(), 0.3)
    assert 0.3 <= time.monotonic() - began < 2.0


def test_a_stop_ends_the_watch_before_its_duration() -> None:
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    began = time.monotonic()
    _wait(stop, 60)
    assert time.monotonic() - began < 5.0
