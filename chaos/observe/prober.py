"""The HTTP availability prober: GETs a URL at a fixed rate from its own thread and reports each
request (ok, latency) and, once a second, a window of requests, failures and the longest outage."""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProbeWindow:
    """One second (or less, at the end) of probing."""

    seconds: float
    requests: int
    failures: int
    longest_outage_seconds: float


OnRequest = Callable[[bool, float], None]
OnWindow = Callable[[ProbeWindow], None]


class Prober:
    """Probes URL RATE times a second until stop(); an outage runs from the first failed
    request to the next successful one."""

    def __init__(self, url: str, rate_per_second: float, timeout_seconds: float,
                 on_request: OnRequest, on_window: OnWindow) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path or "/"
        self.interval = 1.0 / rate_per_second
        self.timeout = timeout_seconds
        self.on_request, self.on_window = on_request, on_window
        self.requests = self.failures = 0
        self.longest_outage = 0.0
        self._outage_since: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prober", daemon=True)

    def start(self) -> Prober:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 2)

    def probe_once(self) -> tuple[bool, float]:
        began = time.monotonic()
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.request("GET", self.path, headers={"Connection": "close"})
            ok = connection.getresponse().status < 500
        except OSError:
            ok = False
        finally:
            connection.close()
        return ok, time.monotonic() - began

    def _record(self, ok: bool, at: float) -> None:
        self.requests += 1
        if ok:
            self._outage_since = None
            return
        self.failures += 1
        if self._outage_since is None:
            self._outage_since = at
        self.longest_outage = max(self.longest_outage, at - self._outage_since + self.interval)

    def _run(self) -> None:
        next_at = window_start = time.monotonic()
        window_requests = window_failures = 0
        while not self._stop.is_set():
            ok, latency = self.probe_once()
            self._record(ok, next_at)
            self.on_request(ok, latency)
            window_requests += 1
            window_failures += 0 if ok else 1
            now = time.monotonic()
            if now - window_start >= 1.0:
                self._emit(now - window_start, window_requests, window_failures)
                window_start, window_requests, window_failures = now, 0, 0
            next_at = max(next_at + self.interval, now)
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        if window_requests:
            self._emit(time.monotonic() - window_start, window_requests, window_failures)

    def _emit(self, seconds: float, requests: int, failures: int) -> None:
        self.on_window(ProbeWindow(round(seconds, 3), requests, failures,
                                   round(self.longest_outage, 3)))
