"""Undoing what a fault changed below the Kubernetes API, through the provider that changed it:
a node node_stop took down is started again, a pod network_partition cut off loses our iptables
rules. chaos.drill.restore finds the records and calls `undo`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubernetes import client

from chaos.cluster.base import NodeControl, PodNetwork, Progress
from chaos.drill import partition
from chaos.errors import FaultError, RestoreError

if TYPE_CHECKING:
    from chaos.drill.restore import Leftover

NEEDS: dict[str, tuple[type[Any], str, str]] = {
    "StoppedNode": (NodeControl, "stopped", "start it"),
    "PartitionedPod": (PodNetwork, "cut off", "reach its network namespace"),
}
"""Per leftover kind: the capability its undo needs, what was done, what the undo must do."""
CUT_OFF_AS = {"packet_loss": "losing packets", "dns_block": "DNS blocked"}


def cut_off_as(fault: str) -> str:
    """What FAULT did to a pod whose namespace holds its rules, as a restore names it."""
    return CUT_OFF_AS.get(fault, "cut off")


def undo(
    api: Any, left: Leftover, provider: object, say: Progress, cleared: dict[str, Any]
) -> None:
    """Undoes LEFT through PROVIDER, then patches CLEARED (its record dropped) onto it;
    RestoreError when PROVIDER is not the one that made the change."""
    needs, done, how = NEEDS[left.kind]
    if left.kind == "PartitionedPod":
        done = cut_off_as(left.record.fault)
    wanted = str(left.record.original)
    if not isinstance(provider, needs) or getattr(provider, "name", "") != wanted:
        kind = "Node" if left.kind == "StoppedNode" else "Pod"
        where = f"{left.namespace}/{left.name}" if left.namespace else left.name
        raise RestoreError(
            f"skipped {kind} {where}: {done} by {left.record.fault} run {left.record.run} "
            f"on the {wanted} provider, and only that provider can {how}: run 'chaos-drill "
            f"restore --provider {wanted}' where that cluster runs"
        )
    core = client.CoreV1Api(api)
    if isinstance(provider, NodeControl) and left.kind == "StoppedNode":
        provider.start_node(left.name, say)  # a node already running is left running
        core.patch_node(left.name, cleared)
    elif isinstance(provider, PodNetwork):
        pod = core.read_namespaced_pod(left.name, left.namespace)
        if pod.status.phase in ("Pending", "Running") and pod.spec.node_name:
            node, uid = pod.spec.node_name, pod.metadata.uid
            try:
                removed = partition.lift(lambda command: provider.pod_netns_run(node, uid, command))
            except FaultError as error:  # a pod gone meanwhile took its rules along
                raise RestoreError(f"skipped Pod {left.namespace}/{left.name}: {error}") from None
            say(f"removed {removed} iptables lines of ours from pod {left.namespace}/{left.name}")
        core.patch_namespaced_pod(left.name, left.namespace, cleared)
