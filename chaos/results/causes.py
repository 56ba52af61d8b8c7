"""Why a recovery phase was slow: the Kubernetes events that fall inside an incident and concern
its pods, matched against a few rules (a BackOff event means the kubelet's CrashLoopBackOff held
the restart back). Pure: the summary, the report and both live views call the same function."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SLOW_PHASE_SECONDS = 2.0
"""A phase shorter than this needs no explanation: one failed readiness probe of a 1 s period
is ordinary, not slow, and naming it on every restart would drown the causes that matter."""


@dataclass(frozen=True)
class IncidentEvent:
    """A Kubernetes event about one of the incident's pods, seconds after injection."""

    at: float
    reason: str
    pod: str
    message: str = ""
    count: int = 1


@dataclass(frozen=True)
class Rule:
    """Events with REASON (and, if given, a message containing HINT) can hold back PHASES."""

    reason: str
    phases: tuple[str, ...]
    what: str
    hint: str = ""


RULES: tuple[Rule, ...] = (
    Rule("BackOff", ("restarted",), "CrashLoopBackOff", "restarting failed container"),
    Rule("BackOff", ("started",), "an image pull back-off", "pulling image"),
    Rule("FailedScheduling", ("scheduled",), "FailedScheduling"),
    Rule("FailedCreatePodSandBox", ("started",), "a failed pod sandbox"),
    Rule("FailedMount", ("started",), "a volume that failed to mount"),
    Rule("Failed", ("started", "restarted"), "a failed container start"),
    Rule("Unhealthy", ("ready",), "a failing readiness probe", "Readiness probe"),
    Rule("Unhealthy", ("container_exited",), "a failing liveness probe", "Liveness probe"),
    Rule("Evicted", ("target_gone",), "an eviction"),
    Rule("Preempting", ("target_gone",), "preemption"),
)

VERBS: Mapping[str, str] = {
    "target_gone": "target's going", "replacement_created": "replacement",
    "scheduled": "scheduling", "started": "start", "container_exited": "container exit",
    "restarted": "restart", "ready": "Ready", "node_not_ready": "node's NotReady",
    "replicas_created": "new replicas",
}


@dataclass(frozen=True)
class Cause:
    """One slow phase and the event that explains it."""

    phase: str
    seconds: float
    reason: str
    event_at: float
    text: str


def _matches(rule: Rule, phase: str, event: IncidentEvent) -> bool:
    return (event.reason == rule.reason and phase in rule.phases
            and rule.hint.lower() in event.message.lower())


def slow_phase_causes(phases: Mapping[str, float], events: Sequence[IncidentEvent],
                      slow_seconds: float = SLOW_PHASE_SECONDS) -> list[Cause]:
    """For each phase (seconds after injection, in phase order) that took at least SLOW_SECONDS
    since the one before, the first event up to its end that a rule ties to it."""
    causes: list[Cause] = []
    reached = list(phases.items())
    for (_, previous), (phase, at) in zip(reached, reached[1:], strict=False):
        took = at - previous
        if took < slow_seconds:
            continue
        for event in sorted(events, key=lambda e: e.at):
            rule = next((r for r in RULES if _matches(r, phase, event)), None)
            if rule is not None and event.at <= at:
                causes.append(_cause(phase, took, rule, event))
                break
    return causes


def open_phase_cause(next_phase: str, waited: float, events: Sequence[IncidentEvent],
                     slow_seconds: float = SLOW_PHASE_SECONDS) -> Cause | None:
    """While an incident still waits for NEXT_PHASE (WAITED seconds so far), what holds it."""
    if waited < slow_seconds:
        return None
    for event in sorted(events, key=lambda e: e.at):
        rule = next((r for r in RULES if _matches(r, next_phase, event)), None)
        if rule is not None:
            return _cause(next_phase, waited, rule, event)
    return None


def _cause(phase: str, took: float, rule: Rule, event: IncidentEvent) -> Cause:
    verb = VERBS.get(phase, phase)
    text = (f"{verb} delayed {took:.1f} s by {rule.what} "
            f"({event.reason} event at +{event.at:.1f} s)")
    return Cause(phase, round(took, 3), event.reason, round(event.at, 3), text)


def causes_of(phases: Mapping[str, float], expected: Sequence[str],
              events: Sequence[IncidentEvent], waiting: float | None = None) -> list[Cause]:
    """Every slow phase's cause; with WAITING (seconds after injection, for an incident not yet
    recovered) also what holds the next EXPECTED phase it still waits for."""
    causes = slow_phase_causes(phases, events)
    pending = [p for p in expected if p not in phases]
    if waiting is not None and pending and phases:
        since = max(phases.values())
        held = open_phase_cause(pending[0], waiting - since, events)
        if held is not None:
            causes.append(held)
    return causes
