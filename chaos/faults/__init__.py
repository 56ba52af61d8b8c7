"""Fault types, one module each, behind one small interface.

A fault names the incidents it opens (`targets`), then acts on each (`act`), and undoes what
it changed (`restore`). Dry runs never reach `act`: the runner decides at the last step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from chaos.cluster.base import ClusterProvider, Progress
from chaos.kube import Workload
from chaos.spec import Drill
from chaos.targeting import PodInfo


@dataclass
class FaultContext:
    """What a fault may use: the API, the provider (for node runtimes) and the drill."""

    api: Any
    provider: ClusterProvider
    drill: Drill
    workload: Workload
    say: Progress
    pod_status: dict[str, dict[str, Any]]
    """Current raw pods by UID, kept up to date by the pod watch."""


@dataclass(frozen=True)
class FaultTarget:
    """One incident to open: the pod it is about (if any) and how the tracker follows it."""

    pod: PodInfo | None
    node: str
    follow: str
    """replacement, restart or scale."""
    replicas: int = 0


class Fault(Protocol):
    def targets(self, ctx: FaultContext, victims: Sequence[PodInfo]) -> list[FaultTarget]: ...

    def act(self, ctx: FaultContext, target: FaultTarget) -> str: ...

    def restore(self, ctx: FaultContext) -> None: ...


def fault_for(fault_type: str) -> Fault:
    from chaos.faults import container_kill, liveness_break, node_drain, pod_delete, scale

    faults: dict[str, Fault] = {
        "pod_delete": pod_delete.PodDelete(),
        "container_kill": container_kill.ContainerKill(),
        "liveness_break": liveness_break.LivenessBreak(),
        "scale": scale.Scale(),
        "node_drain": node_drain.NodeDrain(),
    }
    if fault_type == "node_stop":
        from chaos.faults import node_stop

        return node_stop.NodeStop()
    return faults[fault_type]


def per_pod(victims: Sequence[PodInfo], follow: str) -> list[FaultTarget]:
    return [FaultTarget(pod, pod.node, follow) for pod in victims]


def on_victims_node(ctx: FaultContext, victims: Sequence[PodInfo]) -> list[FaultTarget]:
    """For node faults: one incident per available, opted-in pod on the first victim's node."""
    from chaos.targeting import filter_opted_in

    if not victims:
        return []
    node = victims[0].node
    pods = [PodInfo.from_dict(p) for p in ctx.pod_status.values()]
    on_node = [p for p in filter_opted_in(pods) if p.node == node and p.available]
    return per_pod(sorted(on_node, key=lambda p: p.name), "replacement")
