"""How fast the local cluster's autoscaling loop turns: the HPA controller's sync period and
metrics-server's resolution. Chosen for drills that end in a minute or two; the environment
variables below set others, e.g. the Kubernetes defaults (15s and 15s) to compare."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from chaos.errors import SetupError

HPA_SYNC_ENV = "CHAOS_DRILL_HPA_SYNC_PERIOD"
RESOLUTION_ENV = "CHAOS_DRILL_METRIC_RESOLUTION"
KUBELET_REQUEST_TIMEOUT = 5
"""metrics-server's `--kubelet-request-timeout`, seconds; the resolution must exceed it."""
MIN_RESOLUTION = 10
"""The lowest `--metric-resolution` metrics-server accepts, seconds."""


@dataclass(frozen=True)
class Tuning:
    """Both settings in whole seconds."""

    hpa_sync_seconds: int = 5
    metric_resolution_seconds: int = 10


CHOSEN = Tuning()
KUBERNETES_DEFAULTS = Tuning(hpa_sync_seconds=15, metric_resolution_seconds=15)
"""kube-controller-manager's default sync period and the resolution metrics-server's own
release manifest (components.yaml) sets."""


def _seconds(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    found = re.fullmatch(r"(\d{1,5})s?", raw)
    if not found or int(found.group(1)) < 1:
        raise SetupError(f"{name}={raw!r} is not a duration: give whole seconds, e.g. {name}=15s")
    return int(found.group(1))


def current() -> Tuning:
    """The settings for the next `cluster up`: the chosen ones unless the environment says."""
    tuning = Tuning(_seconds(HPA_SYNC_ENV, CHOSEN.hpa_sync_seconds),
                    _seconds(RESOLUTION_ENV, CHOSEN.metric_resolution_seconds))
    if tuning.metric_resolution_seconds < MIN_RESOLUTION:
        raise SetupError(f"{RESOLUTION_ENV}={tuning.metric_resolution_seconds}s is below "
                         f"metrics-server's floor: set it to {MIN_RESOLUTION}s or more")
    return tuning


def environment(tuning: Tuning) -> dict[str, str]:
    """The variables that make `current()` return TUNING."""
    return {HPA_SYNC_ENV: f"{tuning.hpa_sync_seconds}s",
            RESOLUTION_ENV: f"{tuning.metric_resolution_seconds}s"}
