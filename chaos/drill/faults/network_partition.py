"""network_partition: cuts the victim pods off the network for spec.fault.durationSeconds with
iptables rules in each pod's network namespace (chaos.drill.partition), entered on its node
(nsenter on a process of the pod, its sandbox's if need be). The kubelet's liveness probe still
gets through, so readiness fails and the Service takes the pod out of rotation while it keeps
running; with `probes: true` liveness fails too and the kubelet restarts the container (the
rules stay: they belong to the pod's namespace). Lifted after the duration, and on any stop;
each pod is marked first (with the provider's name), so `chaos-drill restore` removes the rules
after a SIGKILL. Needs a provider with PodNetwork (local, kind). A pod on its node's network
(hostNetwork) is refused: its namespace is the node's."""

from __future__ import annotations

from collections.abc import Sequence

from chaos.drill import partition, restore
from chaos.drill.faults import FaultContext, FaultTarget, per_pod
from chaos.drill.partition import Run
from chaos.drill.targeting import PodInfo
from chaos.errors import FaultError


class NetworkPartition:
    def __init__(self) -> None:
        self.cut: list[restore.Leftover] = []

    def targets(self, ctx: FaultContext, victims: Sequence[PodInfo]) -> list[FaultTarget]:
        """Refuses a pod on its node's network: rules in its namespace would act on the node."""
        for pod in victims:
            if ctx.pod_status.get(pod.uid, {}).get("spec", {}).get("hostNetwork"):
                raise FaultError(f"{ctx.drill.fault.type} cannot act on pod {pod.namespace}/"
                                 f"{pod.name}: it uses hostNetwork, so its network namespace is "
                                 f"node {pod.node}'s; target pods with a network of their own")
        return per_pod(victims)

    def act(self, ctx: FaultContext, target: FaultTarget) -> str:
        assert target.pod is not None
        network = ctx.pod_network()
        uid = target.pod.uid
        record = restore.Record.now(ctx.run_id, ctx.drill.fault.type, ctx.provider.name)
        restore.mark_pod(ctx.api, target.pod.name, target.pod.namespace, record)
        self.cut.append(
            restore.Leftover(restore.PARTITIONED_POD, target.pod.name, target.pod.namespace, record)
        )
        done = self.rules(
            ctx, target, lambda command: network.pod_netns_run(target.node, uid, command)
        )
        return f"pod {target.pod.name} on {target.node}: {done}"

    def rules(self, ctx: FaultContext, target: FaultTarget, run: Run) -> str:
        """Writes the rules in the pod's namespace through RUN; says what they drop."""
        assert target.pod is not None
        return partition.cut(
            run,
            ctx.pod_status.get(target.pod.uid, {}),
            ctx.drill.fault.container,
            ctx.drill.fault.drop_probes,
            self.loss(ctx),
        )

    def loss(self, ctx: FaultContext) -> float | None:
        """The share of packets to drop, None for all."""
        return None

    def restore(self, ctx: FaultContext) -> None:
        """Lifts every cut: the rules go, then the pod's record."""
        while self.cut:
            restore.undo(ctx.api, self.cut[0], ctx.provider, ctx.say)
            self.cut.pop(0)
