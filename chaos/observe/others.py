"""What others break: with record_others the Observer opens an incident for each disruption it
did not cause (chaos.observe.disruptions), follows it with the same tracker and closes it once
Ready; a pod its controller removed to scale down is journaled as scaled_down instead."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from chaos.cluster.base import Progress
from chaos.cluster.kube import Workload, desired_replicas
from chaos.drill.fault_types import Follow, fault_type
from chaos.drill.timeline import Incident
from chaos.observe.disruptions import (
    Disruption,
    controller_of,
    injected_moment,
    node_disruption,
    node_not_ready,
    pod_disruptions,
    remaining_replicas,
    scaled_down,
)
from chaos.observe.sinks import Gauges, Record
from chaos.observe.tracker import Tracker


class RecordsOthers:
    """The Observer's part that records disruptions it did not cause; the Observer provides
    the state below and calls these from its watch callbacks, holding its lock."""

    api: Any
    workload: Workload
    journal: Record
    metrics: Gauges | None
    tracker: Tracker
    changed: threading.Condition
    announce: Progress | None
    observed: dict[str, Incident]
    observed_count: int
    _relisted: set[str]
    _nodes: dict[str, dict[str, Any]]

    def follow(self, incident: Incident, how: Follow, container: str | None = None,
               replicas: int = 0) -> None:
        raise NotImplementedError

    def close(self, incident: Incident) -> None:
        raise NotImplementedError

    def _node_disruptions(self, node: dict[str, Any], arrived: float) -> None:
        """An incident for each pod on NODE when it stops being Ready."""
        name = node.get("metadata", {}).get("name", "")
        if node_not_ready(self._nodes.get(name), node):
            for pod in list(self.tracker.pods.values()):
                on_it = pod.get("spec", {}).get("nodeName") == name
                if on_it and not pod["metadata"].get("deletionTimestamp"):
                    self._open_observed(node_disruption(node, pod), arrived)
        self._nodes[name] = node

    def _pod_disruptions(self, kind: str, pod: dict[str, Any], arrived: float) -> None:
        """Opens an incident for each disruption the event shows, before the tracker sees it
        (a restart's baseline is the pod as it was); pods a relist no longer has went unseen."""
        known = self.tracker.pods
        pairs: list[tuple[dict[str, Any] | None, dict[str, Any]]]
        if kind == "SYNCED":
            gone = set(known) - set(pod.get("uids", []))
            pairs = [(known[uid], known[uid]) for uid in gone]
            new, self._relisted = self._relisted, set()
            kind = "DELETED"
        else:
            uid = pod.get("metadata", {}).get("uid", "")
            if kind == "LISTED" and uid not in known:
                self._relisted.add(uid)
            gone, new = set(), self._relisted
            pairs = [(known.get(uid), pod)]
        # a replacement that came while the watch was away did not stay: it is new
        stayed = [p for uid, p in known.items() if uid not in gone and uid not in new]
        for before, after in pairs:
            for found in pod_disruptions(kind, before, after):
                if found.fault == "pod_delete" and self._scaled_down(after, stayed, arrived):
                    continue
                self._open_observed(found, arrived)

    def _scaled_down(self, pod: dict[str, Any], stayed: list[dict[str, Any]],
                     arrived: float) -> bool:
        """POD went because its controller wants fewer pods (see disruptions.scaled_down): then
        it is journaled as scaled_down, not an incident. The controller is read now, after the
        deletion, so its replicas are already the lowered ones."""
        owner = controller_of(pod)
        if owner is None:
            return False
        meta = pod.get("metadata", {})
        desired = desired_replicas(self.api, meta.get("namespace") or self.workload.namespace,
                                   owner.kind, owner.name)
        remaining = remaining_replicas(pod, stayed)
        if not scaled_down(desired, remaining):
            return False
        self.journal.write("scaled_down", mono=arrived, pod=meta.get("name", ""),
                           uid=meta.get("uid", ""), owner=f"{owner.kind}/{owner.name}",
                           replicas=desired, remaining=remaining)
        if self.announce:
            self.announce(f"{meta.get('name', '')} removed by a scale-down of {owner.kind}/"
                          f"{owner.name} to {desired}: not an incident")
        return True

    def _open_observed(self, found: Disruption, arrived: float) -> None:
        """An incident for FOUND, unless one for its pod is open already (its node went
        NotReady, so now it is deleted: the same incident)."""
        if any(i.target_uid == found.pod_uid for i in self.observed.values()):
            return
        self.observed_count += 1
        incident = Incident(f"o{self.observed_count}", 0, found.fault, self.workload.namespace,
                            self.workload.name, found.pod, found.pod_uid, found.node,
                            origin="observed", injected_from=found.injected_from)
        mono, uncertainty = injected_moment(found, arrived, datetime.now(UTC), time.monotonic())
        incident.timing_uncertainty_seconds = uncertainty
        incident.mark("injected", mono, found.injected_at)
        self.journal.write("fault_injected", mono=mono, incident=incident.id, round=0,
                           fault=incident.fault, namespace=incident.namespace,
                           workload=incident.workload, target_pod=incident.target_pod,
                           target_uid=incident.target_uid, node=incident.node,
                           api_time=found.injected_at, origin="observed",
                           injected_from=found.injected_from, detail=found.detail,
                           timing_uncertainty_seconds=uncertainty)
        self.observed[incident.id] = incident
        self.follow(incident, fault_type(found.fault).follow, found.container)
        if self.metrics:
            self.metrics.fault_injected(incident.fault)
        if self.announce:
            self.announce(f"{incident.id}: observed {found.fault} of {found.pod}"
                          + (f" on {found.node}" if found.node else "") + f": {found.detail}")

    def close_observed(self, incident: Incident, reason: str = "") -> None:
        """Stops following an observed incident and journals its end (REASON if not Ready)."""
        with self.changed:
            if self.observed.pop(incident.id, None) is None:
                return
            self.close(incident)
            extra: dict[str, Any] = {"reason": reason} if reason else {}
            if incident.exit_reason:
                extra["exit_reason"] = incident.exit_reason
            self.journal.write("incident_closed", incident=incident.id,
                               recovered=incident.recovered,
                               restart_count=incident.restart_count, **extra)
            if self.metrics:
                self.metrics.incident_closed(incident.fault, incident.recovery_seconds,
                                             incident.phase_durations())
            if self.announce:
                self.announce(_outcome(incident, reason))


def _outcome(incident: Incident, reason: str) -> str:
    """One line on how an observed incident ended, with its phases and timing bound."""
    if not incident.recovered:
        return f"{incident.id}: NOT recovered ({reason or 'no reason'})"
    phases = ", ".join(f"{p} +{t:.3f}s" for p, t in incident.offsets().items() if p != "injected")
    late = incident.timing_uncertainty_seconds
    bound = f" (or up to {late:.3f}s less: counted from a whole-second API stamp)" if late else ""
    return f"{incident.id}: recovered in {incident.recovery_seconds:.3f}s{bound} ({phases})"
