"""node_drain: cordons spec.fault.node (or the first victim's node) and evicts the workload's
pods on it through the Eviction API, so PodDisruptionBudgets hold; uncordons it afterwards.
The cordon is recorded on the node first, so `chaos-drill restore` undoes it after a SIGKILL."""

from __future__ import annotations

import time
from collections.abc import Sequence

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaos.drill import restore
from chaos.drill.faults import FaultContext, FaultTarget, on_victims_node
from chaos.drill.targeting import PodInfo
from chaos.errors import FaultError

EVICTION_RETRY_SECONDS = 0.5


class NodeDrain:
    def __init__(self) -> None:
        self.cordoned: str | None = None

    def targets(self, ctx: FaultContext, victims: Sequence[PodInfo]) -> list[FaultTarget]:
        return on_victims_node(ctx, victims)

    def act(self, ctx: FaultContext, target: FaultTarget) -> str:
        assert target.pod is not None
        if self.cordoned is None:
            core = client.CoreV1Api(ctx.api)
            was = bool(core.read_node(target.node).spec.unschedulable)
            restore.mark_node(ctx.api, target.node, restore.Record.now(ctx.run_id, "node_drain",
                                                                       was))
            self.cordoned = target.node
            core.patch_node(target.node, {"spec": {"unschedulable": True}})
        pod = target.pod
        body = client.V1Eviction(metadata=client.V1ObjectMeta(name=pod.name,
                                                              namespace=pod.namespace))
        deadline = time.monotonic() + ctx.drill.recovery_timeout_seconds
        while True:
            try:
                client.CoreV1Api(ctx.api).create_namespaced_pod_eviction(
                    pod.name, pod.namespace, body)
                return f"evicted pod {pod.name} from cordoned node {target.node}"
            except ApiException as error:
                if error.status != 429 or time.monotonic() > deadline:
                    raise FaultError(f"could not evict {pod.name}: {error.reason}") from None
                time.sleep(EVICTION_RETRY_SECONDS)  # the PodDisruptionBudget says not yet

    def restore(self, ctx: FaultContext) -> None:
        if self.cordoned is not None:
            ctx.say(f"uncordoning {self.cordoned}")
            record = restore.Record.now(ctx.run_id, "node_drain", False)
            restore.undo(ctx.api, restore.Leftover("Node", self.cordoned, "", record))
            self.cordoned = None
