"""The summary of a run (summary.json), rebuilt from its journal records alone, so `chaos-drill
report DIR` gives the same summary after a crash as the run itself would have; its parts come
from incidents, availability and slo (the verdict).

Journal events (every record also has `event`, `ts` wall clock ISO and `mono` seconds):

    drill_started    drill: the ChaosDrill object (Drill.to_object()); dry_run: bool
    watch_started    instead of drill_started, for `watch --out`: namespace; workload
    round_started    round: int (from 1)
    fault_injected   incident: "r1-i1" ("o1" when observed); round (0 when observed); fault;
                     namespace; workload; target_pod; target_uid; node; api_time: ISO or null.
                     mono is the injection time.  An incident chaos-drill did not cause also
                     has origin: "observed"; injected_from: the API field api_time came from;
                     timing_uncertainty_seconds: how much later it may have begun; detail.
                     service: the probed Service when its EndpointSlices held the target
                     (the incident then has the traffic phases endpoint_removed/_added).
    phase            incident; phase (a timeline phase); mono: when first seen;
                     api_time: ISO or null; restart_count: int (optional); exit_reason:
                     the container's terminated.reason, once known (in-place restarts);
                     pod: the replacement's name (replacement_created only)
    endpoints        service; in_rotation: the names of the pods it sends traffic to (ready
                     in one of its EndpointSlices), each time that set changes
    k8s_event        reason; object: "Pod/NAME"; message; count.  mono is its arrival; those
                     about an incident's pods between its injection and Ready join it.
    incident_closed  incident; recovered: bool; reason: str (optional);
                     restart_count: int (optional); exit_reason (as in phase);
                     peak_replicas: int (load only)
    kernel_oom_kills target_uid; pod; count: the kernel log's OOM kills in the container
                     oom_kill's hog ran in (joins the last incident on that pod)
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
    workload_facts, placement, workload: read for the advice (chaos.results.evidence)

Other event types (selection logs, notes) are ignored here. An incident that is never closed
(a crash) has recovery_seconds null and fails the drill, as does a drill that never finished.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from chaos.drill.loading import drill_from_object
from chaos.drill.spec import Drill, Slo
from chaos.errors import ChaosDrillError
from chaos.results.advice import advice_of
from chaos.results.availability import Availability, availability_of
from chaos.results.incidents import IncidentResult, RecoveryStats, incident_results, recovery_stats
from chaos.results.journal import JournalRecord
from chaos.results.slo import SloCheck, slo_checks
from chaos.results.weak_spots import Finding


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
    advice: tuple[Finding, ...] = ()
    """What would have made recovery faster or kept requests from failing, with this run's
    evidence (chaos.results.advice): check, finding, evidence, fix."""

    def to_dict(self) -> dict[str, Any]:
        """Exactly what summary.json holds (lists, not tuples)."""
        data: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return data


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
    incidents = incident_results(records, run.drill)
    recovery = recovery_stats(incidents)
    availability = availability_of(records)
    dry_run = bool(start.get("dry_run", False))
    checks = slo_checks(run.slo, run.watch, finish, dry_run, incidents, recovery, availability)
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
        advice=advice_of(records, incidents, run.fault,
                         run.drill.fault.grace_period_seconds if run.drill else None),
    )


def _abort_reason(finish: JournalRecord | None) -> str | None:
    if finish is None:
        return "the journal ends without drill_finished: the run crashed or was killed"
    return str(finish.get("reason")) if finish.get("aborted") and finish.get("reason") else None


