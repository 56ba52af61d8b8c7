"""Weak spots of a workload's spec, before any drill (`chaos-drill check`) and as the spec part of
the advice after one: the facts read from the Deployment, its PodDisruptionBudgets and Services
(WorkloadFacts, from raw API objects) and a registry of pure checks over them, each giving a
finding, its evidence and the fix, in the manner of kube-score and Polaris."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Finding:
    """One weak spot: which check, what is wrong, what shows it, and what to change."""

    check: str
    finding: str
    evidence: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class ContainerFacts:
    """What the checks need of one container of the pod template."""

    name: str
    readiness: str | None
    """The readinessProbe as canonical JSON, or None without one."""
    liveness: str | None
    requests: tuple[str, ...] = ()
    """Resources with a request (cpu, memory)."""
    limits: tuple[str, ...] = ()
    pre_stop: bool = False


@dataclass(frozen=True)
class WorkloadFacts:
    """A workload's spec as the checks see it; journalled at a drill's start (workload_facts)."""

    kind: str
    name: str
    namespace: str
    replicas: int
    containers: tuple[ContainerFacts, ...]
    spread: tuple[str, ...] = ()
    """What spreads its pods: 'topologySpreadConstraints on KEY' or 'podAntiAffinity'."""
    pdbs: tuple[str, ...] = ()
    """PodDisruptionBudgets that select its pods."""
    services: tuple[str, ...] = ()
    """Services that select its pods."""

    @property
    def title(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkloadFacts:
        containers = tuple(ContainerFacts(
            name=str(c.get("name", "")), readiness=c.get("readiness"), liveness=c.get("liveness"),
            requests=tuple(c.get("requests") or ()), limits=tuple(c.get("limits") or ()),
            pre_stop=bool(c.get("pre_stop"))) for c in data.get("containers") or ())
        return cls(str(data.get("kind", "")), str(data.get("name", "")),
                   str(data.get("namespace", "")), int(data.get("replicas") or 0), containers,
                   tuple(data.get("spread") or ()), tuple(data.get("pdbs") or ()),
                   tuple(data.get("services") or ()))


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels and matchExpressions) selects LABELS; an empty one
    selects everything, a missing one nothing."""
    if selector is None:
        return False
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or ():
        key, values = expression.get("key", ""), expression.get("values") or []
        operator = expression.get("operator", "")
        held = key in labels
        if ((operator == "In" and labels.get(key) not in values)
                or (operator == "NotIn" and held and labels[key] in values)
                or (operator == "Exists" and not held)
                or (operator == "DoesNotExist" and held)):
            return False
    return True


def _probe(container: Mapping[str, Any], key: str) -> str | None:
    probe = container.get(key)
    return json.dumps(probe, sort_keys=True) if probe else None


def _container_facts(container: Mapping[str, Any]) -> ContainerFacts:
    resources = container.get("resources") or {}
    lifecycle = container.get("lifecycle") or {}
    return ContainerFacts(str(container.get("name", "")), _probe(container, "readinessProbe"),
                          _probe(container, "livenessProbe"),
                          tuple(sorted(resources.get("requests") or {})),
                          tuple(sorted(resources.get("limits") or {})),
                          bool(lifecycle.get("preStop")))


def _spread(pod_spec: Mapping[str, Any]) -> tuple[str, ...]:
    found = [f"topologySpreadConstraints on {c.get('topologyKey', '?')}"
             for c in pod_spec.get("topologySpreadConstraints") or ()]
    if (pod_spec.get("affinity") or {}).get("podAntiAffinity"):
        found.append("podAntiAffinity")
    return tuple(found)


def facts_from_objects(workload: Mapping[str, Any], pdbs: Sequence[Mapping[str, Any]],
                       services: Sequence[Mapping[str, Any]]) -> WorkloadFacts:
    """The facts of WORKLOAD (a raw Deployment, StatefulSet or ReplicaSet, camelCase keys) and
    which of the namespace's PDBS and SERVICES select its pods."""
    meta, spec = workload.get("metadata") or {}, workload.get("spec") or {}
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    pod_spec = template.get("spec") or {}
    replicas = spec.get("replicas")
    return WorkloadFacts(
        kind=str(workload.get("kind") or "Deployment"), name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        replicas=1 if replicas is None else int(replicas),  # the API's default
        containers=tuple(_container_facts(c) for c in pod_spec.get("containers") or ()),
        spread=_spread(pod_spec),
        pdbs=tuple(sorted(p["metadata"]["name"] for p in pdbs
                          if selects((p.get("spec") or {}).get("selector"), labels))),
        services=tuple(sorted(s["metadata"]["name"] for s in services
                              if (s.get("spec") or {}).get("selector")
                              and selects({"matchLabels": s["spec"]["selector"]}, labels))),
    )


Check = Callable[[WorkloadFacts], list[Finding]]


