"""Advice after a drill: what would have made recovery faster or kept requests from failing,
each with its evidence from this run. Each rule is a pure function over the run's Evidence
(chaos.results.evidence) returning at most one Finding; RULES lists them in the order shown."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from chaos.results.causes import SLOW_PHASE_SECONDS
from chaos.results.evidence import Evidence, IncidentEvidence, evidence_from
from chaos.results.incidents import IncidentResult
from chaos.results.journal import JournalRecord
from chaos.results.weak_spots import Finding

Rule = Callable[[Evidence], Finding | None]

POD_LOSS_FAULTS = ("pod_delete", "node_drain", "node_stop", "container_kill", "liveness_break")
"""Faults that take a serving pod away for a while (not scale or load)."""

NODE_FAULTS = ("node_drain", "node_stop")
RESTART_FAULTS = ("container_kill", "liveness_break")
BACK_OFF_HINT = "back-off"
"""The kubelet's BackOff message for a crash loop: 'Back-off restarting failed container'."""


def _s(seconds: float) -> str:
    return f"{seconds:.1f} s"


def _failed(incident: IncidentEvidence, times: Sequence[float] | None = None) -> str:
    """e.g. '37 requests failed from +0.1 s to +3.9 s'."""
    times = incident.failures if times is None else times
    if not times:
        return "no request failed"
    return (f"{len(times)} request{'s' if len(times) > 1 else ''} failed from "
            f"+{times[0]:.1f} s to +{times[-1]:.1f} s")


def _verb(fault: str) -> str:
    return {"node_drain": "drained", "node_stop": "stopped"}.get(fault, fault)


def rule_one_replica(evidence: Evidence) -> Finding | None:
    """One replica: every pod lost was an outage; the longest time with no Ready pod."""
    single = [i for i in evidence.incidents if i.result.fault in POD_LOSS_FAULTS
              and (len(i.placement) == 1 or (not i.placement and evidence.facts is not None
                                             and evidence.facts.replicas == 1))]
    if not single:
        return None
    worst = max(single, key=lambda i: i.seconds_without_ready())
    outage = worst.seconds_without_ready()
    traffic = f"; {_failed(worst)}" if evidence.probed else ""
    return Finding(
        "replicas", f"one replica: each of the {len(single)} {worst.result.fault} incident(s) "
        "left no pod to serve", f"{worst.id}: {worst.result.target_pod} was the only pod; no "
        f"pod was Ready for {_s(outage)}{traffic}",
        "run 2 or more replicas (spec.replicas: 3 keeps 2 serving while one is replaced)")


def rule_same_node(evidence: Evidence) -> Finding | None:
    """Every pod on the node that stopped or drained: no Ready pod until they moved."""
    for incident in evidence.incidents:
        pods = incident.placement
        if (incident.result.fault in NODE_FAULTS and len(pods) >= 2
                and all(p.node == incident.result.node for p in pods)):
            return Finding(
                "spread", f"all {len(pods)} pods were on one node when it was "
                f"{_verb(incident.result.fault)}",
                f"{incident.id}: {', '.join(p.name for p in pods)} all ran on "
                f"{incident.result.node}; no pod was Ready for "
                f"{_s(incident.seconds_without_ready())}",
                "spread the pods over nodes: topologySpreadConstraints (topologyKey: "
                "kubernetes.io/hostname, maxSkew: 1) or a podAntiAffinity on their labels")
    return None


def rule_drain_without_pdb(evidence: Evidence) -> Finding | None:
    """A drain evicted several pods at once because no PodDisruptionBudget held it back."""
    if evidence.facts is None or evidence.facts.pdbs:
        return None
    by_round: dict[int, list[IncidentEvidence]] = {}
    for incident in evidence.incidents:
        if incident.result.fault == "node_drain":
            by_round.setdefault(incident.result.round, []).append(incident)
    for round_number, evicted in sorted(by_round.items()):
        if len(evicted) < 2:
            continue
        total = len(evicted[0].placement) or evidence.facts.replicas
        counts = [c for c in (i.min_ready() for i in evicted) if c is not None]
        fewest = min(counts, default=None)
        ready = "" if fewest is None else f"; Ready replicas fell to {fewest}"
        return Finding(
            "pdb", f"the drain evicted {len(evicted)} of {total} pods at once: no "
            "PodDisruptionBudget", f"round {round_number}: "
            f"{', '.join(i.result.target_pod for i in evicted)} evicted from "
            f"{evicted[0].result.node} without waiting for replacements{ready}",
            "add a PodDisruptionBudget (maxUnavailable: 1) selecting the pods, so a drain "
            "evicts the next pod only once its replacement is Ready")
    return None


