"""The metrics of one workload under drill (DrillMetrics): the calls the runner and the observers
make as things happen, each updating the families chaos.monitoring.metrics defines."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence

from prometheus_client import CollectorRegistry

from chaos.drill.fault_types import NAMES, OBSERVED, TRAFFIC_PHASES, Follow, fault_type
from chaos.drill.spec import Drill
from chaos.monitoring.metrics import INCIDENT_RESULTS, PROBE_RESULTS, families_of


class DrillMetrics:
    """The metrics of one workload under drill; several may share a registry.

    `faults` is the closed set of fault names (pass `chaos.drill.fault_types.NAMES`). `phases`, if
    given, maps each fault to its ordered timeline phases (pass
    `chaos.drill.fault_types.PHASES_BY_FAULT`); durations lead into every phase after the first, so
    those are the allowed phase labels. Known series are created at 0 up front.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        namespace: str,
        workload: str,
        faults: Sequence[str],
        *,
        phases: Mapping[str, Sequence[str]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._m = families_of(registry)
        self._labels = {"namespace": namespace, "workload": workload}
        self._faults = tuple(faults)
        self._phases = None if phases is None else {f: tuple(p[1:]) for f, p in phases.items()}
        self._clock = clock
        self._create_known_series()

    def _create_known_series(self) -> None:
        # New children start at 0; existing ones (a repeated drill of this workload) keep theirs.
        m, labels = self._m, self._labels
        for fault in self._faults:
            m.faults_injected.labels(**labels, fault=fault)
            m.recovery_seconds.labels(**labels, fault=fault)
            m.last_fault_timestamp.labels(**labels, fault=fault)
            if fault_type(fault).follow is Follow.AUTOSCALE:
                m.scale_out_seconds.labels(**labels, fault=fault)
                m.scale_in_seconds.labels(**labels, fault=fault)
            for result in INCIDENT_RESULTS:
                m.incidents.labels(**labels, fault=fault, result=result)
            for phase in self._phases_of(fault):
                m.phase_seconds.labels(**labels, fault=fault, phase=phase)
        for result in PROBE_RESULTS:
            m.probe_requests.labels(**labels, result=result)
        m.container_restarts.labels(**labels)
        m.drill_running.labels(**labels)

    def remove(self) -> None:
        """Removes every series of this workload from the registry: the exporter stops
        answering with them (a drill over, or its ChaosDrill deleted)."""
        for field in dataclasses.fields(self._m):
            family = getattr(self._m, field.name)
            if field.name != "build_info":
                family.remove_by_labels(self._labels)

    def _fault(self, fault: str) -> str:
        if fault not in self._faults:
            raise ValueError(f"unknown fault {fault!r}: expected one of {', '.join(self._faults)}")
        return fault

    def _phases_of(self, fault: str) -> tuple[str, ...]:
        return () if self._phases is None else self._phases.get(fault, ())

    def _phase(self, fault: str, phase: str) -> str:
        known = self._phases_of(fault)
        if self._phases is not None and phase not in known:
            raise ValueError(
                f"unknown phase {phase!r} of {fault}: expected one of {', '.join(known)}"
            )
        return phase

    def fault_injected(self, fault: str) -> None:
        """Count one injected fault and stamp its time (call right after the injection)."""
        labels = {**self._labels, "fault": self._fault(fault)}
        self._m.faults_injected.labels(**labels).inc()
        self._m.last_fault_timestamp.labels(**labels).set(self._clock())

    def incident_closed(
        self,
        fault: str,
        recovery_seconds: float | None,
        phase_durations: Mapping[str, float],
    ) -> None:
        """Record a finished incident; `recovery_seconds` is None when it never recovered.

        `phase_durations` maps each phase reached to the seconds since the previous one
        (`Incident.phase_durations()`).
        """
        labels = {**self._labels, "fault": self._fault(fault)}
        result = "unrecovered" if recovery_seconds is None else "recovered"
        self._m.incidents.labels(**labels, result=result).inc()
        if recovery_seconds is not None:
            self._m.recovery_seconds.labels(**labels).observe(recovery_seconds)
        for phase, seconds in phase_durations.items():
            phase_labels = {**labels, "phase": self._phase(fault, phase)}
            self._m.phase_seconds.labels(**phase_labels).observe(seconds)

    def traffic(self, fault: str, offsets: Mapping[str, float]) -> None:
        """Record when an incident's traffic phases came, as seconds after injection
        (`Incident.offsets()`; its other phases are ignored here)."""
        labels = {**self._labels, "fault": self._fault(fault)}
        for phase in TRAFFIC_PHASES:
            if phase in offsets:
                self._m.traffic_seconds.labels(**labels, phase=phase).observe(offsets[phase])

    def replicas(self, ready: int, desired: int) -> None:
        """Set the workload's ready and desired replica counts."""
        self._m.ready_replicas.labels(**self._labels).set(ready)
        self._m.desired_replicas.labels(**self._labels).set(desired)

    def autoscaler(self, desired: int, current: int) -> None:
        """Set the HorizontalPodAutoscaler's desired and current replicas."""
        self._m.hpa_desired_replicas.labels(**self._labels).set(desired)
        self._m.hpa_current_replicas.labels(**self._labels).set(current)

    def scaled(self, fault: str, out_seconds: float | None, in_seconds: float | None) -> None:
        """Record how long an autoscaled incident took to scale out and back in."""
        labels = {**self._labels, "fault": self._fault(fault)}
        if out_seconds is not None:
            self._m.scale_out_seconds.labels(**labels).observe(out_seconds)
        if in_seconds is not None:
            self._m.scale_in_seconds.labels(**labels).observe(in_seconds)

    def container_restarts(self, n: int) -> None:
        """Add `n` newly observed container restarts (a delta, not the pods' total)."""
        self._m.container_restarts.labels(**self._labels).inc(n)

    def probe(self, ok: bool) -> None:
        """Count one availability probe request."""
        self._m.probe_requests.labels(**self._labels, result="ok" if ok else "error").inc()

    def availability(self, ratio: float) -> None:
        """Set the drill's availability so far, 0 to 1."""
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"availability must be between 0 and 1, got {ratio}")
        self._m.availability.labels(**self._labels).set(ratio)

    def running(self, running: bool) -> None:
        """Mark the drill as running (True) or finished (False)."""
        self._m.drill_running.labels(**self._labels).set(1 if running else 0)

    def slo(self, max_recovery_seconds: float, min_availability: float) -> None:
        """Publish the drill's SLO so alerts compare against it instead of the defaults."""
        self._m.slo_max_recovery.labels(**self._labels).set(max_recovery_seconds)
        self._m.slo_min_availability.labels(**self._labels).set(min_availability)

    def scale_slo(self, max_scale_out_seconds: float | None,
                  max_scale_in_seconds: float | None) -> None:
        """Publish a load drill's scale-out and scale-in SLOs (None: not set, not published)."""
        if max_scale_out_seconds is not None:
            self._m.slo_max_scale_out.labels(**self._labels).set(max_scale_out_seconds)
        if max_scale_in_seconds is not None:
            self._m.slo_max_scale_in.labels(**self._labels).set(max_scale_in_seconds)


def for_drill(registry: CollectorRegistry, drill: Drill) -> DrillMetrics:
    """The metrics of one drill run: every fault's series at 0, and phase series for the
    drill's own fault only (every fault's phase buckets would be most of each scrape)."""
    fault = drill.fault.type
    return DrillMetrics(registry, drill.namespace, drill.target.name or "selector", NAMES,
                        phases={fault: fault_type(fault).phases})


def for_watch(registry: CollectorRegistry, namespace: str, workload: str) -> DrillMetrics:
    """The metrics of `watch`: phase series for the faults an observed disruption is followed
    as (chaos.drill.fault_types.OBSERVED)."""
    return DrillMetrics(registry, namespace, workload, NAMES,
                        phases={fault: fault_type(fault).phases for fault in OBSERVED})
