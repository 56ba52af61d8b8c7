"""The drill's eyes: pod, node, workload and event watches feeding the incident tracker, plus
the HTTP prober; everything seen goes to the journal (and metrics) as it arrives. With
record_others it also records what others break (chaos.observe.others)."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaos.cluster.base import Progress
from chaos.cluster.kube import WORKLOAD_KINDS, Workload, apps_call, explain
from chaos.drill.fault_types import Follow
from chaos.drill.timeline import Incident
from chaos.observe.endpoints import SERVICE_LABEL, in_rotation
from chaos.observe.listener import ObserverListener
from chaos.observe.others import RecordsOthers
from chaos.observe.prober import Prober, ProbeWindow
from chaos.observe.prober_pod import PodProber
from chaos.observe.sinks import Gauges, Record
from chaos.observe.tracker import Tracker, hpa_utilization, restart_count
from chaos.observe.watch import ResourceWatch

SYNC_TIMEOUT = 30.0


class Observer(RecordsOthers):
    """Starts every watch, keeps the tracker current, and tells waiters when phases land."""

    def __init__(self, api: Any, workload: Workload, journal: Record,
                 metrics: Gauges | None, record_others: bool = False,
                 autoscaler: str | None = None, service: str | None = None) -> None:
        self.api, self.workload, self.journal, self.metrics = api, workload, journal, metrics
        self.record_others = record_others
        self.observed: dict[str, Incident] = {}
        """The observed incidents still open, by id."""
        self.observed_count = 0
        self.announce: Progress | None = None
        """Told in one line of each observed incident opened and closed."""
        self._nodes: dict[str, dict[str, Any]] = {}
        self._relisted: set[str] = set()
        """Pods first seen in the relist under way: they came while the watch was away."""
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.tracker = Tracker(on_phase=self._on_phase, service=service or "")
        self.prober: Prober | PodProber | None = None
        self.workload_status: dict[str, int] = {}
        self.listeners: list[ObserverListener] = []
        self._restarts: dict[str, int] = {}
        self.autoscaler_status: dict[str, int] = {}
        core = client.CoreV1Api(api)
        ns = workload.namespace
        self.watches = [
            ResourceWatch("pods", core.list_namespaced_pod, self._pod_event, ns,
                          label_selector=workload.selector),
            ResourceWatch("nodes", core.list_node, self._node_event),
            ResourceWatch("events", core.list_namespaced_event, self._k8s_event, ns,
                          only_new=True),
        ]
        if workload.kind in WORKLOAD_KINDS:
            self.watches.append(ResourceWatch(
                "workload", apps_call(api, "list", workload.kind), self._workload_event, ns,
                field_selector=f"metadata.name={workload.name}"))
        if service:
            slices = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice
            self.watches.append(ResourceWatch("endpointslices", slices, self._slice_event, ns,
                                              label_selector=f"{SERVICE_LABEL}={service}"))
        if autoscaler:
            hpas = client.AutoscalingV2Api(api).list_namespaced_horizontal_pod_autoscaler
            self.watches.append(ResourceWatch("autoscaler", hpas, self._autoscaler_event, ns,
                                              field_selector=f"metadata.name={autoscaler}"))

    def start(self) -> None:
        """Starts every watch and returns once each has listed; an access denial (401, 403)
        is raised at once, as retrying will not help."""
        for watch in self.watches:
            watch.start()
        deadline = time.monotonic() + SYNC_TIMEOUT
        for watch in self.watches:
            while not watch.synced.wait(0.1):
                error = watch.last_error
                if isinstance(error, ApiException) and error.status in (401, 403):
                    raise error
                if time.monotonic() > deadline:
                    why = f" (last error: {explain(error)})" if error else ""
                    raise TimeoutError(f"the {watch.name} watch did not sync in "
                                       f"{SYNC_TIMEOUT:g}s{why}")

    def start_prober(self, url: str, rate: float, timeout: float) -> None:
        self.prober = Prober(url, rate, timeout, self._on_probe, self._on_window).start()

    def start_pod_prober(self, run_id: str, url: str, rate: float, timeout: float, image: str,
                         deadline_seconds: int) -> PodProber:
        """Probes URL from a prober pod in the workload's namespace (chaos.observe.prober_pod);
        returns once it probes."""
        prober = PodProber(self.api, run_id, self.workload.namespace, url, rate, timeout, image,
                           deadline_seconds, self._on_probe, self._on_window)
        self.prober = prober.start()
        return prober

    def stop(self) -> None:
        """Stops the prober (a prober pod is deleted) and every watch; an error deleting the
        pod is raised after the watches stopped."""
        try:
            if self.prober:
                self.prober.stop()
        finally:
            for watch in self.watches:
                watch.stop()

    @property
    def restarts(self) -> int:
        """How many times the watches broke and resumed."""
        return sum(w.restarts for w in self.watches)

    def pods(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return dict(self.tracker.pods)

    def add_listener(self, listener: ObserverListener) -> None:
        """LISTENER hears of everything from now on (add it before start())."""
        with self.lock:
            self.listeners.append(listener)

    def follow(self, incident: Incident, how: Follow, container: str | None = None,
               replicas: int = 0) -> None:
        """Starts following an injected incident (see Tracker.follow), telling the listeners."""
        with self.changed:
            for listener in self.listeners:
                listener.incident_opened(incident)
            self.tracker.follow(incident, how, container, replicas)

    def mark(self, incident: Incident, phase: str, mono: float) -> None:
        """Marks a phase the runner saw itself (lifted), as if a watch had."""
        with self.changed:
            self.tracker.mark(incident, phase, mono)
            self.changed.notify_all()

    def close(self, incident: Incident) -> None:
        """Stops following the incident."""
        with self.changed:
            self.tracker.close(incident)
            for listener in self.listeners:
                listener.incident_closed(incident)

    # -- callbacks (watch threads) ----------------------------------------------------------

    def _pod_event(self, kind: str, pod: dict[str, Any], arrived: float) -> None:
        with self.changed:
            if self.record_others:
                self._pod_disruptions(kind, pod, arrived)
            self.tracker.pod_event(kind, pod, arrived)
            self._count_restarts(kind, pod)
            for listener in self.listeners:
                listener.pod_changed(kind, pod, arrived)
            self.changed.notify_all()

    def _count_restarts(self, kind: str, pod: dict[str, Any]) -> None:
        uid = pod.get("metadata", {}).get("uid", "")
        if kind in ("SYNCED", "DELETED") or not uid:
            return
        count = restart_count(pod)
        seen = self._restarts.setdefault(uid, count)
        if count > seen and self.metrics:
            self.metrics.container_restarts(count - seen)
        self._restarts[uid] = max(seen, count)

    def _node_event(self, kind: str, node: dict[str, Any], arrived: float) -> None:
        with self.changed:
            if self.record_others and kind not in ("SYNCED", "DELETED"):
                self._node_disruptions(node, arrived)
            self.tracker.node_event(kind, node, arrived)
            for listener in self.listeners:
                listener.node_changed(kind, node, arrived)
            self.changed.notify_all()

    def _slice_event(self, kind: str, slice_: dict[str, Any], arrived: float) -> None:
        with self.changed:
            before = in_rotation(self.tracker.slices.values())
            self.tracker.slice_event(kind, slice_, arrived)
            serving = in_rotation(self.tracker.slices.values())
            if serving != before:
                names = sorted(self.tracker.pods.get(uid, {}).get("metadata", {}).get("name", uid)
                               for uid in serving)
                self.journal.write("endpoints", mono=arrived, service=self.tracker.service,
                                   in_rotation=names)
                for listener in self.listeners:
                    listener.rotation_changed(frozenset(serving))
            self.changed.notify_all()

    def _workload_event(self, kind: str, obj: dict[str, Any], arrived: float) -> None:
        if kind in ("SYNCED", "DELETED"):
            return
        status, spec = obj.get("status", {}), obj.get("spec", {})
        now = {"ready": int(status.get("readyReplicas") or 0),
               "desired": int(spec.get("replicas") or 0)}
        with self.changed:
            if now != self.workload_status:
                self.workload_status = now
                self.journal.write("workload", mono=arrived, **now)
                if self.metrics:
                    self.metrics.replicas(now["ready"], now["desired"])
                for listener in self.listeners:
                    listener.workload_changed(now["ready"], now["desired"])
            self.changed.notify_all()

    def _autoscaler_event(self, kind: str, hpa: dict[str, Any], arrived: float) -> None:
        status = hpa.get("status", {})
        utilization, target = hpa_utilization(hpa)
        now = {"desired": int(status.get("desiredReplicas") or 0),
               "current": int(status.get("currentReplicas") or 0),
               "utilization": -1 if utilization is None else int(utilization),
               "target": -1 if target is None else int(target)}
        with self.changed:
            self.tracker.autoscaler_event(kind, hpa, arrived)
            if kind not in ("SYNCED", "DELETED") and now != self.autoscaler_status:
                self.autoscaler_status = now
                self.journal.write("autoscaler", mono=arrived, **now)
                if self.metrics:
                    self.metrics.autoscaler(now["desired"], now["current"])
            self.changed.notify_all()

    def _k8s_event(self, kind: str, event: dict[str, Any], arrived: float) -> None:
        if kind not in ("ADDED", "MODIFIED"):
            return
        involved = event.get("involvedObject", {})
        about = f"{involved.get('kind', '')}/{involved.get('name', '')}"
        reason, message = event.get("reason", ""), event.get("message", "")
        self.journal.write("k8s_event", mono=arrived, reason=reason, object=about,
                           message=message, count=event.get("count"))
        with self.changed:
            for listener in self.listeners:
                listener.k8s_event(reason, about, message, arrived)

    def _on_phase(self, incident: Incident, phase: str, mono: float,
                  api_time: datetime | None) -> None:
        fields: dict[str, Any] = {"incident": incident.id, "phase": phase}
        if api_time is not None:
            fields["api_time"] = api_time.isoformat()
        if incident.follow is Follow.RESTART:
            fields["restart_count"] = incident.restart_count
            if incident.exit_reason:
                fields["exit_reason"] = incident.exit_reason
        uid = self.tracker.replacement_of(incident)
        if phase == "replacement_created":
            fields["pod"] = self.tracker.pods.get(uid, {}).get("metadata", {}).get("name", "")
        self.journal.write("phase", mono=mono, **fields)
        for listener in self.listeners:
            listener.phase_reached(incident, phase, mono, uid)
        if phase == "ready" and incident.id in self.observed:
            self.close_observed(incident)

    def _on_probe(self, ok: bool, latency: float) -> None:
        """One probe slot's outcome, from any of the prober's worker threads."""
        if self.metrics:
            self.metrics.probe(ok)
        at = time.monotonic()
        for listener in self.listeners:
            listener.probed(ok, at)

    def _on_window(self, window: ProbeWindow) -> None:
        # stamped with the end of the second its slots were scheduled in, not when the last
        # answer came (up to the timeout later)
        ends = (None if self.prober is None
                else self.prober.start_mono + window.start_seconds + window.seconds)
        self.journal.write("probe_window", mono=ends, **window.to_dict())
        for listener in self.listeners:
            listener.probe_window(window)
        if self.metrics and self.prober and self.prober.requests:
            ok = self.prober.requests - self.prober.failures
            self.metrics.availability(ok / self.prober.requests)