def rule_traffic_to_gone_pod(evidence: Evidence) -> Finding | None:
    """Requests failed while other replicas were Ready: traffic still went to the gone pod."""
    if not evidence.probed:
        return None
    hit = [i for i in evidence.incidents if i.result.fault in POD_LOSS_FAULTS
           and i.failures_while_ready]
    if not hit:
        return None
    worst = max(hit, key=lambda i: len(i.failures_while_ready))
    times = worst.failures_while_ready
    grace = evidence.grace_period_seconds
    note = (" (the drill deletes with gracePeriodSeconds 0, which skips preStop as a crash "
            "would: readiness alone moves traffic then)" if grace == 0 else "")
    return Finding(
        "endpoints", "requests failed while other pods were Ready: the Service still sent "
        "traffic to the pod that was going",
        f"{worst.id}: {_failed(worst, times)} after {worst.result.target_pod} was hit, while "
        f"{worst.others_ready} other pod(s) were Ready",
        "give the pod a readinessProbe with a short period and a lifecycle.preStop sleep of a "
        f"few seconds, so it leaves the endpoints before it stops serving{note}")


def rule_no_readiness(evidence: Evidence) -> Finding | None:
    """No readiness probe, and requests failed once a replacement had started."""
    facts = evidence.facts
    if not evidence.probed or facts is None or all(c.readiness for c in facts.containers):
        return None
    for incident in evidence.incidents:
        started = incident.result.phases.get("started", incident.result.phases.get("restarted"))
        late = [t for t in incident.failures if started is not None and t >= started]
        if late:
            bare = ", ".join(c.name for c in facts.containers if not c.readiness)
            return Finding(
                "readiness", "no readiness probe: pods got traffic before they could serve",
                f"{incident.id}: {_failed(incident, late)}, after the container started at "
                f"+{started:.1f} s; container {bare} has no readinessProbe, so it counted as "
                "Ready on start", "add a readinessProbe that checks the app answers")
    return None


def rule_identical_probes(evidence: Evidence) -> Finding | None:
    """Liveness and readiness are the same check, and this run restarted a container."""
    facts = evidence.facts
    if facts is None:
        return None
    same = [c.name for c in facts.containers if c.liveness and c.liveness == c.readiness]
    restarted = [i for i in evidence.incidents if i.result.fault in RESTART_FAULTS
                 and "restarted" in i.result.phases]
    if not same or not restarted:
        return None
    incident = restarted[0]
    phases = incident.result.phases
    return Finding(
        "probes-identical", "liveness and readiness probes are identical: a failing check "
        "restarts the container instead of only taking it out of traffic",
        f"{incident.id}: container {', '.join(same)} restarted at +{phases['restarted']:.1f} s "
        f"and was Ready again at +{phases.get('ready', incident.span):.1f} s; its two probes "
        "are the same check", "make liveness the more tolerant check (its own path, a higher "
        "failureThreshold) so readiness fails first and a busy pod is not restarted")


def rule_crash_loop(evidence: Evidence) -> Finding | None:
    """A restart was held back by the kubelet's CrashLoopBackOff."""
    for incident in evidence.incidents:
        phases = incident.result.phases
        back_off = next((e for e in incident.result.events if e.get("reason") == "BackOff"
                         and BACK_OFF_HINT in str(e.get("message", "")).lower()), None)
        if back_off is None or "container_exited" not in phases:
            continue
        waited = phases.get("restarted", incident.span) - phases["container_exited"]
        if waited < SLOW_PHASE_SECONDS:
            continue
        return Finding(
            "crash-loop", "a container restarted into CrashLoopBackOff, so its restart was "
            "slow", f"{incident.id}: the restart waited {_s(waited)} after the container "
            f"exited (BackOff event at +{float(back_off.get('at', 0)):.1f} s: "
            f"{back_off.get('message', '')})",
            "the kubelet's back-off doubles from 10 s up to 5 min while a container keeps "
            "exiting within 10 min of its start: space rounds further apart (intervalSeconds) "
            "or fix why it exits")
    return None


RULES: Mapping[str, Rule] = {
    "replicas": rule_one_replica, "spread": rule_same_node, "pdb": rule_drain_without_pdb,
    "endpoints": rule_traffic_to_gone_pod, "readiness": rule_no_readiness,
    "probes-identical": rule_identical_probes, "crash-loop": rule_crash_loop,
}


def advise(evidence: Evidence) -> tuple[Finding, ...]:
    """Every rule's finding for EVIDENCE, in RULES' order."""
    return tuple(f for rule in RULES.values() if (f := rule(evidence)) is not None)


def advice_of(records: Sequence[JournalRecord], incidents: Sequence[IncidentResult], fault: str,
              grace_period_seconds: int | None = None) -> tuple[Finding, ...]:
    """The advice for the run whose journal RECORDS are."""
    return advise(evidence_from(records, incidents, fault, grace_period_seconds))
