"""node_drain: cordons spec.fault.node (or the first victim's node) and evicts the workload's
pods on it through the Eviction API, so PodDisruptionBudgets hold; uncordons it afterwards.
The cordon is recorded on the node first, so `chaos-drill restore` undoes it after a SIGKILL.
With a cordon cap (the operator's), a timer uncordons the node when the cap runs out, whatever
the drill is doing then, and journals `cordon_capped`."""

from __future__ import annotations

import threading
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
        self._lock = threading.Lock()
        self._cap: threading.Timer | None = None
        self._capped = False  # this round's cordon reached the cap: never cordoned again

    def targets(self, ctx: FaultContext, victims: Sequence[PodInfo]) -> list[FaultTarget]:
        return on_victims_node(ctx, victims)

    def act(self, ctx: FaultContext, target: FaultTarget) -> str:
        assert target.pod is not None
        if self.cordoned is None and not self._capped:
            core = client.CoreV1Api(ctx.api)
            was = bool(core.read_node(target.node).spec.unschedulable)
            restore.mark_node(ctx.api, target.node, restore.Record.now(ctx.run_id, "node_drain",
                                                                       was))
            with self._lock:
                self.cordoned = target.node
                core.patch_node(target.node, {"spec": {"unschedulable": True}})
            self._start_cap(ctx)
        pod = target.pod
        grace = ctx.drill.fault.grace_period_seconds
        body = client.V1Eviction(
            metadata=client.V1ObjectMeta(name=pod.name, namespace=pod.namespace),
            delete_options=None if grace is None else client.V1DeleteOptions(
                grace_period_seconds=grace))
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

    def _start_cap(self, ctx: FaultContext) -> None:
        cap = ctx.policy.max_cordon_seconds
        if cap is None:
            return
        self._cap = threading.Timer(cap, self._cap_reached, (ctx, cap))
        self._cap.daemon = True
        self._cap.start()

    def _cap_reached(self, ctx: FaultContext, cap: float) -> None:
        node = self.cordoned
        why = f"node {node} cordoned for the cap of {cap:g} s: uncordoned before the drill ends"
        self._capped = True
        if self._uncordon(ctx, why) and ctx.note is not None:
            ctx.note("cordon_capped", node=node, cap_seconds=cap, message=why)

    def _uncordon(self, ctx: FaultContext, why: str) -> bool:
        """Uncordons the node this drill cordoned, once; True if this call did."""
        with self._lock:
            if self.cordoned is None:
                return False
            ctx.say(why)
            record = restore.Record.now(ctx.run_id, "node_drain", False)
            restore.undo(ctx.api, restore.Leftover("Node", self.cordoned, "", record))
            self.cordoned = None
            return True

    def restore(self, ctx: FaultContext) -> None:
        if self._cap is not None:
            self._cap.cancel()
            self._cap = None
        self._capped = False
        self._uncordon(ctx, f"uncordoning {self.cordoned}")
