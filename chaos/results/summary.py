"""The verdict of a run, rebuilt from its journal records alone, so `chaos-drill report DIR`
gives the same summary after a crash as the run itself would have.

Journal events (every record also has `event`, `ts` wall clock ISO and `mono` seconds):

    drill_started    drill: the ChaosDrill object (Drill.to_object()); dry_run: bool
    round_started    round: int (from 1)
    fault_injected   incident: "r1-i1"; round; fault; namespace; workload; target_pod;
                     target_uid; node; api_time: ISO or null.  mono is the injection time.
    phase            incident; phase (a timeline phase); mono: when first seen;
                     api_time: ISO or null; restart_count: int (optional)
    incident_closed  incident; recovered: bool; reason: str (optional);
                     restart_count: int (optional); peak_replicas: int (load only)
    probe_window     seconds: window length; requests; failures: in this window;
                     longest_outage_seconds: the prober's running maximum since it started,
                     counting an outage still in progress up to now
    drill_finished   aborted: bool; reason: str (optional)

Other event types (selection logs, notes) are ignored here. An incident that is never closed
(a crash) has recovery_seconds null and fails the drill, as does a drill that never finished.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from chaos.errors import ChaosDrillError
from chaos.fault_types import Follow
from chaos.results.journal import JournalRecord
from chaos.spec import Drill, drill_from_object
from chaos.timeline import Incident, scale_in_seconds


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


def build_summary(records: Sequence[JournalRecord]) -> Summary:
    """The summary of the run whose journal records these are."""
    start = next((r for r in records if r.event == "drill_started"), None)
    if start is None:
        raise ChaosDrillError("journal has no drill_started record: is it a chaos-drill journal?")
    drill = drill_from_object(start.get("drill", {}))
    finish = next((r for r in records if r.event == "drill_finished"), None)
    incidents = tuple(_incident_result(t, drill) for t in _track_incidents(records).values())
    recovery = _recovery_stats(incidents)
    availability = _availability(records)
    dry_run = bool(start.get("dry_run", False))
    checks = _slo_checks(drill, finish, dry_run, incidents, recovery, availability)
    return Summary(
        drill=drill.name,
        namespace=drill.namespace,
        fault=drill.fault.type,
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
        elif record.event == "incident_closed":
            entry.closed, entry.reason = True, record.get("reason")
            entry.incident.peak_replicas = int(record.get("peak_replicas") or 0)
            entry.recovered = bool(record.get("recovered", False))
    return tracked


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
    )
    incident.mark("injected", record.mono, _api_time(record))
    return _Tracked(incident, record.ts)


def _api_time(record: JournalRecord) -> datetime | None:
    value = record.get("api_time")
    return datetime.fromisoformat(value) if value else None


def _incident_result(entry: _Tracked, drill: Drill) -> IncidentResult:
    incident = entry.incident
    autoscaled = incident.follow is Follow.AUTOSCALE
    check = incident.api_cross_check()
    recovered = entry.closed and entry.recovered
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
        scale_in_seconds=_milliseconds(scale_in_seconds(incident, drill)) if autoscaled else None,
        peak_replicas=incident.peak_replicas if autoscaled else None,
    )


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
    return Availability(requests, failures, ratio, outage)


def _slo_checks(
    drill: Drill,
    finish: JournalRecord | None,
    dry_run: bool,
    incidents: Sequence[IncidentResult],
    recovery: RecoveryStats,
    availability: Availability,
) -> tuple[SloCheck, ...]:
    checks = [_completed_check(finish), _recovered_check(incidents, dry_run)]
    if dry_run:
        return tuple(checks)
    if drill.slo.max_recovery_seconds is not None:
        checks.append(_recovery_check(drill.slo.max_recovery_seconds, incidents, recovery))
    if drill.slo.min_availability is not None:
        checks.append(_availability_check(drill.slo.min_availability, availability))
    if drill.slo.max_scale_out_seconds is not None:
        checks.append(_scale_check("max_scale_out_seconds", drill.slo.max_scale_out_seconds,
                                   {i.id: i.recovery_seconds for i in incidents}))
    if drill.slo.max_scale_in_seconds is not None:
        checks.append(_scale_check("max_scale_in_seconds", drill.slo.max_scale_in_seconds,
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


def _completed_check(finish: JournalRecord | None) -> SloCheck:
    if finish is None:
        return SloCheck("drill_completed", False, "the run ended without drill_finished")
    if finish.get("aborted"):
        return SloCheck("drill_completed", False, f"aborted: {finish.get('reason') or '?'}")
    return SloCheck("drill_completed", True, "every round ran")


def _recovered_check(incidents: Sequence[IncidentResult], dry_run: bool) -> SloCheck:
    if not incidents:
        detail = "dry run: nothing injected" if dry_run else "no fault was injected"
        return SloCheck("all_recovered", dry_run, detail)
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
