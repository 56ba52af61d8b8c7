"""scale: sets the workload's replicas, measures until the new count is Ready, and restores
the original count afterwards (also when the drill is aborted). The original count is recorded
on the workload first, so `chaos-drill restore` puts it back even after a SIGKILL."""

from __future__ import annotations

from collections.abc import Sequence

from chaos.cluster.kube import WORKLOAD_KINDS, apps_call
from chaos.drill import restore
from chaos.drill.faults import FaultContext, FaultTarget
from chaos.drill.targeting import PodInfo
from chaos.errors import FaultError


class Scale:
    def __init__(self) -> None:
        self.original: int | None = None

    def targets(self, ctx: FaultContext, victims: Sequence[PodInfo]) -> list[FaultTarget]:
        replicas = ctx.drill.fault.replicas
        if replicas is None:
            raise FaultError("scale needs spec.fault.replicas")
        return [FaultTarget(None, "", replicas=replicas)]

    def act(self, ctx: FaultContext, target: FaultTarget) -> str:
        w = ctx.workload
        if w.kind not in WORKLOAD_KINDS:
            raise FaultError("scale needs a workload, not a label selector: name a Deployment, "
                             "StatefulSet or ReplicaSet in spec.target")
        before = int(apps_call(ctx.api, "read_scale", w.kind)(w.name, w.namespace).spec.replicas
                     or 0)
        if self.original is None:
            record = restore.Record.now(ctx.run_id, "scale", before)
            restore.mark_workload(ctx.api, w.kind, w.name, w.namespace, record)
            self.original = before
        apps_call(ctx.api, "patch_scale", w.kind)(w.name, w.namespace,
                                                   {"spec": {"replicas": target.replicas}})
        return f"scaled {w.kind}/{w.name} from {before} to {target.replicas}"

    def restore(self, ctx: FaultContext) -> None:
        if self.original is not None:
            w = ctx.workload
            ctx.say(f"restoring {w.name} to {self.original} replicas")
            record = restore.Record.now(ctx.run_id, "scale", self.original)
            restore.undo(ctx.api, restore.Leftover(w.kind, w.name, w.namespace, record))
            self.original = None
