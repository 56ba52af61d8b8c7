"""Where observers report what they see, as protocols: a Record (the run's journal,
chaos.results.journal.Journal) and Gauges (the drill's exporter,
chaos.monitoring.metrics.DrillMetrics). The runner passes the real ones in; observers never import
the layers above them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Record(Protocol):
    def write(self, event: str, *, mono: float | None = None, **fields: Any) -> object:
        """Append one event; mono defaults to now (pass it when the event was seen earlier)."""
        ...


class Gauges(Protocol):
    def fault_injected(self, fault: str) -> None: ...

    def incident_closed(self, fault: str, recovery_seconds: float | None,
                        phase_durations: Mapping[str, float]) -> None: ...

    def traffic(self, fault: str, offsets: Mapping[str, float]) -> None: ...

    def replicas(self, ready: int, desired: int) -> None: ...

    def autoscaler(self, desired: int, current: int) -> None: ...

    def container_restarts(self, n: int) -> None: ...

    def probe(self, ok: bool) -> None: ...

    def availability(self, ratio: float) -> None: ...
