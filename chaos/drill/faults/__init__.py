"""Fault types, one module each, behind one small interface; chaos/drill/fault_types.py declares
them.

A fault names the incidents it opens (`targets`), then acts on each (`act`), and undoes what
it changed (`restore`). Dry runs never reach `act`: the runner decides at the last step.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from chaos.cluster.base import (
    CAPABILITY_NAMES,
    ClusterProvider,
    ContainerRuntime,
    NodeControl,
    PodNetwork,
    Progress,
)
from chaos.cluster.kube import Workload
from chaos.drill.fault_types import fault_type
from chaos.drill.node_guard import NodePolicy, check_node
from chaos.drill.spec import Drill
from chaos.drill.targeting import PodInfo, pods_on_node
from chaos.errors import FaultError


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
    run_id: str = ""
    """The run's id, written in the restore record of every object a fault changes."""
    policy: NodePolicy = NodePolicy()
    """Which nodes node faults may touch, and the cordon cap."""
    note: Callable[..., Any] | None = None
    """Writes a journal record (event, **fields): what a fault did on its own, e.g. a cap."""

    def node_control(self) -> NodeControl:
        """The provider's node control; the runner checked it is there before injecting."""
        if isinstance(self.provider, NodeControl):
            return self.provider
        raise self._lacks(NodeControl)

    def container_runtime(self) -> ContainerRuntime:
        """The provider's container runtime; the runner checked it is there before injecting."""
        if isinstance(self.provider, ContainerRuntime):
            return self.provider
        raise self._lacks(ContainerRuntime)

    def pod_network(self) -> PodNetwork:
        """The provider's way into pods' network namespaces; checked before injecting."""
        if isinstance(self.provider, PodNetwork):
            return self.provider
        raise self._lacks(PodNetwork)

    def _lacks(self, capability: type[Any]) -> FaultError:
        return FaultError(f"{self.drill.fault.type} needs {CAPABILITY_NAMES[capability]}, "
                          f"which the {self.provider.name} provider lacks")


@dataclass(frozen=True)
class FaultTarget:
    """One incident to open: the pod it is about (if any), its node, and for scale the count."""

    pod: PodInfo | None
    node: str
    replicas: int = 0


class Fault(Protocol):
    def targets(self, ctx: FaultContext, victims: Sequence[PodInfo]) -> list[FaultTarget]: ...

    def act(self, ctx: FaultContext, target: FaultTarget) -> str: ...

    def restore(self, ctx: FaultContext) -> None: ...


def fault_for(name: str) -> Fault:
    """A fresh instance of the fault the registry declares as NAME."""
    module, _, cls = fault_type(name).factory.partition(":")
    fault: Fault = getattr(importlib.import_module(f"chaos.drill.faults.{module}"), cls)()
    return fault


def per_pod(victims: Sequence[PodInfo]) -> list[FaultTarget]:
    return [FaultTarget(pod, pod.node) for pod in victims]


def on_victims_node(ctx: FaultContext, victims: Sequence[PodInfo]) -> list[FaultTarget]:
    """For node faults: one incident per available, opted-in pod on spec.fault.node, or on the
    first victim's node when it is not set; a SafetyError when the policy refuses that node."""
    node = ctx.drill.fault.node or (victims[0].node if victims else None)
    if node is None:
        return []
    check_node(ctx.api, node, ctx.policy)  # before anything changes
    pods = [PodInfo.from_dict(p) for p in ctx.pod_status.values()]
    return per_pod(pods_on_node(pods, node))
