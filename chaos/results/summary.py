"""The verdict of a run, rebuilt from its journal records alone, so `chaos-drill report DIR`
gives the same summary after a crash as the run itself would have.

Journal events (every record also has `event`, `ts` wall clock ISO and `mono` seconds):

    drill_started    drill: the ChaosDrill object (Drill.to_object()); dry_run: bool
    watch_started    instead of drill_started, for `watch --out`: namespace; workload
    round_started    round: int (from 1)
    fault_injected   incident: "r1-i1" ("o1" when observed); round (0 when observed); fault;
                     namespace; workload; target_pod; target_uid; node; api_time: ISO or null.
                     mono is the injection time.  An incident chaos-drill did not cause also
                     has origin: "observed"; injected_from: the API field api_time came from;
                     timing_uncertainty_seconds: how much later it may have begun; detail.
    phase            incident; phase (a timeline phase); mono: when first seen;
                     api_time: ISO or null; restart_count: int (optional); pod: the
                     replacement's name (replacement_created only)
    k8s_event        reason; object: "Pod/NAME"; message; count.  mono is its arrival; those
                     about an incident's pods between its injection and Ready join it.
    incident_closed  incident; recovered: bool; reason: str (optional);
                     restart_count: int (optional); peak_replicas: int (load only)
    probe_started    url; origin: "host" or "cluster", where the prober runs; setting:
                     spec.probe.from; rate; timeout; for cluster also pod: "NS/NAME"; image;
                     slot_zero_mono: the pod's slot 0 on the run's monotonic clock;
                     skew_bound_seconds: from slot 0 to the arrival of its first line
    probe_window     one scheduled second of the open-loop prober (ProbeWindow.to_dict());
                     mono: the second's end. seconds: window length; requests: slots
                     scheduled in it; failures; longest_outage_seconds: the prober's running
                     maximum since it started, counting an outage still in progress;
                     start_seconds: after the prober's slot 0; ok, http_errors,
                     connection_errors, timeouts, unsent: slots by outcome; latency: {bucket
                     upper bound in ms: count} (chaos.latency); latency_max_seconds: or null;
                     failed_at: [[seconds after slot 0, outcome], ...]. Older journals have
                     only the first four.
    scaled_down      `watch --out` only: a pod its controller removed to scale down (no
                     incident): pod; uid; owner: "ReplicaSet/NAME"; replicas: its desired
                     replicas then; remaining: its pods left
    drill_finished   aborted: bool; reason: str (optional)

Other event types (selection logs, notes) are ignored here. An incident that is never closed
(a crash) has recovery_seconds null and fails the drill, as does a drill that never finished.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from chaos import latency
from chaos.drill.fault_types import Follow
from chaos.drill.loading import drill_from_object
from chaos.drill.spec import Drill, Slo
from chaos.drill.timeline import API_RESOLUTION_SECONDS, Incident, scale_in_seconds
from chaos.errors import ChaosDrillError
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


@dataclass(frozen=True)
class RecoveryStats:
    """Recovery times of the incidents that recovered; None when none did."""

    count: int
    median: float | None
    p95: float | None
    max: float | None


@dataclass(frozen=True)
class Availability:
    """What the HTTP prober saw over the whole run."""

    requests: int
    failures: int
    ratio: float | None
    longest_outage_seconds: float
    http_errors: int = 0
    connection_errors: int = 0
    timeouts: int = 0
    unsent: int = 0
    """Slots not sent as every prober worker was busy: failures of the client's making."""
    latency_p50_seconds: float | None = None
    """Latency percentiles of the sent requests, from their scheduled time (so queueing
    counts); nearest rank over two-significant-digit buckets; None without any."""
    latency_p90_seconds: float | None = None
    latency_p99_seconds: float | None = None
    latency_max_seconds: float | None = None


