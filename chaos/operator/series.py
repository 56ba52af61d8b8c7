"""The metric series of the drills an operator runs: a drill's series (its namespace and
workload labels) leave the exporter when its ChaosDrill is deleted, or a while after it ends
(so Prometheus scrapes the last values), unless another drill of that workload still uses them."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry

from chaos.drill.spec import Drill
from chaos.monitoring import drill_metrics
from chaos.monitoring.drill_metrics import DrillMetrics


class Series:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._users: dict[tuple[str, str], set[str]] = {}  # (namespace, workload): drill UIDs
        self._metrics: dict[tuple[str, str], DrillMetrics] = {}
        self._timers: dict[str, threading.Timer] = {}

    def take(self, uid: str, drill: Drill) -> DrillMetrics:
        """The metrics of DRILL (object UID), its series created at 0 if they are not there."""
        key = (drill.namespace, drill.target.name or "selector")
        with self._lock:
            timer = self._timers.pop(uid, None)
            if timer is not None:
                timer.cancel()
            self._users.setdefault(key, set()).add(uid)
            metrics = self._metrics[key] = drill_metrics.for_drill(self.registry, drill)
            return metrics

    def release(self, uid: str, after: float = 0.0) -> None:
        """Drops UID's claim AFTER seconds from now (at once with 0); the series go when no
        drill claims them any more."""
        with self._lock:
            timer = self._timers.pop(uid, None)
            if timer is not None:
                timer.cancel()
            if after > 0:
                timer = self._timers[uid] = threading.Timer(after, self.release, (uid,))
                timer.daemon = True
                timer.start()
                return
            for key, users in list(self._users.items()):
                users.discard(uid)
                if not users:
                    del self._users[key]
                    self._metrics.pop(key).remove()
