"""scale: sets the workload's replicas, measures until the new count is Ready, and restores
the original count afterwards (also when the drill is aborted)."""

from __future__ import annotations

from collections.abc import Sequence

from chaos.errors import FaultError
from chaos.faults import FaultContext, FaultTarget
from chaos.kube import WORKLOAD_KINDS, apps_call
from chaos.targeting import PodInfo


class Scale:
    def __init__(self) -> None:
        self.original: int | None = None

    def targets(self, ctx: FaultContext, victims: Sequence[PodInfo]) -> list[FaultTarget]:
        replicas = ctx.drill.fault.replicas
        if replicas is None:
            raise FaultError("scale needs spec.fault.replicas")
        return [FaultTarget(None, "", replicas=replicas)]

    def _patch(self, ctx: FaultContext, replicas: int) -> int:
        w = ctx.workload
        if w.kind not in WORKLOAD_KINDS:
            raise FaultError("scale needs a workload, not a label selector: name a Deployment, "
                             "StatefulSet or ReplicaSet in spec.target")
        current = apps_call(ctx.api, "read_scale", w.kind)(w.name, w.namespace).spec.replicas
        apps_call(ctx.api, "patch_scale", w.kind)(w.name, w.namespace,
                                                   {"spec": {"replicas": replicas}})
        return int(current or 0)

    def act(self, ctx: FaultContext, target: FaultTarget) -> str:
        before = self._patch(ctx, target.replicas)
        if self.original is None:
            self.original = before
        return f"scaled {ctx.workload.kind}/{ctx.workload.name} from {before} to {target.replicas}"

    def restore(self, ctx: FaultContext) -> None:
        if self.original is not None:
            ctx.say(f"restoring {ctx.workload.name} to {self.original} replicas")
            self._patch(ctx, self.original)
            self.original = None
