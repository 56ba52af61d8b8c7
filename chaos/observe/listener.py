"""What the Observer tells its listeners (the live views) as it sees things happen; a Protocol,
so the observer knows no view. Calls come from watch and prober threads, pod, node and phase
calls with the observer's lock held: a listener records and returns, it never waits."""

from __future__ import annotations

from typing import Any, Protocol

from chaos.drill.timeline import Incident
from chaos.observe.prober import ProbeWindow


class ObserverListener(Protocol):
    def pod_changed(self, kind: str, pod: dict[str, Any], arrived: float) -> None:
        """A pod watch event (ADDED, MODIFIED, DELETED, LISTED, SYNCED), after the tracker."""

    def node_changed(self, kind: str, node: dict[str, Any], arrived: float) -> None:
        """A node watch event."""

    def workload_changed(self, ready: int, desired: int) -> None:
        """The workload's Ready and desired replicas changed."""

    def rotation_changed(self, serving: frozenset[str]) -> None:
        """The pods (UIDs) the probed Service sends traffic to changed."""

    def incident_opened(self, incident: Incident) -> None:
        """A fault was injected and its incident is now followed."""

    def phase_reached(self, incident: Incident, phase: str, mono: float, pod_uid: str) -> None:
        """An incident reached PHASE; POD_UID names the replacement pod, when there is one."""

    def incident_closed(self, incident: Incident) -> None:
        """The incident is no longer followed (recovered, timed out or stopped)."""

    def k8s_event(self, reason: str, about: str, message: str, arrived: float) -> None:
        """A Kubernetes Event in the namespace; ABOUT is its object as 'Kind/name'."""

    def probed(self, ok: bool, at: float) -> None:
        """One probe slot's outcome is known; called from several prober threads at once."""

    def probe_window(self, window: ProbeWindow) -> None:
        """A scheduled second of probing, with the longest outage so far; in time order."""
