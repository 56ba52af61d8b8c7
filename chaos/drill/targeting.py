"""Which pods a drill may hit: a chain of pure filters over a pod list (opt-in, namespace,
protection, selector, phase, age), then a seeded pick capped by the blast radius."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from chaos.errors import SpecError

if TYPE_CHECKING:
    from kubernetes.client import V1Pod

    from chaos.drill.spec import Drill

OPT_IN_LABEL = "chaosdrill.dev/allow"
"""Only pods carrying this label with the value "true" are ever targets."""
PROTECTED_NAMESPACES: tuple[str, ...] = ("kube-system",)
OWN_LABEL = ("app.kubernetes.io/name", "chaos-drill")
"""The label of chaos-drill's own pods (operator, prober), which are never targets."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PodInfo:
    """The few facts about a pod that targeting and the timeline need (hashable: labels are
    left out of the hash, not out of equality)."""

    namespace: str
    name: str
    uid: str
    labels: Mapping[str, str] = field(hash=False)
    phase: str
    deleting: bool
    created_at: datetime
    node: str
    ready: bool
    owner_kind: str
    owner_name: str
    containers: tuple[str, ...]

    @classmethod
    def from_api(cls, pod: V1Pod) -> PodInfo:
        """From a kubernetes-client V1Pod, as returned by list and watch calls."""
        meta, spec, status = pod.metadata, pod.spec, pod.status
        owners = meta.owner_references or []
        owner = next((ref for ref in owners if ref.controller), owners[0] if owners else None)
        conditions = (status.conditions if status else None) or []
        return cls(
            namespace=meta.namespace or "",
            name=meta.name or "",
            uid=meta.uid or "",
            labels=dict(meta.labels or {}),
            phase=(status.phase if status else None) or "Unknown",
            deleting=meta.deletion_timestamp is not None,
            created_at=meta.creation_timestamp or _EPOCH,
            node=(spec.node_name if spec else None) or "",
            ready=any(c.type == "Ready" and c.status == "True" for c in conditions),
            owner_kind=owner.kind if owner else "",
            owner_name=owner.name if owner else "",
            containers=tuple(c.name for c in (spec.containers if spec else None) or []),
        )

    @classmethod
    def from_dict(cls, pod: Mapping[str, Any]) -> PodInfo:
        """From a pod as raw JSON (camelCase keys), e.g. a watch event's object."""
        meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
        owners = meta.get("ownerReferences") or []
        owner = next((ref for ref in owners if ref.get("controller")), owners[0] if owners else {})
        conditions = status.get("conditions") or []
        created = meta.get("creationTimestamp")
        return cls(
            namespace=meta.get("namespace", ""),
            name=meta.get("name", ""),
            uid=meta.get("uid", ""),
            labels=dict(meta.get("labels") or {}),
            phase=status.get("phase") or "Unknown",
            deleting=meta.get("deletionTimestamp") is not None,
            created_at=datetime.fromisoformat(created) if created else _EPOCH,
            node=spec.get("nodeName") or "",
            ready=any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions),
            owner_kind=owner.get("kind", ""),
            owner_name=owner.get("name", ""),
            containers=tuple(c["name"] for c in spec.get("containers") or []),
        )

    @property
    def available(self) -> bool:
        """Running, Ready and not being deleted: the pod serves traffic."""
        return self.phase == "Running" and self.ready and not self.deleting


def filter_namespace(pods: Sequence[PodInfo], namespace: str) -> list[PodInfo]:
    """Keep pods in namespace."""
    return [pod for pod in pods if pod.namespace == namespace]


def filter_not_protected(pods: Sequence[PodInfo]) -> list[PodInfo]:
    """Drop kube-system pods and chaos-drill's own pods, whatever their labels say."""
    key, value = OWN_LABEL
    return [
        pod
        for pod in pods
        if pod.namespace not in PROTECTED_NAMESPACES and pod.labels.get(key) != value
    ]


def filter_selector(pods: Sequence[PodInfo], match_labels: Mapping[str, str]) -> list[PodInfo]:
    """Keep pods whose labels include every key and value of match_labels."""
    return [
        pod
        for pod in pods
        if all(pod.labels.get(key) == value for key, value in match_labels.items())
    ]


def filter_opted_in(pods: Sequence[PodInfo]) -> list[PodInfo]:
    """Keep pods labelled chaosdrill.dev/allow=true."""
    return [pod for pod in pods if pod.labels.get(OPT_IN_LABEL) == "true"]


def pods_on_node(pods: Sequence[PodInfo], node: str) -> list[PodInfo]:
    """For node faults: the opted-in pods on NODE that serve traffic, by name."""
    on_node = [pod for pod in filter_opted_in(pods) if pod.node == node and pod.available]
    return sorted(on_node, key=lambda pod: pod.name)


