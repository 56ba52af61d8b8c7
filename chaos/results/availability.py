"""What the HTTP prober saw over a whole run, summed from the journal's probe_window records:
requests, failures by kind, the longest outage and latency percentiles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chaos import latency
from chaos.results.journal import JournalRecord


@dataclass(frozen=True)
class Availability:
    """What the HTTP prober saw over the whole run."""

    requests: int
    failures: int
    ratio: float | None
    longest_outage_seconds: float
    http_errors: int = 0
    connection_errors: int = 0
    timeouts: int = 0
    unsent: int = 0
    """Slots not sent as every prober worker was busy: failures of the client's making."""
    latency_p50_seconds: float | None = None
    """Latency percentiles of the sent requests, from their scheduled time (so queueing
    counts); nearest rank over two-significant-digit buckets; None without any."""
    latency_p90_seconds: float | None = None
    latency_p99_seconds: float | None = None
    latency_max_seconds: float | None = None


def availability_of(records: Sequence[JournalRecord]) -> Availability:
    windows = [r for r in records if r.event == "probe_window"]
    requests = sum(int(r.get("requests", 0)) for r in windows)
    failures = sum(int(r.get("failures", 0)) for r in windows)
    outage = max((float(r.get("longest_outage_seconds", 0.0)) for r in windows), default=0.0)
    ratio = (requests - failures) / requests if requests else None
    maxima = [float(r.get("latency_max_seconds")) for r in windows
              if r.get("latency_max_seconds") is not None]
    stats = latency.percentiles(latency.merge(r.get("latency") or {} for r in windows),
                                max(maxima, default=None))

    def total(kind: str) -> int:
        return sum(int(r.get(kind, 0)) for r in windows)

    def rounded(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds, 6)

    return Availability(requests, failures, ratio, outage, total("http_errors"),
                        total("connection_errors"), total("timeouts"), total("unsent"),
                        rounded(stats.p50), rounded(stats.p90), rounded(stats.p99),
                        rounded(stats.max))
