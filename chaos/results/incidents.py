"""Each incident of a run as its journal tells it: injected, the phases seen, the Kubernetes events
about its pods, how it closed and why a phase was slow; and the recovery times over them all."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chaos.drill.fault_types import Follow
from chaos.drill.spec import Drill
from chaos.drill.timeline import API_RESOLUTION_SECONDS, Incident, scale_in_seconds
from chaos.results.causes import IncidentEvent, causes_of
from chaos.results.journal import JournalRecord


@dataclass(frozen=True)
class IncidentResult:
    """One incident as reported: phase offsets from injected, and whether it recovered."""

    id: str
    round: int
    fault: str
    target_pod: str
    node: str
    injected_at: str
    phases: Mapping[str, float] = field(hash=False)
    recovery_seconds: float | None
    restart_count: int
    closed: bool
    reason: str | None
    ordered: bool
    api_cross_check: str | None
    origin: str = "injected"
    """injected by this run, or observed: a disruption chaos-drill did not cause."""
    injected_from: str | None = None
    timing: str | None = None
    """For an observed incident: how its injected moment bounds the recovery time."""
    timing_uncertainty_seconds: float | None = None
    detail: str | None = None
    events: tuple[Mapping[str, Any], ...] = ()
    """Kubernetes events about its pods from injection to Ready: at (s), reason, pod, message."""
    causes: tuple[str, ...] = ()
    """Why a phase was slow, one sentence each (chaos.results.causes)."""
    scale_in_seconds: float | None = None
    """load only: from the planned end of the load until back to the replicas it began with."""
    peak_replicas: int | None = None
    """load only: the most pods of the workload seen at once."""
    exit_reason: str | None = None
    """In-place restarts: why the container exited (terminated.reason: OOMKilled, Error)."""
    kernel_oom_kills: int | None = None
    """oom_kill only: the kernel's OOM kills in the victim container, by the kernel log."""


@dataclass(frozen=True)
class RecoveryStats:
    """Recovery times of the incidents that recovered; None when none did."""

    count: int
    median: float | None
    p95: float | None
    max: float | None


@dataclass
class _Tracked:
    incident: Incident
    injected_at: str
    closed: bool = False
    recovered: bool = False
    reason: str | None = None
    detail: str | None = None
    pods: set[str] = field(default_factory=set)
    events: list[IncidentEvent] = field(default_factory=list)
    ended: float | None = None
    oom_kills: int | None = None


def incident_results(records: Sequence[JournalRecord],
                     drill: Drill | None) -> tuple[IncidentResult, ...]:
    """Every incident the journal RECORDS hold, in the order they were injected."""
    return tuple(_incident_result(t, drill) for t in _track_incidents(records).values())


def _track_incidents(records: Sequence[JournalRecord]) -> dict[str, _Tracked]:
    tracked: dict[str, _Tracked] = {}
    for record in records:
        if record.event == "fault_injected":
            tracked[record.get("incident")] = _injected(record)
            continue
        if record.event == "kernel_oom_kills":  # about the last incident on that pod
            latest = [t for t in tracked.values()
                      if t.incident.target_uid == record.get("target_uid")]
            if latest:
                latest[-1].oom_kills = int(record.get("count") or 0)
            continue
        entry = tracked.get(record.get("incident", ""))
        if entry is None:
            continue
        entry.incident.record_restarts(int(record.get("restart_count") or 0))
        entry.incident.record_exit(str(record.get("exit_reason") or ""))
        if record.event == "phase" and record.get("phase") in entry.incident.expected_phases:
            entry.incident.mark(record.get("phase"), record.mono, _api_time(record))
            if record.get("pod"):
                entry.pods.add(record.get("pod"))
        elif record.event == "incident_closed":
            entry.closed, entry.reason = True, record.get("reason")
            entry.incident.peak_replicas = int(record.get("peak_replicas") or 0)
            entry.recovered = bool(record.get("recovered", False))
            entry.ended = record.mono
    _add_events(tracked.values(), [r for r in records if r.event == "k8s_event"],
                records[-1].mono if records else 0.0)
    return tracked


