"""The one state both live views render: pods per node, incidents with their phases, probe
results and the drill's progress. It listens to the Observer (chaos.observe.listener) and is told
the round and verdict by the command; `snapshot()` is a JSON-friendly dict with a version that
grows on every change, so a view redraws only when something changed."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from chaos.drill.timeline import Incident
from chaos.observe.prober import ProbeWindow
from chaos.observe.tracker import restart_count
from chaos.results.causes import IncidentEvent, causes_of

POD_STATES = ("pending", "creating", "running", "ready", "terminating", "failed")
"""Tile states: running means running but not Ready."""
FAILED_REASONS = frozenset({"CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff",
                            "CreateContainerError", "CreateContainerConfigError",
                            "RunContainerError", "InvalidImageName", "OOMKilled", "Error"})
PROBES_KEPT = 200
"""Recent probe results shown as a strip (10 s at 20 a second)."""
INCIDENTS_KEPT = 12
EVENTS_SHOWN = 6
"""The latest Kubernetes events shown under an incident."""


def _ready(obj: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in obj.get("status", {}).get("conditions") or [])


def pod_state(pod: Mapping[str, Any]) -> str:
    """One of POD_STATES for a pod object as the watch delivers it."""
    meta, status = pod.get("metadata", {}), pod.get("status", {})
    if meta.get("deletionTimestamp"):
        return "terminating"
    if status.get("phase") in ("Failed", "Succeeded"):
        return "failed"
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        waiting = (state.get("waiting") or {}).get("reason")
        if waiting in FAILED_REASONS or "terminated" in state:
            return "failed"
    if not pod.get("spec", {}).get("nodeName"):
        return "pending"
    if _ready(pod):
        return "ready"
    return "running" if status.get("phase") == "Running" else "creating"


class ViewModel:
    """Thread-safe; every change bumps `version` and wakes `wait_change` callers."""

    def __init__(self, title: str, mode: str = "run",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.title, self.mode, self.clock = title, mode, clock
        self.version = 0
        self._changed = threading.Condition()
        self._pods: dict[str, dict[str, Any]] = {}
        self._arrived: dict[str, int] = {}
        """Each pod's last watch event's arrival, wall-clock ms: the page measures its lag."""
        self._nodes: dict[str, bool] = {}
        self._workload: dict[str, Any] = {}
        self._incidents: dict[str, Incident] = {}
        self._closed: set[str] = set()
        self._replacements: dict[str, str] = {}  # pod UID -> incident id
        self._incident_pods: dict[str, set[str]] = {}  # incident id -> its pods' names
        self._events: dict[str, list[IncidentEvent]] = {}  # incident id -> events on its pods
        self._rotation: frozenset[str] | None = None
        """The pods the probed Service sends traffic to; None without a probe Service."""
        self._probes: deque[bool] = deque(maxlen=PROBES_KEPT)
        self._requests = self._failures = 0
        self._longest_outage = 0.0
        self._progress: dict[str, Any] = {"round": 0, "rounds": 0, "fault": "",
                                          "verdict": None, "detail": ""}
        self._lesson: dict[str, Any] | None = None

    # -- what the command tells it ------------------------------------------------------------

    def set_workload(self, kind: str, name: str, namespace: str) -> None:
        with self._change():
            self._workload.update(kind=kind, name=name, namespace=namespace)

    def set_drill(self, rounds: int, fault: str) -> None:
        with self._change():
            self._progress.update(rounds=rounds, fault=fault)

    def round_started(self, number: int) -> None:
        with self._change():
            self._progress["round"] = number

    def set_lesson(self, lesson: dict[str, Any]) -> None:
        """A workshop's plan and where it stands (chaos.view.presenter.Lesson.to_dict)."""
        with self._change():
            self._lesson = lesson

    def new_drill(self, rounds: int, fault: str) -> None:
        """A workshop's next drill: the last one's incidents, probes and verdict are cleared;
        the pods and nodes stay."""
        with self._change():
            for kept in (self._incidents, self._incident_pods, self._events,
                         self._replacements):
                kept.clear()
            self._closed.clear()
            self._probes.clear()
            self._requests = self._failures = 0
            self._longest_outage = 0.0
            self._progress.update(round=0, rounds=rounds, fault=fault, verdict=None, detail="")

    def finished(self, passed: bool | None, detail: str) -> None:
        """The verdict: True passed, False failed, None stopped without one."""
        verdict = {True: "PASSED", False: "FAILED", None: "STOPPED"}[passed]
        with self._change():
            self._progress.update(verdict=verdict, detail=detail)

    # -- ObserverListener -----------------------------------------------------------------

    def pod_changed(self, kind: str, pod: dict[str, Any], arrived: float) -> None:
        with self._change():
            if kind == "SYNCED":
                for uid in set(self._pods) - set(pod.get("uids", [])):
                    del self._pods[uid]
                    self._arrived.pop(uid, None)
                return
            uid = pod.get("metadata", {}).get("uid", "")
            if kind == "DELETED":
                self._pods.pop(uid, None)
                self._arrived.pop(uid, None)
            elif uid:
                self._pods[uid] = pod
                self._arrived[uid] = round((time.time() - (time.monotonic() - arrived)) * 1000)

    def node_changed(self, kind: str, node: dict[str, Any], arrived: float) -> None:
        if kind == "SYNCED":
            return
        name = node.get("metadata", {}).get("name", "")
        with self._change():
            if kind == "DELETED":
                self._nodes.pop(name, None)
            else:
                self._nodes[name] = _ready(node)

    def workload_changed(self, ready: int, desired: int) -> None:
        with self._change():
            self._workload.update(ready=ready, desired=desired)

    def rotation_changed(self, serving: frozenset[str]) -> None:
        with self._change():
            self._rotation = serving

    def incident_opened(self, incident: Incident) -> None:
        with self._change():
            self._incidents[incident.id] = incident
            self._incident_pods[incident.id] = {incident.target_pod}
            self._events[incident.id] = []
            while len(self._incidents) > INCIDENTS_KEPT:
                gone = next(iter(self._incidents))
                for kept in (self._incidents, self._incident_pods, self._events):
                    del kept[gone]

    def phase_reached(self, incident: Incident, phase: str, mono: float, pod_uid: str) -> None:
        with self._change():
            if pod_uid:
                self._replacements.setdefault(pod_uid, incident.id)
                name = self._pods.get(pod_uid, {}).get("metadata", {}).get("name")
                if name and incident.id in self._incident_pods:
                    self._incident_pods[incident.id].add(name)

    def k8s_event(self, reason: str, about: str, message: str, arrived: float) -> None:
        kind, _, name = about.partition("/")
        if kind != "Pod":
            return
        with self._change():
            for incident in self._incidents.values():
                start = incident.phases.get("injected")
                if (start is None or incident.recovered or incident.id in self._closed
                        or name not in self._incident_pods.get(incident.id, ())):
                    continue
                self._events[incident.id].append(
                    IncidentEvent(round(arrived - start, 3), reason, name, message))

    def incident_closed(self, incident: Incident) -> None:
        with self._change():
            self._closed.add(incident.id)

    def probed(self, ok: bool, at: float) -> None:
        with self._change():
            self._probes.append(ok)
            self._requests += 1
            self._failures += 0 if ok else 1

    def probe_window(self, window: ProbeWindow) -> None:
        with self._change():
            self._longest_outage = max(self._longest_outage, window.longest_outage_seconds)

    # -- what the views read --------------------------------------------------------------

    def wait_change(self, seen: int, timeout: float) -> int:
        """Waits up to TIMEOUT seconds for a version after SEEN; returns the current one."""
        with self._changed:
            self._changed.wait_for(lambda: self.version != seen, timeout)
            return self.version

    def snapshot(self) -> dict[str, Any]:
        """The state as a JSON-friendly dict. Only copying it holds the lock (the watches and the
        prober wait for it); drawing it up from the copy does not."""
        with self._changed:
            state = _State(
                version=self.version, title=self.title, mode=self.mode, now=self.clock(),
                workload=dict(self._workload), nodes=dict(self._nodes), pods=dict(self._pods),
                arrived=dict(self._arrived), rotation=self._rotation,
                incidents=[replace(i, phases=dict(i.phases)) for i in self._incidents.values()],
                closed=set(self._closed), replacements=dict(self._replacements),
                events={key: list(value) for key, value in self._events.items()},
                probes=list(self._probes), requests=self._requests, failures=self._failures,
                longest_outage=self._longest_outage, progress=dict(self._progress))
            lesson = self._lesson
        rendered = state.render()
        if lesson is not None:
            rendered["lesson"] = lesson
        return rendered

    @contextmanager
    def _change(self) -> Iterator[None]:
        """Holds the lock for a change, then bumps the version and wakes the waiters."""
        with self._changed:
            yield
            self.version += 1
            self._changed.notify_all()


