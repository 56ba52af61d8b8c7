"""liveness_break: removes the file the sample app's liveness probe serves (/www/healthz), so
the probe fails and the kubelet kills and restarts the container; the restart brings a fresh
filesystem and the file back. Works on any provider: it only needs exec. The pod is marked
first, so `chaos-drill restore` heals it should the drill die before the kubelet does."""

from __future__ import annotations

from collections.abc import Sequence

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from chaos.drill import restore
from chaos.drill.faults import FaultContext, FaultTarget, per_pod
from chaos.drill.targeting import PodInfo
from chaos.errors import FaultError

BREAK_COMMAND = ["/bin/busybox", "rm", "/www/healthz"]


class LivenessBreak:
    def __init__(self) -> None:
        self.marked: list[restore.Leftover] = []

    def targets(self, ctx: FaultContext, victims: Sequence[PodInfo]) -> list[FaultTarget]:
        return per_pod(victims)

    def act(self, ctx: FaultContext, target: FaultTarget) -> str:
        assert target.pod is not None
        container = ctx.drill.fault.container or target.pod.containers[0]
        record = restore.Record.now(ctx.run_id, "liveness_break", None)
        restore.mark_pod(ctx.api, target.pod.name, target.pod.namespace, record)
        self.marked.append(restore.Leftover("Pod", target.pod.name, target.pod.namespace, record))
        try:
            output = stream(client.CoreV1Api(ctx.api).connect_get_namespaced_pod_exec,
                            target.pod.name, target.pod.namespace, container=container,
                            command=BREAK_COMMAND, stderr=True, stdin=False, stdout=True,
                            tty=False)
        except ApiException as error:
            raise FaultError(f"exec into {target.pod.name} failed: {error.reason}") from None
        if output.strip():
            raise FaultError(f"could not break liveness of {target.pod.name}: {output.strip()} "
                             "(liveness_break expects the sample app's /www/healthz)")
        return f"removed /www/healthz in {target.pod.name}/{container}"

    def restore(self, ctx: FaultContext) -> None:
        """The restarted container has the file again; put it back where it has not yet."""
        for left in self.marked:
            restore.undo(ctx.api, left)
        self.marked = []
