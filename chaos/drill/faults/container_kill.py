"""container_kill: SIGKILLs a container's main process through the node's runtime; the kubelet
restarts it in place and the pod keeps its name and UID."""

from __future__ import annotations

from collections.abc import Sequence

from chaos.drill.faults import FaultContext, FaultTarget, per_pod
from chaos.drill.targeting import PodInfo
from chaos.errors import FaultError


def container_id(pod: dict[str, object], container: str | None) -> str:
    """The runtime ID (without its containerd:// prefix) of CONTAINER, or the first one."""
    status = pod.get("status")
    statuses = status.get("containerStatuses") if isinstance(status, dict) else None
    for entry in statuses or []:
        if container in (None, entry.get("name")) and entry.get("containerID"):
            return str(entry["containerID"]).split("://", 1)[-1]
    raise FaultError(f"no running container {container or ''} found: is the pod Running?")


class ContainerKill:
    def targets(self, ctx: FaultContext, victims: Sequence[PodInfo]) -> list[FaultTarget]:
        return per_pod(victims)

    def act(self, ctx: FaultContext, target: FaultTarget) -> str:
        assert target.pod is not None
        pod = ctx.pod_status.get(target.pod.uid, {})
        found = container_id(pod, ctx.drill.fault.container)
        ctx.container_runtime().container_kill(target.node, found)
        return f"SIGKILLed container {found[:12]} of pod {target.pod.name} on {target.node}"

    def restore(self, ctx: FaultContext) -> None:
        """Nothing to restore: the kubelet restarts the container."""
