"""The in-cluster operator's settings, read from its environment (the Deployment sets them):
the cap on how long a drill may keep a node cordoned, how long a finished drill's metric series
stay on the exporter, and how many attempts a drill gets."""

from __future__ import annotations

import os
from dataclasses import dataclass

from chaos.drill.node_guard import DEFAULT_MAX_CORDON_SECONDS, NodePolicy
from chaos.errors import UsageError

MAX_CORDON_ENV = "CHAOS_DRILL_MAX_CORDON_SECONDS"
METRICS_LINGER_ENV = "CHAOS_DRILL_METRICS_LINGER_SECONDS"
DEFAULT_METRICS_LINGER_SECONDS = 300.0
"""A finished drill's series stay this long, so every Prometheus scrapes their last values."""
MAX_ATTEMPTS = 3
"""Attempts of one drill, counting those its operator stopped (a killed pod, a peer taking
over) before it could finish; then it is Failed, never left Running."""


@dataclass(frozen=True)
class Settings:
    max_cordon_seconds: float = DEFAULT_MAX_CORDON_SECONDS
    metrics_linger_seconds: float = DEFAULT_METRICS_LINGER_SECONDS

    @classmethod
    def from_env(cls) -> Settings:
        return cls(_seconds(MAX_CORDON_ENV, DEFAULT_MAX_CORDON_SECONDS),
                   _seconds(METRICS_LINGER_ENV, DEFAULT_METRICS_LINGER_SECONDS))

    def node_policy(self) -> NodePolicy:
        """Node faults only on nodes labelled drillable, never the control plane, capped."""
        return NodePolicy(require_drillable=True, max_cordon_seconds=self.max_cordon_seconds)


def _seconds(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise UsageError(f"{name}={text!r} is not a number of seconds: set it to e.g. "
                         f"{default:g}, or unset it")
    return value
