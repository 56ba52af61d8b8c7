"""The open-loop prober against real HTTP servers on loopback: every scheduled slot gets one
outcome whatever the server does, in-flight requests stay bounded, and the standalone entry point
prints JSON lines."""

from __future__ import annotations

import json
import math
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chaos.latency import merge, percentiles
from chaos.observe.probe_window import WindowTally
from chaos.observe.prober import Prober, ProbeWindow, pool_size

from support import REPO


class Behaviour:
    """What the server does: fail its first requests, hang until a moment, answer slowly; and
    what it saw: requests, and the most handled at once."""

    def __init__(self, fail_first: int = 0, delay: float = 0.0) -> None:
        self.fail_first, self.delay = fail_first, delay
        self.hang_until = 0.0
        self.lock = threading.Lock()
        self.received = self.active = self.max_active = 0


class Server(ThreadingHTTPServer):
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a prober that gave up closed its end


def serve(behaviour: Behaviour) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's spelling)
            b = behaviour
            with b.lock:
                b.received += 1
                b.active += 1
                b.max_active = max(b.max_active, b.active)
                status = 503 if b.received <= b.fail_first else 200
            held = b.hang_until - time.monotonic()
            if held > 0:  # hangs, then answers 503 to whoever still waits
                time.sleep(held)
                status = 503
            elif b.delay:
                time.sleep(b.delay)
            with b.lock:
                b.active -= 1  # before answering: the prober's worker is still busy
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.fixture
def behaviour() -> Behaviour:
    return Behaviour()


@pytest.fixture
def url(behaviour: Behaviour) -> Iterator[str]:
    httpd = serve(behaviour)
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


