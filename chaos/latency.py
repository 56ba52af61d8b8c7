"""Compact latency histograms: counts per bucket, a bucket being an upper bound in milliseconds
rounded up to two significant digits (at most 10 % above the value); stdlib only."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Histogram = dict[str, int]
"""Bucket upper bound in ms, as text (JSON keys are text), to count."""

_SMALLEST_MS = 0.001


@dataclass(frozen=True)
class Percentiles:
    """Nearest-rank percentiles in seconds, None when nothing was measured."""

    count: int
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None


def bucket(seconds: float) -> str:
    """The bucket of a latency: its value in ms rounded up to two significant digits."""
    ms = max(seconds * 1000.0, _SMALLEST_MS)
    exponent = math.floor(math.log10(ms))
    step = 10.0 ** (exponent - 1)
    bound = math.ceil(ms / step - 1e-9) * step
    return f"{round(bound, max(0, 1 - exponent)):g}"


def record(histogram: Histogram, seconds: float) -> None:
    """Counts one latency in HISTOGRAM."""
    key = bucket(seconds)
    histogram[key] = histogram.get(key, 0) + 1


def merge(histograms: Iterable[Mapping[str, int]]) -> Histogram:
    """One histogram counting everything the given ones count."""
    merged: Histogram = {}
    for histogram in histograms:
        for key, count in histogram.items():
            merged[key] = merged.get(key, 0) + int(count)
    return merged


def percentiles(histogram: Mapping[str, int], exact_max: float | None = None) -> Percentiles:
    """p50/p90/p99 by nearest rank over the buckets (each a bucket's upper bound, never above
    EXACT_MAX when given) and max: EXACT_MAX, else the highest bucket's bound."""
    buckets = sorted((float(key) / 1000.0, count) for key, count in histogram.items() if count)
    total = sum(count for _, count in buckets)
    if not total:
        return Percentiles(0, None, None, None, exact_max)
    top = buckets[-1][0] if exact_max is None else exact_max

    def rank(quantile: float) -> float:
        wanted, seen = max(1, math.ceil(quantile * total)), 0
        for bound, count in buckets:
            seen += count
            if seen >= wanted:
                return min(bound, top)
        return top

    return Percentiles(total, rank(0.50), rank(0.90), rank(0.99), top)