@dataclass(frozen=True)
class SloCheck:
    """One verdict line; each becomes a JUnit test case."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Summary:
    """Everything summary.json holds."""

    drill: str
    namespace: str
    fault: str
    started: str | None
    finished: str | None
    aborted: bool
    abort_reason: str | None
    dry_run: bool
    incidents: tuple[IncidentResult, ...]
    recovery: RecoveryStats
    availability: Availability
    slo_checks: tuple[SloCheck, ...]
    passed: bool
    scale_downs: tuple[str, ...] = ()
    """`watch --out`: pods removed by a scale-down, one line each; not incidents."""

    def to_dict(self) -> dict[str, Any]:
        """Exactly what summary.json holds (lists, not tuples)."""
        data: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return data


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


@dataclass(frozen=True)
class _Run:
    """What the start record says: a drill's name, namespace, fault and SLO, or a watch's."""

    name: str
    namespace: str
    fault: str
    slo: Slo | None
    watch: bool = False
    drill: Drill | None = None


def _run_of(start: JournalRecord) -> _Run:
    if start.event == "watch_started":
        return _Run("watch", start.get("namespace", ""), "observed", None, watch=True)
    drill = drill_from_object(start.get("drill", {}))
    return _Run(drill.name, drill.namespace, drill.fault.type, drill.slo, drill=drill)


def build_summary(records: Sequence[JournalRecord]) -> Summary:
    """The summary of the run whose journal records these are."""
    start = next((r for r in records if r.event in ("drill_started", "watch_started")), None)
    if start is None:
        raise ChaosDrillError("journal has no drill_started record: is it a chaos-drill journal?")
    run = _run_of(start)
    finish = next((r for r in records if r.event == "drill_finished"), None)
    incidents = tuple(_incident_result(t, run.drill) for t in _track_incidents(records).values())
    recovery = _recovery_stats(incidents)
    availability = _availability(records)
    dry_run = bool(start.get("dry_run", False))
    checks = _slo_checks(run, finish, dry_run, incidents, recovery, availability)
    faults = sorted({i.fault for i in incidents})
    return Summary(
        drill=run.name,
        namespace=run.namespace,
        fault=f"observed ({', '.join(faults) or 'none'})" if run.watch else run.fault,
        started=start.ts,
        finished=finish.ts if finish else None,
        aborted=finish is None or bool(finish.get("aborted", False)),
        abort_reason=_abort_reason(finish),
        dry_run=dry_run,
        incidents=incidents,
        recovery=recovery,
        availability=availability,
        slo_checks=checks,
        passed=all(check.passed for check in checks),
        scale_downs=tuple(f"{r.get('pod', '')}: {r.get('owner', '')} scaled to "
                          f"{r.get('replicas')}" for r in records if r.event == "scaled_down"),
    )


def _abort_reason(finish: JournalRecord | None) -> str | None:
    if finish is None:
        return "the journal ends without drill_finished: the run crashed or was killed"
    return str(finish.get("reason")) if finish.get("aborted") and finish.get("reason") else None


def _track_incidents(records: Sequence[JournalRecord]) -> dict[str, _Tracked]:
    tracked: dict[str, _Tracked] = {}
    for record in records:
        if record.event == "fault_injected":
            tracked[record.get("incident")] = _injected(record)
            continue
        entry = tracked.get(record.get("incident", ""))
        if entry is None:
            continue
        entry.incident.record_restarts(int(record.get("restart_count") or 0))
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


def _recovery_stats(incidents: Sequence[IncidentResult]) -> RecoveryStats:
    times = sorted(i.recovery_seconds for i in incidents if i.recovery_seconds is not None)
    if not times:
        return RecoveryStats(0, None, None, None)
    p95 = times[max(0, math.ceil(0.95 * len(times)) - 1)]  # nearest rank
    return RecoveryStats(len(times), statistics.median(times), p95, times[-1])


def _availability(records: Sequence[JournalRecord]) -> Availability:
    windows = [r for r in records if r.event == "probe_window"]
    requests = sum(int(r.get("requests", 0)) for r in windows)
    failures = sum(int(r.get("failures", 0)) for r in windows)
    outage = max((float(r.get("longest_outage_seconds", 0.0)) for r in windows), default=0.0)
    ratio = (requests - failures) / requests if requests else None
    maxima = [float(r.get("latency_max_seconds")) for r in windows
              if r.get("latency_max_seconds") is not None]
    stats = latency.percentiles(latency.merge(r.get("latency") or {} for r in windows),
                                max(maxima, default=None))

    def total(kind: str) -> int:
        return sum(int(r.get(kind, 0)) for r in windows)

    def rounded(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds, 6)

    return Availability(requests, failures, ratio, outage, total("http_errors"),
                        total("connection_errors"), total("timeouts"), total("unsent"),
                        rounded(stats.p50), rounded(stats.p90), rounded(stats.p99),
                        rounded(stats.max))


def _slo_checks(
    run: _Run,
    finish: JournalRecord | None,
    dry_run: bool,
    incidents: Sequence[IncidentResult],
    recovery: RecoveryStats,
    availability: Availability,
) -> tuple[SloCheck, ...]:
    checks = [_completed_check(finish, run.watch),
              _recovered_check(incidents, dry_run, run.watch)]
    if dry_run or run.slo is None:
        return tuple(checks)
    if run.slo.max_recovery_seconds is not None:
        checks.append(_recovery_check(run.slo.max_recovery_seconds, incidents, recovery))
    if run.slo.min_availability is not None:
        checks.append(_availability_check(run.slo.min_availability, availability))
    if run.slo.max_scale_out_seconds is not None:
        checks.append(_scale_check("max_scale_out_seconds", run.slo.max_scale_out_seconds,
                                   {i.id: i.recovery_seconds for i in incidents}))
    if run.slo.max_scale_in_seconds is not None:
        checks.append(_scale_check("max_scale_in_seconds", run.slo.max_scale_in_seconds,
                                   {i.id: i.scale_in_seconds for i in incidents}))
    return tuple(checks)


def _scale_check(name: str, limit: float, seconds: Mapping[str, float | None]) -> SloCheck:
    """Scale-out (ready - injected) or scale-in (scaled_in - end of load) of every incident."""
    if not seconds:
        return SloCheck(name, False, f"no incident to measure; need <= {limit} s")
    missing = [key for key, value in seconds.items() if value is None]
    if missing:
        return SloCheck(name, False, f"{len(missing)} incidents never got there (first "
                        f"{missing[0]}); need all <= {limit} s")
    slowest = max(seconds, key=lambda key: seconds[key] or 0.0)
    worst = seconds[slowest] or 0.0
    return SloCheck(name, worst <= limit, f"slowest {worst:.3f} s ({slowest}), need <= {limit} s")


def _completed_check(finish: JournalRecord | None, watch: bool = False) -> SloCheck:
    if finish is None:
        return SloCheck("drill_completed", False, "the run ended without drill_finished")
    if finish.get("aborted"):
        return SloCheck("drill_completed", False, f"aborted: {finish.get('reason') or '?'}")
    return SloCheck("drill_completed", True, "the watch ended" if watch else "every round ran")


def _recovered_check(incidents: Sequence[IncidentResult], dry_run: bool,
                     watch: bool = False) -> SloCheck:
    if not incidents:
        detail = ("dry run: nothing injected" if dry_run else "no disruption seen" if watch
                  else "no fault was injected")
        return SloCheck("all_recovered", dry_run or watch, detail)
    failed = [i for i in incidents if i.recovery_seconds is None]
    if failed:
        worst = failed[0]
        detail = f"{len(failed)} of {len(incidents)} never recovered, first {worst.id} "
        return SloCheck("all_recovered", False, detail + f"({worst.reason or 'no reason'})")
    return SloCheck("all_recovered", True, f"all {len(incidents)} incidents recovered")


def _recovery_check(
    limit: float, incidents: Sequence[IncidentResult], recovery: RecoveryStats
) -> SloCheck:
    name = "max_recovery_seconds"
    missing = sum(1 for i in incidents if i.recovery_seconds is None)
    if not incidents:
        return SloCheck(name, False, f"no incident to measure; need <= {limit} s")
    if recovery.max is None or missing:
        detail = f"{missing} incidents without a recovery time; need all <= {limit} s"
        return SloCheck(name, False, detail)
    slowest = max(incidents, key=lambda i: i.recovery_seconds or 0.0)
    detail = f"slowest recovery {recovery.max:.3f} s ({slowest.id}), need <= {limit} s"
    return SloCheck(name, recovery.max <= limit, detail)


def _availability_check(minimum: float, availability: Availability) -> SloCheck:
    name = "min_availability"
    if availability.ratio is None:
        detail = f"no probe requests recorded, need {minimum}: add spec.probe"
        return SloCheck(name, False, detail)
    detail = (
        f"{availability.ratio:.4f} of {availability.requests} requests succeeded, need "
        f">= {minimum}; longest outage {availability.longest_outage_seconds:.3f} s"
    )
    return SloCheck(name, availability.ratio >= minimum, detail)


def _milliseconds(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)
