"""What the open-loop prober reports per scheduled second (ProbeWindow), and the tally that
builds windows and outages from slot outcomes taken in slot order. Stdlib only."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chaos import latency as histogram

OK, HTTP_ERROR, CONNECTION_ERROR, TIMEOUT, UNSENT = (
    "ok", "http_error", "connection_error", "timeout", "unsent")
KINDS = (OK, HTTP_ERROR, CONNECTION_ERROR, TIMEOUT, UNSENT)
"""A slot's outcome: answered below 500; answered 500 or more; refused, reset or garbled;
no answer within the timeout; not sent, as every worker was busy (client overload)."""


@dataclass(frozen=True)
class ProbeWindow:
    """The slots scheduled in one second of probing (or less, at the end)."""

    seconds: float
    """The window's length: 1, less for the last one."""
    requests: int
    """Slots scheduled in the window, each with one outcome."""
    failures: int
    longest_outage_seconds: float
    """The running maximum since the prober started, counting an outage still under way."""
    start_seconds: float = 0.0
    """When the window starts, in seconds after the prober's slot 0."""
    ok: int = 0
    http_errors: int = 0
    connection_errors: int = 0
    timeouts: int = 0
    unsent: int = 0
    latency: Mapping[str, int] = field(default_factory=dict, hash=False)
    """Histogram of the sent slots' latencies from their scheduled time (chaos.latency)."""
    latency_max_seconds: float | None = None
    failed_at: tuple[tuple[float, str], ...] = ()
    """Each failed slot: (its scheduled time in seconds after slot 0, its outcome kind)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values; from_dict reads them back."""
        return {"seconds": self.seconds, "requests": self.requests, "failures": self.failures,
                "longest_outage_seconds": self.longest_outage_seconds,
                "start_seconds": self.start_seconds, "ok": self.ok,
                "http_errors": self.http_errors, "connection_errors": self.connection_errors,
                "timeouts": self.timeouts, "unsent": self.unsent,
                "latency": dict(self.latency), "latency_max_seconds": self.latency_max_seconds,
                "failed_at": [[at, kind] for at, kind in self.failed_at]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProbeWindow:
        """The window to_dict gave; unknown keys are ignored, missing new ones default."""
        top = data.get("latency_max_seconds")
        return cls(
            seconds=float(data.get("seconds", 0.0)), requests=int(data.get("requests", 0)),
            failures=int(data.get("failures", 0)),
            longest_outage_seconds=float(data.get("longest_outage_seconds", 0.0)),
            start_seconds=float(data.get("start_seconds", 0.0)), ok=int(data.get("ok", 0)),
            http_errors=int(data.get("http_errors", 0)),
            connection_errors=int(data.get("connection_errors", 0)),
            timeouts=int(data.get("timeouts", 0)), unsent=int(data.get("unsent", 0)),
            latency={str(k): int(v) for k, v in dict(data.get("latency") or {}).items()},
            latency_max_seconds=None if top is None else float(top),
            failed_at=tuple((float(at), str(kind)) for at, kind in data.get("failed_at") or ()))


def second_of(slot: int, rate: float) -> int:
    """The second (after slot 0) in which SLOT is scheduled."""
    return math.floor(slot / rate + 1e-9)


class WindowTally:
    """Takes every slot's outcome in slot order (not thread-safe: the prober holds its lock)
    and returns a ProbeWindow when a second's last slot is in; outages are runs of failed slots,
    each (last failed slot's time - first's) + interval long."""

    def __init__(self, rate: float) -> None:
        self.rate, self.interval = rate, 1.0 / rate
        self.longest_outage = 0.0
        self._outage_since: float | None = None
        self._second: int | None = None
        self._last_at = 0.0
        self._counts = dict.fromkeys(KINDS, 0)
        self._latency: histogram.Histogram = {}
        self._max: float | None = None
        self._failed: list[tuple[float, str]] = []

    def add(self, slot: int, kind: str, latency: float | None) -> ProbeWindow | None:
        """Counts SLOT's outcome (latency None when unsent); the window, once it is complete."""
        at = slot / self.rate
        self._second, self._last_at = second_of(slot, self.rate), at
        self._counts[kind] += 1
        if latency is not None:
            histogram.record(self._latency, latency)
            self._max = latency if self._max is None else max(self._max, latency)
        if kind == OK:
            self._outage_since = None
        else:
            self._failed.append((round(at, 3), kind))
            if self._outage_since is None:
                self._outage_since = at
            self.longest_outage = max(self.longest_outage,
                                      at - self._outage_since + self.interval)
        return self.flush(full=True) if second_of(slot + 1, self.rate) != self._second else None

    def flush(self, full: bool = False) -> ProbeWindow | None:
        """The window under way, complete or not (None when it has no slot yet)."""
        if self._second is None:
            return None
        start, counts = float(self._second), self._counts
        seconds = 1.0 if full else round(min(1.0, self._last_at + self.interval - start), 3)
        requests = sum(counts.values())
        window = ProbeWindow(
            seconds, requests, requests - counts[OK], round(self.longest_outage, 3),
            start_seconds=start, ok=counts[OK], http_errors=counts[HTTP_ERROR],
            connection_errors=counts[CONNECTION_ERROR], timeouts=counts[TIMEOUT],
            unsent=counts[UNSENT], latency=self._latency,
            latency_max_seconds=None if self._max is None else round(self._max, 6),
            failed_at=tuple(self._failed))
        self._second, self._counts, self._latency = None, dict.fromkeys(KINDS, 0), {}
        self._max, self._failed = None, []
        return window
