"""What a run's journal shows about each incident, in the small model the advice rules read
(chaos.results.advice): where the workload's pods were when it began, how many stayed Ready,
when requests failed, and the workload's spec at the start (journal event workload_facts).

Journal events read here besides the summary's (summary.py documents those):

    workload_facts   facts: WorkloadFacts.to_dict() of the target, read as the drill starts
    placement        round; pods: [{name, node, ready}], the target's pods as the round began
    workload         ready; desired: the workload's replicas as they changed
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from chaos.results.incidents import IncidentResult
from chaos.results.journal import JournalRecord
from chaos.results.weak_spots import WorkloadFacts

SETTLE_SECONDS = 1.0
"""Failures up to this long after Ready still count for an incident: the Service's endpoints
and kube-proxy follow the Ready condition a moment later."""


@dataclass(frozen=True)
class PodPlace:
    name: str
    node: str
    ready: bool


@dataclass(frozen=True)
class IncidentEvidence:
    """One incident and what the run saw around it; times are seconds after its injection."""

    result: IncidentResult
    placement: tuple[PodPlace, ...] = ()
    """The workload's pods (not being deleted) as its round began; empty if not journalled."""
    failures: tuple[float, ...] = ()
    """Each failed probe slot from injection until SETTLE_SECONDS after Ready."""
    ready_counts: tuple[tuple[float, int], ...] = ()
    """The workload's Ready replicas: the count at injection (at 0.0), then each change."""
    span: float = 0.0
    """From injection to the end of what is counted (Ready + SETTLE_SECONDS, or the end)."""
    failures_while_ready: tuple[float, ...] = field(default=())
    """The failures at moments when at least one replica was Ready, if others_ready > 0."""
    others_ready: int = 0
    """Pods Ready as its round began that no fault of the round hit."""

    @property
    def id(self) -> str:
        return self.result.id

    def ready_at(self, offset: float) -> int | None:
        """Ready replicas at OFFSET; None when the journal holds no count."""
        times = [at for at, _ in self.ready_counts]
        index = bisect_right(times, offset) - 1
        return self.ready_counts[index][1] if index >= 0 else None

    def min_ready(self) -> int | None:
        counts = [count for at, count in self.ready_counts if at <= self.span]
        return min(counts) if counts else None

    def seconds_without_ready(self) -> float:
        """How long no replica was Ready, from injection to the end of the span."""
        total = 0.0
        edges = [*self.ready_counts, (self.span, -1)]
        for (at, count), (until, _) in zip(edges, edges[1:], strict=False):
            if count == 0:
                total += max(0.0, min(until, self.span) - at)
        return round(total, 3)


@dataclass(frozen=True)
class Evidence:
    """Everything the advice rules read about one run."""

    fault: str
    facts: WorkloadFacts | None
    incidents: tuple[IncidentEvidence, ...]
    probed: bool
    grace_period_seconds: int | None = None


def _failure_times(records: Sequence[JournalRecord]) -> list[float]:
    """Each failed probe slot's scheduled moment on the run's monotonic clock."""
    times: list[float] = []
    for record in records:
        if record.event != "probe_window" or not record.get("failures"):
            continue
        seconds, start = float(record.get("seconds", 1.0)), float(record.get("start_seconds", 0))
        slot_zero = record.mono - seconds - start
        failed_at = record.get("failed_at")
        if failed_at:
            times += [slot_zero + float(at) for at, _ in failed_at]
        else:  # older journals: each failure at the window's start
            times += [record.mono - seconds] * int(record.get("failures", 0))
    return sorted(times)


def _ready_counts(records: Sequence[JournalRecord], injected: float,
                  span: float) -> tuple[tuple[float, int], ...]:
    changes = [(r.mono - injected, int(r.get("ready", 0))) for r in records
               if r.event == "workload"]
    before = [count for at, count in changes if at <= 0]
    counts = [(0.0, before[-1])] if before else []
    counts += [(round(at, 3), count) for at, count in changes if 0 < at <= span]
    return tuple(counts)


def _placements(records: Sequence[JournalRecord]) -> dict[int, tuple[PodPlace, ...]]:
    return {int(r.get("round", 0)): tuple(PodPlace(str(p.get("name", "")), str(p.get("node", "")),
                                                   bool(p.get("ready")))
                                          for p in r.get("pods") or ())
            for r in records if r.event == "placement"}


def _incident_evidence(result: IncidentResult, injected: float, end: float,
                       failures: Sequence[float], records: Sequence[JournalRecord],
                       placement: tuple[PodPlace, ...], hit: set[str]) -> IncidentEvidence:
    ready = result.phases.get("ready")
    span = round((ready + SETTLE_SECONDS) if ready is not None else max(0.0, end - injected), 3)
    mine = tuple(round(t - injected, 3) for t in failures if 0 <= t - injected <= span)
    counts = _ready_counts(records, injected, span)
    others = sum(1 for p in placement if p.ready and p.name not in hit)
    evidence = IncidentEvidence(result, placement, mine, counts, span)
    # the count includes the victim until its controller notices, so 'others' must be there too
    while_ready = tuple(t for t in mine if others and (evidence.ready_at(t) or 0) >= 1)
    return IncidentEvidence(result, placement, mine, counts, span, while_ready, others)


def evidence_from(records: Sequence[JournalRecord], incidents: Sequence[IncidentResult],
                  fault: str, grace_period_seconds: int | None = None) -> Evidence:
    """The evidence of the run whose journal RECORDS are, with its INCIDENTS as summarised."""
    facts_record = next((r for r in records if r.event == "workload_facts"), None)
    facts = WorkloadFacts.from_dict(facts_record.get("facts") or {}) if facts_record else None
    injected = {str(r.get("incident")): r.mono for r in records if r.event == "fault_injected"}
    end = max((r.mono for r in records), default=0.0)
    failures = _failure_times(records)
    placements = _placements(records)
    hit: dict[int, set[str]] = {}
    for incident in incidents:
        hit.setdefault(incident.round, set()).add(incident.target_pod)
    found = tuple(
        _incident_evidence(i, injected[i.id], end, failures, records,
                           placements.get(i.round, ()), hit[i.round])
        for i in incidents if i.id in injected and i.origin == "injected")
    probed = any(r.event == "probe_started" for r in records)
    return Evidence(fault, facts, found, probed, grace_period_seconds)