def _add_events(tracked: Iterable[_Tracked], events: Sequence[JournalRecord],
                last: float) -> None:
    """Each event about an incident's pods that arrived between its injection and its Ready
    (or its close, or the journal's end) joins that incident."""
    for entry in tracked:
        incident = entry.incident
        start = incident.phases["injected"]
        end = incident.phases.get("ready", entry.ended if entry.ended is not None else last)
        for record in events:
            kind, _, name = str(record.get("object", "")).partition("/")
            if kind == "Pod" and name in entry.pods and start <= record.mono <= end:
                entry.events.append(IncidentEvent(round(record.mono - start, 3),
                                                  record.get("reason", ""), name,
                                                  record.get("message", ""),
                                                  int(record.get("count") or 1)))


def _injected(record: JournalRecord) -> _Tracked:
    incident = Incident(
        id=record.get("incident"),
        round=int(record.get("round", 0)),
        fault=record.get("fault"),
        namespace=record.get("namespace", ""),
        workload=record.get("workload", ""),
        target_pod=record.get("target_pod", ""),
        target_uid=record.get("target_uid", ""),
        node=record.get("node", ""),
        origin=record.get("origin", "injected"),
        injected_from=record.get("injected_from", ""),
        timing_uncertainty_seconds=record.get("timing_uncertainty_seconds"),
        service=record.get("service") or "",
    )
    incident.mark("injected", record.mono, _api_time(record))
    return _Tracked(incident, record.ts, detail=record.get("detail"),
                    pods={incident.target_pod})


def _api_time(record: JournalRecord) -> datetime | None:
    value = record.get("api_time")
    return datetime.fromisoformat(value) if value else None


def _incident_result(entry: _Tracked, drill: Drill | None) -> IncidentResult:
    incident = entry.incident
    autoscaled = incident.follow is Follow.AUTOSCALE and drill is not None
    check = incident.api_cross_check()
    recovered = entry.closed and entry.recovered
    offsets = incident.offsets()
    waiting = None
    if not incident.recovered and entry.ended is not None:
        waiting = entry.ended - incident.phases["injected"]
    causes = causes_of(offsets, incident.expected_phases, entry.events, waiting)
    return IncidentResult(
        id=incident.id,
        round=incident.round,
        fault=incident.fault,
        target_pod=incident.target_pod,
        node=incident.node,
        injected_at=entry.injected_at,
        phases={phase: round(offset, 3) for phase, offset in incident.offsets().items()},
        recovery_seconds=_milliseconds(incident.recovery_seconds) if recovered else None,
        restart_count=incident.restart_count,
        closed=entry.closed,
        reason=entry.reason if entry.closed else "never closed: the run ended first",
        ordered=incident.is_ordered(),
        api_cross_check=check.detail() if check else None,
        origin=incident.origin,
        injected_from=incident.injected_from or None,
        timing=_timing(incident) if incident.observed else None,
        timing_uncertainty_seconds=incident.timing_uncertainty_seconds,
        detail=entry.detail,
        events=tuple({"at": e.at, "reason": e.reason, "pod": e.pod, "message": e.message,
                      "count": e.count} for e in entry.events),
        causes=tuple(cause.text for cause in causes),
        scale_in_seconds=_milliseconds(scale_in_seconds(incident, drill))
        if autoscaled and drill is not None else None,
        peak_replicas=incident.peak_replicas if autoscaled else None,
        exit_reason=incident.exit_reason or None,
        kernel_oom_kills=entry.oom_kills,
    )


def _timing(incident: Incident) -> str:
    """How an observed incident's injected moment bounds its recovery time."""
    late = incident.timing_uncertainty_seconds
    source = incident.injected_from or "the moment it was first seen"
    if late is None:
        return (f"observed: counted from {source}, as the API offers no earlier moment; the "
                "recovery may have begun earlier")
    if late == 0:
        return (f"observed: counted from {source}, which the watch saw as it happened, so the "
                "recovery holds as measured")
    resolution = (f"API timestamps have {API_RESOLUTION_SECONDS:g} s resolution"
                  if late <= API_RESOLUTION_SECONDS else "it is a last sign of life")
    return (f"observed: counted from {source}; {resolution}, so it may have begun up to "
            f"{late:.3f} s later and the recovery may be up to {late:.3f} s shorter "
            f"(recovery ±{late:.3f} s)")


def recovery_stats(incidents: Sequence[IncidentResult]) -> RecoveryStats:
    times = sorted(i.recovery_seconds for i in incidents if i.recovery_seconds is not None)
    if not times:
        return RecoveryStats(0, None, None, None)
    p95 = times[max(0, math.ceil(0.95 * len(times)) - 1)]  # nearest rank
    return RecoveryStats(len(times), statistics.median(times), p95, times[-1])


def _milliseconds(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)
