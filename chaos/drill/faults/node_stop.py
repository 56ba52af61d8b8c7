"""node_stop: takes spec.fault.node (or the first victim's node) down (local cluster: its
kubelet, containerd and every pod process stop, as if the machine died; kind: `docker kill` of
the node's container, the same at once); the node controller
marks it NotReady, taint eviction marks its pods for deletion and their controllers replace them
on the other node. The node is started again afterwards. Needs a provider with NodeControl.
The stop is recorded on the Node first (with the provider's name), so `chaos-drill restore`
starts it again after a SIGKILL."""

from __future__ import annotations

from collections.abc import Sequence

from chaos.drill import restore
from chaos.drill.faults import FaultContext, FaultTarget, on_victims_node
from chaos.drill.targeting import PodInfo


class NodeStop:
    def __init__(self) -> None:
        self.stopped: restore.Leftover | None = None

    def targets(self, ctx: FaultContext, victims: Sequence[PodInfo]) -> list[FaultTarget]:
        return on_victims_node(ctx, victims)

    def act(self, ctx: FaultContext, target: FaultTarget) -> str:
        if self.stopped is None:
            control = ctx.node_control()
            record = restore.Record.now(ctx.run_id, "node_stop", ctx.provider.name)
            restore.mark_node(ctx.api, target.node, record)
            self.stopped = restore.Leftover(restore.STOPPED_NODE, target.node, "", record)
            control.stop_node(target.node)
            return f"stopped node {target.node} (kubelet, containerd and its pods)"
        return f"pod {target.pod.name if target.pod else '?'} went down with {target.node}"

    def restore(self, ctx: FaultContext) -> None:
        if self.stopped is not None:
            ctx.say(f"starting node {self.stopped.name} again")
            restore.undo(ctx.api, self.stopped, ctx.provider, ctx.say)
            self.stopped = None
