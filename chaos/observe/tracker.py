"""Turns pod and node watch events into incident timelines. Pure logic over raw event dicts:
no client, no clock of its own, so recorded streams replay through it in tests and benchmarks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chaos.drill.fault_types import Follow
from chaos.drill.timeline import Incident
from chaos.observe.endpoints import in_rotation, listed, written_at

OnPhase = Callable[[Incident, str, float, datetime | None], None]


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _condition(pod: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in pod.get("status", {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return dict(condition)
    return None


def _containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(pod.get("status", {}).get("containerStatuses") or [])


def _running_since(pod: Mapping[str, Any]) -> datetime | None | bool:
    """False unless every container runs; else the latest container start time (or None)."""
    statuses = _containers(pod)
    if not statuses or not all("running" in (s.get("state") or {}) for s in statuses):
        return False
    starts = [_time(s["state"]["running"].get("startedAt")) for s in statuses]
    known = [s for s in starts if s is not None]
    return max(known) if known else None


def restart_count(pod: Mapping[str, Any], container: str | None = None) -> int:
    return sum(int(s.get("restartCount", 0)) for s in _containers(pod)
               if container is None or s.get("name") == container)


@dataclass
class _Open:
    """An incident still being followed, and what it follows."""

    incident: Incident
    follow: Follow
    baseline_restarts: int = 0
    container: str | None = None
    running_ids: frozenset[str] = frozenset()
    """For a restart: the IDs of the containers running when it began, whose exit it awaits."""
    replacement: str = ""
    scale_to: int = 0
    scale_from: frozenset[str] = frozenset()


@dataclass
class Tracker:
    """Holds the current pods of one workload and advances every open incident on each event."""

    on_phase: OnPhase
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    open: list[_Open] = field(default_factory=list)
    known: set[str] = field(default_factory=set)
    events: int = 0
    autoscaler: dict[str, Any] = field(default_factory=dict)
    """The workload's HorizontalPodAutoscaler as last seen (load drills only)."""
    service: str = ""
    """The probed Service whose EndpointSlices give the traffic phases; none when empty."""
    slices: dict[str, dict[str, Any]] = field(default_factory=dict)
    """That Service's EndpointSlices as last seen, by UID."""

    # -- incidents ------------------------------------------------------------------------

    def follow(self, incident: Incident, how: Follow, container: str | None = None,
               replicas: int = 0) -> None:
        """Starts following INCIDENT the way its fault type declares (chaos.drill.fault_types)."""
        if how is Follow.RESTART:
            self.follow_restart(incident, container)
        elif how is Follow.SCALE:
            self.follow_scale(incident, replicas)
        elif how is Follow.AUTOSCALE:
            self.follow_autoscale(incident)
        elif how in (Follow.ISOLATION, Follow.DEGRADED):
            self.open.append(_Open(incident, how))
        else:
            self.follow_replacement(incident)
        self._follow_traffic(self.open[-1])

    def _follow_traffic(self, item: _Open) -> None:
        """An incident whose target the Service's slices hold also gets the traffic phases."""
        incident = item.incident
        if self.service and incident.target_uid in listed(self.slices.values()):
            incident.service = self.service
            self._advance_traffic(item, incident.phases.get("injected", 0.0), None)

    def follow_replacement(self, incident: Incident) -> None:
        """The target goes (deleted, evicted, its node down), a new pod replaces it."""
        self.open.append(_Open(incident, Follow.REPLACEMENT))

    def follow_restart(self, incident: Incident, container: str | None = None) -> None:
        """The same pod's container restarts in place."""
        pod = self.pods.get(incident.target_uid, {})
        running = frozenset(s["containerID"] for s in _containers(pod) if s.get("containerID")
                            and container in (None, s.get("name")))
        self.open.append(_Open(incident, Follow.RESTART, restart_count(pod, container),
                               container, running))

    def follow_scale(self, incident: Incident, replicas: int) -> None:
        """The workload reaches REPLICAS Ready pods; phases track the new pods."""
        current = frozenset(uid for uid, pod in self.pods.items() if not _deleting(pod))
        item = _Open(incident, Follow.SCALE, scale_to=replicas, scale_from=current)
        self.open.append(item)
        self._advance_scale(item, incident.phases.get("injected", 0.0))

    def follow_autoscale(self, incident: Incident) -> None:
        """The HPA raises desiredReplicas above the pods there now; phases track the new pods
        until all are Ready, then the way back to as many pods as at injection."""
        current = frozenset(uid for uid, pod in self.pods.items() if not _deleting(pod))
        self.open.append(_Open(incident, Follow.AUTOSCALE, scale_to=len(current),
                               scale_from=current))

    def autoscaler_event(self, kind: str, hpa: dict[str, Any], arrived: float) -> None:
        if kind in ("SYNCED", "DELETED"):
            return
        self.autoscaler = hpa
        for item in list(self.open):
            if item.follow is Follow.AUTOSCALE:
                self._advance_autoscale(item, arrived)

    def close(self, incident: Incident) -> None:
        self.open = [o for o in self.open if o.incident is not incident]

    def replacement_of(self, incident: Incident) -> str:
        """The UID of the pod replacing the open incident's target, once one was seen."""
        return next((o.replacement for o in self.open if o.incident is incident), "")

    def _mark(self, item: _Open, phase: str, mono: float, api: datetime | None) -> None:
        if phase not in item.incident.phases:
            item.incident.mark(phase, mono, api)
            self.on_phase(item.incident, phase, mono, api)

    # -- events ---------------------------------------------------------------------------

    def pod_event(self, kind: str, pod: dict[str, Any], arrived: float) -> None:
        self.events += 1
        if kind == "SYNCED":
            gone = set(self.pods) - set(pod.get("uids", []))
            for uid in gone:
                self.pod_event("DELETED", self.pods[uid], arrived)
            return
        uid = pod.get("metadata", {}).get("uid", "")
        if kind == "DELETED":
            self.pods.pop(uid, None)
        else:
            self.pods[uid] = pod
        for item in list(self.open):
            self._advance(item, kind, uid, pod, arrived)
            self._advance_traffic(item, arrived, None)
        self.known.add(uid)

    def slice_event(self, kind: str, slice_: dict[str, Any], arrived: float) -> None:
        """An EndpointSlice of the probed Service changed: traffic phases may follow."""
        if kind == "SYNCED":
            kept = set(slice_.get("uids", []))
            self.slices = {uid: s for uid, s in self.slices.items() if uid in kept}
        elif kind == "DELETED":
            self.slices.pop(slice_.get("metadata", {}).get("uid", ""), None)
        else:
            self.slices[slice_.get("metadata", {}).get("uid", "")] = slice_
        stamp = written_at(slice_) if kind in ("ADDED", "MODIFIED") else None
        for item in list(self.open):
            self._advance_traffic(item, arrived, stamp)

    def _advance_traffic(self, item: _Open, at: float, stamp: datetime | None) -> None:
        """endpoint_removed once the target is ready in no slice; endpoint_added once its
        replacement (or, after it left, the target itself) is ready in one."""
        incident = item.incident
        if not incident.service:
            return
        serving = in_rotation(self.slices.values())
        if incident.target_uid not in serving:
            self._mark(item, "endpoint_removed", at, stamp)
        if item.follow is Follow.REPLACEMENT:
            back = item.replacement
        else:
            back = incident.target_uid if "endpoint_removed" in incident.phases else ""
        if back and back in serving:
            self._mark(item, "endpoint_added", at, stamp)

    def node_event(self, kind: str, node: dict[str, Any], arrived: float) -> None:
        """A node whose Ready condition is no longer True marks node_not_ready, for incidents
        on it whose fault has that phase (node_stop)."""
        if kind in ("SYNCED", "DELETED") or _condition(node, "Ready") is not None:
            return
        name = node.get("metadata", {}).get("name", "")
        for item in self.open:
            incident = item.incident
            if incident.node == name and "node_not_ready" in incident.expected_phases:
                self._mark(item, "node_not_ready", arrived, None)

    def replay(self, events: Iterable[tuple[str, dict[str, Any], float]]) -> None:
        for kind, pod, arrived in events:
            self.pod_event(kind, pod, arrived)

    def _advance(self, item: _Open, kind: str, uid: str, pod: dict[str, Any], at: float) -> None:
        if item.follow in (Follow.RESTART, Follow.ISOLATION, Follow.DEGRADED):
            if uid != item.incident.target_uid or kind == "DELETED":
                return
            if item.follow is Follow.RESTART:
                self._advance_restart(item, pod, at)
            else:
                self._advance_isolation(item, pod, at)
        elif item.follow is Follow.SCALE:
            self._advance_scale(item, at)
        elif item.follow is Follow.AUTOSCALE:
            self._advance_autoscale(item, at)
        else:
            self._advance_replacement(item, kind, uid, pod, at)

    def _advance_replacement(self, item: _Open, kind: str, uid: str, pod: dict[str, Any],
                             at: float) -> None:
        incident = item.incident
        if uid == incident.target_uid:
            if kind == "DELETED" or _deleting(pod):
                self._mark(item, "target_gone", at, _time(pod["metadata"].get("deletionTimestamp")))
            return
        if not item.replacement:
            # A new pod replaces a target that went before it: with several targets going at
            # once (a stopped node's pods), it must not be taken for one still there. A relist
            # (LISTED) learns of deletions only at its end, so it may claim before.
            if "target_gone" not in incident.phases and kind != "LISTED":
                return
            if uid in self.known or kind == "DELETED" or self._claimed(uid):
                return
            item.replacement = uid
            self._mark(item, "replacement_created", at,
                       _time(pod["metadata"].get("creationTimestamp")))
        if uid == item.replacement and kind != "DELETED":
            self._advance_new_pod(item, pod, at)

    def _claimed(self, uid: str) -> bool:
        return any(o.replacement == uid for o in self.open)

    def _advance_new_pod(self, item: _Open, pod: dict[str, Any], at: float) -> None:
        scheduled = _condition(pod, "PodScheduled")
        if scheduled:
            self._mark(item, "scheduled", at, _time(scheduled.get("lastTransitionTime")))
        started = _running_since(pod)
        if started is not False and "scheduled" in item.incident.phases:
            self._mark(item, "started", at, started if isinstance(started, datetime) else None)
        ready = _condition(pod, "Ready")
        if ready and "started" in item.incident.phases and not _deleting(pod):
            self._mark(item, "ready", at, _time(ready.get("lastTransitionTime")))

    def _advance_restart(self, item: _Open, pod: dict[str, Any], at: float) -> None:
        statuses = [s for s in _containers(pod)
                    if item.container is None or s.get("name") == item.container]
        count = restart_count(pod, item.container)
        item.incident.record_restarts(count)
        item.incident.record_exit(_exit_reason(statuses, item.running_ids))
        restarted = count > item.baseline_restarts
        if restarted or any(not s.get("ready") for s in statuses):
            finished = [_time(((s.get("lastState") or {}).get("terminated") or {})
                              .get("finishedAt")) for s in statuses] if restarted else []
            self._mark(item, "container_exited", at, max((f for f in finished if f), default=None))
        started = _running_since(pod)
        if restarted and started is not False:
            self._mark(item, "restarted", at, started if isinstance(started, datetime) else None)
        ready = _condition(pod, "Ready")
        if ready and "restarted" in item.incident.phases:
            self._mark(item, "ready", at, _time(ready.get("lastTransitionTime")))

    def _advance_isolation(self, item: _Open, pod: dict[str, Any], at: float) -> None:
        """The cut-off pod turns not Ready; Ready again only counts once the fault is lifted."""
        incident = item.incident
        incident.record_restarts(restart_count(pod))
        ready: dict[str, Any] = next((c for c in pod.get("status", {}).get("conditions") or []
                                      if c.get("type") == "Ready"), {})
        stamp = _time(ready.get("lastTransitionTime"))
        if ready.get("status") != "True":
            if "not_ready" in incident.expected_phases:
                self._mark(item, "not_ready", at, stamp)
        elif "lifted" in incident.phases and ("not_ready" in incident.phases
                                              or item.follow is Follow.DEGRADED):
            self._mark(item, "ready", at, stamp)

    def mark(self, incident: Incident, phase: str, mono: float) -> None:
        """Marks a phase the runner saw itself (lifted), if the incident is followed; a pod
        that never stopped being Ready is ready again at once."""
        for item in self.open:
            if item.incident is incident:
                self._mark(item, phase, mono, None)
                pod = self.pods.get(incident.target_uid, {})
                if item.follow is Follow.DEGRADED and _condition(pod, "Ready"):
                    self._mark(item, "ready", mono, None)  # its stamp predates the fault

    def _advance_scale(self, item: _Open, at: float) -> None:
        live = {uid: pod for uid, pod in self.pods.items() if not _deleting(pod)}
        new = [pod for uid, pod in live.items() if uid not in item.scale_from]
        wanted = max(0, item.scale_to - len(item.scale_from))
        if len(live) != item.scale_to or len(new) != wanted:
            return
        checks: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
            ("replicas_created", lambda p: True),
            ("scheduled", lambda p: _condition(p, "PodScheduled") is not None),
            ("started", lambda p: _running_since(p) is not False),
            ("ready", lambda p: _condition(p, "Ready") is not None),
        ]
        for phase, holds in checks:
            if not all(holds(p) for p in new):
                return
            if phase == "ready" and not all(_condition(p, "Ready") for p in live.values()):
                return
            self._mark(item, phase, at, None)


    def _advance_autoscale(self, item: _Open, at: float) -> None:
        incident, baseline = item.incident, item.scale_to
        live = {uid: pod for uid, pod in self.pods.items() if not _deleting(pod)}
        incident.peak_replicas = max(incident.peak_replicas, len(live))
        utilization, target = hpa_utilization(self.autoscaler)
        desired = int(self.autoscaler.get("status", {}).get("desiredReplicas") or 0)
        if utilization is not None and target is not None and utilization > target:
            self._mark(item, "utilization_above_target", at, None)
        if desired > baseline and "utilization_above_target" in incident.phases:
            stamp = _time(self.autoscaler.get("status", {}).get("lastScaleTime"))
            self._mark(item, "scale_decided", at, stamp)
        if "scale_decided" not in incident.phases:
            return
        new = [pod for uid, pod in live.items() if uid not in item.scale_from]
        if len(live) >= desired > baseline and new:
            created = [_time(p["metadata"].get("creationTimestamp")) for p in new]
            self._mark(item, "replicas_created", at, max((c for c in created if c), default=None))
        all_ready = all(_condition(p, "Ready") for p in live.values())
        if "replicas_created" in incident.phases and all_ready and len(live) == desired > baseline:
            self._mark(item, "ready", at, None)
        if "ready" in incident.phases and all_ready and len(live) == desired == baseline:
            self._mark(item, "scaled_in", at, None)


def hpa_utilization(hpa: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(current, target) average CPU utilization in percent from an autoscaling/v2 HPA."""
    target = next((m["resource"]["target"].get("averageUtilization")
                   for m in hpa.get("spec", {}).get("metrics") or []
                   if m.get("type") == "Resource" and m["resource"].get("name") == "cpu"), None)
    current = next((m["resource"]["current"].get("averageUtilization")
                    for m in hpa.get("status", {}).get("currentMetrics") or []
                    if m.get("type") == "Resource" and m["resource"].get("name") == "cpu"), None)
    return current, target


def _exit_reason(statuses: Iterable[Mapping[str, Any]], running: frozenset[str]) -> str:
    """The terminated.reason (OOMKilled, Error, ...) of one of the RUNNING containers, from
    its state while it waits to restart or from lastState once restarted; '' before."""
    for status in statuses:
        for key in ("state", "lastState"):
            ended = (status.get(key) or {}).get("terminated") or {}
            if ended.get("containerID") in running and ended.get("reason"):
                return str(ended["reason"])
    return ""


def _deleting(pod: Mapping[str, Any]) -> bool:
    return pod.get("metadata", {}).get("deletionTimestamp") is not None