class Seen:
    """Every outcome and window the prober reports, with a wait on a condition."""

    def __init__(self) -> None:
        self.results: list[tuple[bool, float, float]] = []  # ok, latency, when heard
        self.windows: list[ProbeWindow] = []
        self.changed = threading.Condition()

    def on_request(self, ok: bool, latency: float) -> None:
        with self.changed:
            self.results.append((ok, latency, time.monotonic()))
            self.changed.notify_all()

    def on_window(self, window: ProbeWindow) -> None:
        self.windows.append(window)

    def wait(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        with self.changed:
            assert self.changed.wait_for(condition, timeout), "gave up waiting"

    def probe(self, url: str, rate: float, timeout: float, workers: int | None = None) -> Prober:
        return Prober(url, rate, timeout, self.on_request, self.on_window, workers).start()


def no_slot_lost(prober: Prober, seen: Seen) -> None:
    assert prober.requests == prober.scheduled == len(seen.results)
    assert sum(w.requests for w in seen.windows) == prober.requests
    assert sum(w.failures for w in seen.windows) == prober.failures
    assert [w.start_seconds for w in seen.windows] == [float(i) for i in range(len(seen.windows))]
    due = math.floor((prober.stop_mono - prober.start_mono) * prober.rate) + 1
    assert abs(prober.scheduled - due) <= 1


def test_counts_failures_and_the_longest_outage(behaviour: Behaviour, url: str) -> None:
    behaviour.fail_first = 10
    seen = Seen()
    prober = seen.probe(url, 50, 1.0)
    seen.wait(lambda: len(seen.results) >= 20)
    prober.stop()
    assert [ok for ok, _, _ in seen.results].count(False) == 10 and prober.failures == 10
    # ten failed slots at 50/s: an outage of 0.2 s
    assert prober.longest_outage == pytest.approx(0.2, abs=0.05)
    no_slot_lost(prober, seen)
    assert sum(w.http_errors for w in seen.windows) == 10


def test_a_hang_fails_every_slot_it_holds_not_one(behaviour: Behaviour, url: str) -> None:
    rate, hang = 50, 1.0
    seen = Seen()
    prober = seen.probe(url, rate, 0.3)
    seen.wait(lambda: len(seen.results) >= 10)
    behaviour.hang_until = ends = time.monotonic() + hang
    seen.wait(lambda: sum(ok and at > ends for ok, _, at in seen.results) >= 10)
    prober.stop()
    assert abs(prober.failures - hang * rate) <= 2, prober.failures
    assert prober.longest_outage == pytest.approx(hang, abs=0.1)
    timeouts = sum(w.timeouts for w in seen.windows)
    answered_503 = sum(w.http_errors for w in seen.windows)
    assert timeouts >= 25 and answered_503 >= 5  # held past 0.3 s; answered at the hang's end
    failed_at = [at for w in seen.windows for at, _ in w.failed_at]
    assert len(failed_at) == prober.failures
    assert failed_at[-1] - failed_at[0] == pytest.approx(hang - 1 / rate, abs=0.1)
    no_slot_lost(prober, seen)


def test_a_slow_server_loses_no_slot(behaviour: Behaviour, url: str) -> None:
    behaviour.delay = 0.5
    seen = Seen()
    prober = seen.probe(url, 20, 2.0)
    seen.wait(lambda: len(seen.results) >= 30)
    prober.stop()
    no_slot_lost(prober, seen)
    assert prober.failures == 0 and behaviour.max_active <= prober.workers == 42
    assert all(w.requests == 20 for w in seen.windows[:-1])
    latency = percentiles(merge(w.latency for w in seen.windows),
                          max(w.latency_max_seconds or 0 for w in seen.windows))
    assert latency.count == prober.requests
    assert latency.p50 is not None and 0.5 <= latency.p50 < 1.5


def test_in_flight_is_bounded_and_the_rest_is_unsent(behaviour: Behaviour, url: str) -> None:
    behaviour.delay = 0.5
    seen = Seen()
    prober = seen.probe(url, 20, 2.0, workers=3)
    seen.wait(lambda: len(seen.results) >= 30)
    prober.stop()
    assert 1 <= behaviour.max_active <= 3
    unsent = sum(w.unsent for w in seen.windows)
    assert unsent > 0 and prober.failures == unsent
    assert all(kind == "unsent" for w in seen.windows for _, kind in w.failed_at)
    no_slot_lost(prober, seen)


def test_the_pool_covers_the_rate_for_a_timeout() -> None:
    assert pool_size(50, 0.3) == 17 and pool_size(1, 0.1) == 3 and pool_size(20, 2) == 42


def test_outcomes_arriving_out_of_order_make_windows_in_order() -> None:
    windows: list[ProbeWindow] = []
    prober = Prober("http://127.0.0.1:9/", 4, 1.0, lambda ok, t: None, windows.append)
    for slot in (2, 0, 5, 3, 4, 1):  # 0-3 the first second, 4-5 the next
        prober._finish(slot, 0.0, "ok" if slot not in (3, 4) else "timeout", 0.01, sent=False)
    ready = list(prober._ready)
    assert [(w.start_seconds, w.requests, w.failures) for w in ready] == [(0.0, 4, 1)]
    assert ready[0].failed_at == ((0.75, "timeout"),)


def test_the_tally_measures_outages_across_windows() -> None:
    tally = WindowTally(4)
    kinds = ["ok", "ok", "http_error", "unsent", "connection_error", "ok", "ok", "ok", "ok", "ok"]
    windows = [w for slot, kind in enumerate(kinds)
               if (w := tally.add(slot, kind, None if kind == "unsent" else 0.02))]
    last = tally.flush()
    assert last is not None and last.seconds == 0.5 and last.requests == 2
    first, second = windows
    assert (first.failures, first.http_errors, first.unsent, first.longest_outage_seconds) == (
        2, 1, 1, 0.5)
    assert second.longest_outage_seconds == 0.75 and second.connection_errors == 1
    assert first.latency == {"20": 3} and second.failed_at == ((1.0, "connection_error"),)
    assert ProbeWindow.from_dict(json.loads(json.dumps(first.to_dict()))) == first
    assert ProbeWindow.from_dict({"seconds": 1, "requests": 4, "failures": 1,
                                  "longest_outage_seconds": 0.05}) == ProbeWindow(1.0, 4, 1, 0.05)


def test_refused_connections_are_failures() -> None:
    prober = Prober("http://127.0.0.1:9/", 10, 0.5, lambda ok, t: None, lambda w: None)
    kind, latency = prober.probe_once()
    assert kind == "connection_error" and latency < 1.0


def test_percentiles_from_histograms() -> None:
    halves: list[dict[str, int]] = [{}, {}]
    for ms in range(1, 101):  # 1 ms .. 100 ms, every bucket exact
        key = f"{ms}"
        halves[ms % 2][key] = 1
    result = percentiles(merge(halves), exact_max=0.1)
    assert (result.count, result.p50, result.p90, result.p99, result.max) == (
        100, 0.05, 0.09, 0.099, 0.1)
    assert percentiles({"130": 1, "7.5": 3}).p50 == 0.0075
    assert percentiles({"130": 1}, exact_max=0.1234).p99 == 0.1234  # a bucket caps at the max
    assert percentiles({}).p50 is None and percentiles({}).count == 0


@pytest.mark.parametrize(("seconds", "key"), [
    (0.1234, "130"), (0.0011, "1.1"), (0.01, "10"), (0.0099, "9.9"), (2.0, "2000"),
    (0.000_123, "0.13"), (0.0, "0.001"), (12.3, "13000")])
def test_buckets_round_up_to_two_significant_digits(seconds: float, key: str) -> None:
    from chaos.latency import bucket
    assert bucket(seconds) == key


def run_standalone(url: str, *extra: str) -> subprocess.Popen[str]:
    """The prober as a pod would run it: without site-packages (-S), so stdlib only."""
    return subprocess.Popen(
        [sys.executable, "-S", "-m", "chaos.observe.prober", url, "--rate", "20",
         "--timeout", "0.5", *extra], cwd=REPO, stdout=subprocess.PIPE, text=True)


def lines_of(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def test_the_standalone_prober_prints_json_lines(url: str) -> None:
    process = run_standalone(url, "--duration", "1.5")
    out, _ = process.communicate(timeout=20)
    lines = lines_of(out)
    assert process.returncode == 0
    assert lines[0]["event"] == "started" and lines[0]["rate"] == 20 and lines[0]["wall"] > 0
    windows = [ProbeWindow.from_dict(line) for line in lines if line["event"] == "window"]
    assert windows and windows[0].requests == 20 and windows[0].ok == 20
    assert lines[-1]["event"] == "stopped" and lines[-1]["reason"] == "duration"
    assert lines[-1]["requests"] == sum(w.requests for w in windows) >= 30


def test_the_standalone_prober_stops_cleanly_on_sigterm(url: str) -> None:
    process = run_standalone(url)
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:  # its first line, with a deadline
            selector.register(process.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=10), "no started line"
        first = json.loads(process.stdout.readline())
        assert first["event"] == "started"
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=10)
    finally:
        process.kill()
        process.wait(timeout=5)
    stopped = lines_of(out)[-1]
    assert process.returncode == 0 and stopped["event"] == "stopped"
    assert stopped["reason"] == "SIGTERM"