def check_node(node: str | None, existing: Sequence[str]) -> None:
    """A one-line SpecError when spec.fault.node is set to a node the cluster does not have."""
    if node is not None and node not in existing:
        raise SpecError(f"spec.fault.node {node} does not exist: use one of "
                        f"{', '.join(sorted(existing)) or '(no nodes)'}, or leave it out")


def filter_running(pods: Sequence[PodInfo]) -> list[PodInfo]:
    """Keep pods in phase Running that are not being deleted."""
    return [pod for pod in pods if pod.phase == "Running" and not pod.deleting]


def filter_min_age(
    pods: Sequence[PodInfo], min_age_seconds: float, now: datetime
) -> list[PodInfo]:
    """Keep pods created at least min_age_seconds before now (the injected clock)."""
    return [pod for pod in pods if (now - pod.created_at).total_seconds() >= min_age_seconds]


@dataclass(frozen=True)
class TargetingParams:
    """What select_targets needs from a drill, with the workload's selector already resolved."""

    namespace: str
    match_labels: Mapping[str, str] = field(hash=False)
    count: int
    max_unavailable: int
    min_age_seconds: float = 0.0

    @classmethod
    def for_drill(
        cls, drill: Drill, workload_labels: Mapping[str, str] | None = None
    ) -> TargetingParams:
        """Params for drill; workload_labels are the matchLabels of the workload it names."""
        labels = drill.target.match_labels if drill.target.name is None else workload_labels
        if not labels:
            raise ValueError(f"drill {drill.name} names a workload: pass its matchLabels")
        return cls(
            namespace=drill.namespace,
            match_labels=dict(labels),
            count=drill.fault.count,
            max_unavailable=drill.max_unavailable,
            min_age_seconds=drill.min_age_seconds,
        )


@dataclass(frozen=True)
class FilterStep:
    """One filter of the chain and how many pods it let through."""

    name: str
    before: int
    after: int

    @property
    def removed(self) -> int:
        return self.before - self.after


@dataclass(frozen=True)
class Selection:
    """The outcome of select_targets, complete enough to log as a dry run."""

    considered: int
    steps: tuple[FilterStep, ...]
    candidates: tuple[PodInfo, ...]
    unavailable: int
    limit: int
    victims: tuple[PodInfo, ...]

    def removed(self) -> dict[str, int]:
        """Pods removed by each filter, in chain order."""
        return {step.name: step.removed for step in self.steps}

    def describe(self) -> list[str]:
        """Human-readable lines: the chain, the blast-radius cap and the victims."""
        lines = [f"{self.considered} pods considered"]
        lines += [f"{step.name}: removed {step.removed}, {step.after} left" for step in self.steps]
        lines.append(f"{self.unavailable} matching pods already unavailable; limit {self.limit}")
        lines += [f"victim {pod.namespace}/{pod.name} on {pod.node or '?'}" for pod in self.victims]
        return lines


def select_targets(
    pods: Sequence[PodInfo], params: TargetingParams, rng: random.Random, now: datetime
) -> Selection:
    """Run the filter chain and pick victims with rng.

    At most min(count, max_unavailable - already unavailable) pods are picked, where
    "already unavailable" counts the selected workload's pods that are not Running and Ready,
    so a drill never takes more than max_unavailable pods down at once.
    """
    workload_pods, workload_steps = _run_chain(
        pods,
        [
            ("namespace", lambda p: filter_namespace(p, params.namespace)),
            ("protected", filter_not_protected),
            ("selector", lambda p: filter_selector(p, params.match_labels)),
        ],
    )
    eligible, eligible_steps = _run_chain(
        workload_pods,
        [
            ("opt_in", filter_opted_in),
            ("running", filter_running),
            ("min_age", lambda p: filter_min_age(p, params.min_age_seconds, now)),
        ],
    )
    unavailable = sum(1 for pod in workload_pods if not pod.available)
    limit = max(0, min(params.count, params.max_unavailable - unavailable))
    candidates = sorted(eligible, key=lambda pod: (pod.name, pod.uid))
    victims = rng.sample(candidates, min(limit, len(candidates)))
    steps = (*workload_steps, *eligible_steps)
    return Selection(len(pods), steps, tuple(candidates), unavailable, limit, tuple(victims))


_Filter = Callable[[Sequence[PodInfo]], list[PodInfo]]


def _run_chain(
    pods: Sequence[PodInfo], chain: Sequence[tuple[str, _Filter]]
) -> tuple[list[PodInfo], list[FilterStep]]:
    steps: list[FilterStep] = []
    remaining = list(pods)
    for name, keep in chain:
        kept = keep(remaining)
        steps.append(FilterStep(name, len(remaining), len(kept)))
        remaining = kept
    return remaining, steps