def check_replicas(facts: WorkloadFacts) -> list[Finding]:
    if facts.replicas >= 2:
        return []
    return [Finding("replicas", f"{facts.title} runs {facts.replicas} replica: losing that pod "
                    "(a pod_delete, a drain, a node failure) is an outage",
                    f"spec.replicas: {facts.replicas}",
                    "set spec.replicas to 2 or more (3 keeps 2 serving while one is replaced)")]


def check_pdb(facts: WorkloadFacts) -> list[Finding]:
    if facts.pdbs:
        return []
    return [Finding("pdb", f"{facts.title} has no PodDisruptionBudget: a drain may evict "
                    "all its pods at once", f"no PodDisruptionBudget in namespace "
                    f"{facts.namespace} selects its pods",
                    "add a PodDisruptionBudget with maxUnavailable: 1 selecting its pod labels")]


def check_spread(facts: WorkloadFacts) -> list[Finding]:
    if facts.spread:
        return []
    return [Finding("spread", f"{facts.title} does not spread its pods over nodes: they may all "
                    "land on the node that stops or drains",
                    "no topologySpreadConstraints and no podAntiAffinity in the pod template",
                    "add topologySpreadConstraints (topologyKey: kubernetes.io/hostname, "
                    "maxSkew: 1) or a podAntiAffinity on its own labels")]


def check_readiness(facts: WorkloadFacts) -> list[Finding]:
    return [Finding("readiness", f"container {c.name} of {facts.title} has no readiness probe: "
                    "its pod gets traffic as soon as it starts, and keeps it while it fails",
                    f"container {c.name}: no readinessProbe",
                    "add a readinessProbe that checks the app can serve (e.g. httpGet on /)")
            for c in facts.containers if c.readiness is None]


def check_identical_probes(facts: WorkloadFacts) -> list[Finding]:
    return [Finding("probes-identical", f"container {c.name} of {facts.title} has identical "
                    "liveness and readiness probes: a pod that is only busy is restarted as soon "
                    "as it is taken out of traffic", f"container {c.name}: livenessProbe == "
                    f"readinessProbe ({c.liveness})",
                    "make liveness the cheaper, more tolerant check (its own path, a higher "
                    "failureThreshold) so readiness fails first")
            for c in facts.containers if c.liveness is not None and c.liveness == c.readiness]


RESOURCES_WANTED: tuple[tuple[str, str], ...] = (("requests", "cpu"), ("requests", "memory"),
                                                 ("limits", "memory"))
"""A CPU limit is left out: it throttles a pod that could have used an idle core."""


def check_resources(facts: WorkloadFacts) -> list[Finding]:
    found = []
    for c in facts.containers:
        have = {"requests": c.requests, "limits": c.limits}
        missing = [f"{kind}.{name}" for kind, name in RESOURCES_WANTED if name not in have[kind]]
        if missing:
            found.append(Finding(
                "resources", f"container {c.name} of {facts.title} lacks resource "
                "requests or limits: the scheduler cannot place replacements reliably, and a "
                "neighbour can starve it", f"container {c.name}: no {', '.join(missing)}",
                "set resources.requests (cpu, memory) and resources.limits.memory"))
    return found


def check_pre_stop(facts: WorkloadFacts) -> list[Finding]:
    if not facts.services or any(c.pre_stop for c in facts.containers):
        return []
    return [Finding("prestop", f"{facts.title} backs Service {', '.join(facts.services)} but "
                    "has no preStop hook: a deleted pod stops serving while still in the "
                    "Service's endpoints, so requests fail until they catch up",
                    f"no container has lifecycle.preStop; Service(s) {', '.join(facts.services)} "
                    "select its pods",
                    "add lifecycle.preStop that sleeps a few seconds (e.g. exec sleep 5, or the "
                    "sleep action) and keep terminationGracePeriodSeconds above it")]


CHECKS: Mapping[str, Check] = {
    "replicas": check_replicas, "pdb": check_pdb, "spread": check_spread,
    "readiness": check_readiness, "probes-identical": check_identical_probes,
    "resources": check_resources, "prestop": check_pre_stop,
}
"""Every spec check by its id, in the order findings are listed."""


def spec_findings(facts: WorkloadFacts) -> list[Finding]:
    """Every check's findings for FACTS; none for a hardened workload."""
    return [finding for check in CHECKS.values() for finding in check(facts)]


def finding_lines(findings: Sequence[Finding], title: str) -> list[str]:
    """FINDINGS for a terminal: TITLE with their count, then per finding what, evidence, fix."""
    lines = [f"{title} ({len(findings)}):"] if findings else []
    for finding in findings:
        lines += [f"  [{finding.check}] {finding.finding}", f"      evidence: {finding.evidence}",
                  f"      fix: {finding.fix}"]
    return lines