@dataclass
class _State:
    """A copy of the model's state, taken under its lock; rendered without it. Pod objects are
    shared, not copied: the model replaces them whole and never changes one."""

    version: int
    title: str
    mode: str
    now: float
    workload: dict[str, Any]
    nodes: dict[str, bool]
    pods: dict[str, dict[str, Any]]
    arrived: dict[str, int]
    rotation: frozenset[str] | None
    incidents: list[Incident]
    closed: set[str]
    replacements: dict[str, str]
    events: dict[str, list[IncidentEvent]]
    probes: list[bool]
    requests: int
    failures: int
    longest_outage: float
    progress: dict[str, Any]

    def render(self) -> dict[str, Any]:
        return {"version": self.version, "title": self.title, "mode": self.mode,
                "workload": self.workload, "nodes": self._node_list(), "pods": self._pod_list(),
                "incidents": [self._incident(i) for i in self.incidents],
                "availability": self._availability(), "progress": self.progress}

    def _node_list(self) -> list[dict[str, Any]]:
        names = set(self.nodes) | {p.get("spec", {}).get("nodeName") or "" for p in
                                   self.pods.values()}
        return [{"name": name, "ready": self.nodes.get(name, bool(name))}
                for name in sorted(names)]

    def _pod_list(self) -> list[dict[str, Any]]:
        shown = {i.id for i in self.incidents if i.id not in self.closed}
        # a victim stays marked while its incident is open or while it is still going away
        victims = {i.target_uid: i.id for i in self.incidents if i.target_uid and (
            i.id in shown or pod_state(self.pods.get(i.target_uid, {})) == "terminating")}
        marked = shown | {i.id for i in self.incidents[-1:]}
        replacements = {uid: iid for uid, iid in self.replacements.items() if iid in marked}
        pods = sorted(self.pods.values(),
                      key=lambda p: (p["metadata"].get("creationTimestamp") or "",
                                     p["metadata"].get("name", "")))
        return [{"uid": p["metadata"]["uid"], "name": p["metadata"].get("name", ""),
                 "node": p.get("spec", {}).get("nodeName") or "", "state": pod_state(p),
                 "restarts": restart_count(p),
                 "victim": victims.get(p["metadata"]["uid"], ""),
                 "replacement": replacements.get(p["metadata"]["uid"], ""),
                 "arrived": self.arrived.get(p["metadata"]["uid"], 0),
                 "traffic": self._traffic(p["metadata"]["uid"])}
                for p in pods]

    def _traffic(self, uid: str) -> str:
        """'in' while the probed Service sends the pod traffic, 'out' when not, '' unknown."""
        if self.rotation is None:
            return ""
        return "in" if uid in self.rotation else "out"

    def _incident(self, incident: Incident) -> dict[str, Any]:
        now = self.now
        offsets = incident.offsets()
        closed = incident.id in self.closed
        status = ("recovered" if incident.recovered else "not recovered" if closed
                  else "open")
        start = incident.phases.get("injected", now)
        events = self.events.get(incident.id, [])
        waiting = None if closed or incident.recovered else now - start
        causes = causes_of(offsets, incident.expected_phases, events, waiting)
        return {"id": incident.id, "fault": incident.fault, "target": incident.target_pod,
                "origin": incident.origin, "causes": [c.text for c in causes],
                "events": [{"reason": e.reason, "ms": round(e.at * 1000), "pod": e.pod}
                           for e in events[-EVENTS_SHOWN:]],
                "node": incident.node, "status": status, "expected": list(
                    incident.expected_phases),
                "phases": [{"name": name, "ms": round(seconds * 1000)}
                           for name, seconds in offsets.items()],
                "recovery_ms": None if incident.recovery_seconds is None
                else round(incident.recovery_seconds * 1000),
                "elapsed_ms": round((now - start) * 1000),
                "restarts": incident.restart_count, "exit_reason": incident.exit_reason}

    def _availability(self) -> dict[str, Any]:
        requests = self.requests
        return {"requests": requests, "failures": self.failures,
                "ratio": None if not requests else (requests - self.failures) / requests,
                "longest_outage_seconds": round(self.longest_outage, 3),
                "recent": "".join("1" if ok else "0" for ok in self.probes)}
