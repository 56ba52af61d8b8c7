"""The HTTP availability prober, open-loop (like wrk2 or vegeta at a constant rate): slot k is
sent at start + k/rate whatever earlier requests are doing, from a bounded pool of threads, so a
hung server costs every slot it holds; each slot's outcome and each second's ProbeWindow are
reported. Stdlib only: `python -m chaos.observe.prober URL` runs it alone, printing JSON lines."""

from __future__ import annotations

import argparse
import http.client
import json
import math
import queue
import signal
import sys
import threading
import time
import traceback
import urllib.parse
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from chaos.observe.probe_window import (
    CONNECTION_ERROR,
    HTTP_ERROR,
    OK,
    TIMEOUT,
    UNSENT,
    ProbeWindow,
    WindowTally,
)

__all__ = ["Prober", "ProbeWindow", "pool_size", "main"]

OnRequest = Callable[[bool, float], None]
OnWindow = Callable[[ProbeWindow], None]


def pool_size(rate: float, timeout: float) -> int:
    """Workers enough for every slot while each request takes up to the timeout."""
    return max(2, math.ceil(rate * timeout) + 2)


class Prober:
    """Probes URL on a schedule of RATE slots a second until stop(). on_request(ok, latency)
    hears of each slot as soon as its outcome is known, from several threads at once (listeners
    record and return); on_window(window) hears of each second, in time order, from one thread.
    Latencies count from the slot's scheduled time, so queueing delay counts too."""

    def __init__(self, url: str, rate_per_second: float, timeout_seconds: float,
                 on_request: OnRequest, on_window: OnWindow, workers: int | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.https else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.rate, self.interval = rate_per_second, 1.0 / rate_per_second
        self.timeout = timeout_seconds
        self.workers = workers or pool_size(rate_per_second, timeout_seconds)
        self.on_request, self.on_window = on_request, on_window
        self.start_mono = 0.0
        """The monotonic time of slot 0."""
        self.stop_mono = math.inf
        """When stop() was called: no slot is scheduled after it."""
        self.scheduled = self.requests = self.failures = 0
        """Slots scheduled so far; of them, with an outcome; of those, failed."""
        self.callback_error: BaseException | None = None
        """The last exception a callback raised (printed to stderr; probing goes on)."""
        self._tally = WindowTally(rate_per_second)
        self._lock = threading.Condition()
        self._sent: dict[int, float] = {}  # slot -> scheduled time, awaiting its answer
        self._done: dict[int, tuple[str, float | None]] = {}  # outcomes after the cursor
        self._cursor = 0  # every slot before it is in the tally
        self._ready: deque[ProbeWindow] = deque()
        self._finished = False
        self._queue: queue.SimpleQueue[tuple[int, float] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._scheduler = threading.Thread(target=self._schedule, name="prober", daemon=True)
        self._emitter = threading.Thread(target=self._emit, name="prober-windows", daemon=True)

    @property
    def longest_outage(self) -> float:
        """The longest run of failed slots so far, in seconds."""
        with self._lock:
            return self._tally.longest_outage

    def start(self) -> Prober:
        self.start_mono = time.monotonic()
        self._scheduler.start()
        self._emitter.start()
        return self

    def stop(self) -> None:
        """Stops scheduling, waits (up to timeout + 2 s) for the requests in flight, counting
        those still out as timeouts, then reports the remaining windows, a partial one too."""
        if not self._scheduler.is_alive() and not self._emitter.is_alive():
            return
        self.stop_mono = time.monotonic()
        self._stop.set()
        self._scheduler.join(timeout=2.0)
        with self._lock:
            for _ in self._threads:
                self._queue.put(None)
            self._lock.wait_for(lambda: not self._sent, timeout=self.timeout + 2.0)
            late = list(self._sent.items())
        for slot, due in late:
            self._finish(slot, due, TIMEOUT, time.monotonic() - due, sent=True)
        with self._lock:
            last = self._tally.flush()
            if last is not None:
                self._ready.append(last)
            self._finished = True
            self._lock.notify_all()
        self._emitter.join(timeout=5.0)

    def probe_once(self, due: float | None = None) -> tuple[str, float]:
        """One GET: its outcome kind and its latency from DUE (default now)."""
        began = time.monotonic() if due is None else due
        kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        connection = kind(self.host, self.port, timeout=self.timeout)
        try:
            connection.request("GET", self.path, headers={"Connection": "close"})
            outcome = OK if connection.getresponse().status < 500 else HTTP_ERROR
        except TimeoutError:  # socket.timeout too
            outcome = TIMEOUT
        except (OSError, http.client.HTTPException):  # refused, reset, or not HTTP
            outcome = CONNECTION_ERROR
        finally:
            connection.close()
        return outcome, time.monotonic() - began

    def _schedule(self) -> None:
        """Sends each slot at its time; after stop(), only those due before it (a late
        scheduler catches up rather than skipping any)."""
        slot = 0
        while True:
            due = self.start_mono + slot / self.rate
            if self._stop.wait(max(0.0, due - time.monotonic())) and due > self.stop_mono:
                return
            self._dispatch(slot, due)
            slot += 1

    def _dispatch(self, slot: int, due: float) -> None:
        """Hands SLOT to a free worker (starting one if none is idle) or counts it unsent."""
        with self._lock:
            if self._finished:
                return
            self.scheduled = slot + 1
            free = len(self._sent) < self.workers
            if free:
                self._sent[slot] = due
                self._queue.put((slot, due))
                if len(self._sent) > len(self._threads):
                    worker = threading.Thread(target=self._work, daemon=True,
                                              name=f"prober-{len(self._threads)}")
                    self._threads.append(worker)
                    worker.start()
        if not free:
            self._finish(slot, due, UNSENT, None, sent=False)

    def _work(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=1.0)
            except queue.Empty:
                continue
            if item is None:
                return
            slot, due = item
            try:
                kind, latency = self.probe_once(due)
            except Exception:  # never lose a slot
                kind, latency = CONNECTION_ERROR, time.monotonic() - due
            self._finish(slot, due, kind, latency, sent=True)

    def _finish(self, slot: int, due: float, kind: str, latency: float | None,
                sent: bool) -> None:
        """Records SLOT's outcome once (a late answer after stop() gave up is dropped), moves
        the cursor over the outcomes now contiguous, then tells on_request."""
        with self._lock:
            if sent and self._sent.pop(slot, None) is None:
                return
            self._done[slot] = (kind, latency)
            self.requests += 1
            self.failures += kind != OK
            while self._cursor in self._done:
                window = self._tally.add(self._cursor, *self._done.pop(self._cursor))
                if window is not None:
                    self._ready.append(window)
                self._cursor += 1
            self._lock.notify_all()
        self._call(self.on_request, kind == OK, 0.0 if latency is None else latency)

    def _emit(self) -> None:
        """Tells on_window of each window, in time order, until stop() has flushed the last."""
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._ready or self._finished, timeout=1.0)
                windows, finished = list(self._ready), self._finished
                self._ready.clear()
            for window in windows:
                self._call(self.on_window, window)
            if finished:
                return

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        """A callback that raises must not stop a worker or the windows."""
        try:
            callback(*args)
        except Exception as error:
            self.callback_error = error
            traceback.print_exc()


def main(argv: Sequence[str] | None = None) -> int:
    """Probes until --duration passes or SIGTERM/SIGINT, printing one JSON object a line:
    started, then each window (event "window" plus ProbeWindow.to_dict()), then stopped."""
    parser = argparse.ArgumentParser(prog="python -m chaos.observe.prober",
                                     description="Open-loop HTTP availability prober.")
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=20.0, help="slots a second (20)")
    parser.add_argument("--timeout", type=float, default=1.0, help="per request, s (1)")
    parser.add_argument("--duration", type=float, default=None, help="s (until signalled)")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.timeout <= 0:
        parser.error("--rate and --timeout must be positive")
    printing, stopping = threading.Lock(), threading.Event()
    why = ["duration"]

    def say(**line: Any) -> None:
        with printing:
            try:
                print(json.dumps(line, separators=(",", ":")), flush=True)
            except (BrokenPipeError, ValueError):  # nobody reads any more
                pass

    def on_signal(number: int, _frame: object) -> None:
        why[0] = signal.Signals(number).name
        stopping.set()

    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, on_signal)
    prober = Prober(args.url, args.rate, args.timeout, lambda ok, latency: None,
                    lambda window: say(event="window", **window.to_dict()))
    prober.start()
    slot_zero = time.time() - (time.monotonic() - prober.start_mono)
    say(event="started", rate=args.rate, timeout=args.timeout, url=args.url,
        workers=prober.workers, wall=slot_zero)
    deadline = None if args.duration is None else time.monotonic() + args.duration
    while not stopping.is_set():
        left = 1.0 if deadline is None else deadline - time.monotonic()
        if left <= 0 or stopping.wait(min(left, 1.0)):
            break
    prober.stop()
    say(event="stopped", reason=why[0], wall=time.time(), requests=prober.requests,
        failures=prober.failures, longest_outage_seconds=round(prober.longest_outage, 3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
