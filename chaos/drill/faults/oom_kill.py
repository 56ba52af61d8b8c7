"""oom_kill: a container runs into its memory limit and the kernel's OOM killer kills its main
process; the kubelet reports it OOMKilled and restarts it in place. Through the node's runtime
(chaos.cluster.memory_hog): a memory hog, a root process in the container's memory cgroup and
PID namespace, raises the main process's oom_score_adj to 1000 and allocates until the limit in
pieces the OOM killer scores lower, and dies with the container.
Needs a memory limit on the container and the cgroup v1 memory controller on the node. Each
hog is recorded on its pod (provider, node, PID, start time), so `chaos-drill restore` kills it
should it outlive a drill killed outright; the drill itself kills one still there when the
round ends or the drill stops."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from kubernetes.client.exceptions import ApiException

from chaos.cluster.base import ContainerRuntime, MemoryHog, Progress
from chaos.drill import restore
from chaos.drill.faults import FaultContext, FaultTarget, per_pod
from chaos.drill.faults.container_kill import container_id
from chaos.drill.targeting import PodInfo
from chaos.errors import FaultError, RestoreError


def memory_limit(pod: Mapping[str, Any], container: str | None) -> str | None:
    """CONTAINER's (or the first container's) resources.limits.memory in a raw pod, or None."""
    for entry in pod.get("spec", {}).get("containers") or []:
        if container in (None, entry.get("name")):
            return ((entry.get("resources") or {}).get("limits") or {}).get("memory")
    return None


def hog_original(provider: str, hog: MemoryHog) -> dict[str, Any]:
    """What the restore record keeps of HOG, with the provider that started it."""
    return {"provider": provider, **asdict(hog)}


def hog_from_original(original: Any) -> tuple[str, MemoryHog]:
    """The provider's name and the hog a restore record's original names; RestoreError saying
    what is wrong with it otherwise."""
    if not isinstance(original, dict):
        raise RestoreError("its original is not the memory hog's provider, node, pid and start")
    fields: dict[str, type] = {"provider": str, "node": str, "pid": int, "start": int,
                               "container_id": str, "limit_bytes": int}
    for name, kind in fields.items():
        value = original.get(name)
        if not isinstance(value, kind) or isinstance(value, bool) or value in ("", 0):
            raise RestoreError(f"its original has no valid {name}")
    return original["provider"], MemoryHog(original["node"], original["pid"], original["start"],
                                           original["container_id"], original["limit_bytes"])


def stop_left_hog(left: restore.Leftover, provider: object, say: Progress) -> None:
    """Kills the hog LEFT's record names if that very process still runs, through the provider
    that started it (RestoreError otherwise: another provider's PIDs are not its)."""
    wanted, hog = hog_from_original(left.record.original)
    if not isinstance(provider, ContainerRuntime) or getattr(provider, "name", "") != wanted:
        raise RestoreError(
            f"skipped Pod {left.namespace}/{left.name}: its memory hog (pid {hog.pid} on node "
            f"{hog.node}) was started by {left.record.fault} run {left.record.run} on the "
            f"{wanted} provider, and only that provider can stop it: run 'chaos-drill restore "
            f"--provider {wanted}' where that cluster runs")
    if provider.stop_memory_hog(hog):
        say(f"killed memory hog pid {hog.pid} on node {hog.node}")


class OomKill:
    def __init__(self) -> None:
        self.started: list[restore.Leftover] = []
        self.hogs: list[tuple[PodInfo, MemoryHog]] = []

    def targets(self, ctx: FaultContext, victims: Sequence[PodInfo]) -> list[FaultTarget]:
        """Refuses a victim whose container has no memory limit: the hog would fill the node."""
        for pod in victims:
            container = ctx.drill.fault.container or (pod.containers or ("",))[0]
            if memory_limit(ctx.pod_status.get(pod.uid, {}), container) is None:
                raise FaultError(f"oom_kill needs a memory limit on container {container} of "
                                 f"pod {pod.namespace}/{pod.name}: set resources.limits.memory "
                                 "in its pod template")
        return per_pod(victims)

    def act(self, ctx: FaultContext, target: FaultTarget) -> str:
        assert target.pod is not None
        pod = target.pod
        found = container_id(ctx.pod_status.get(pod.uid, {}), ctx.drill.fault.container)
        runtime = ctx.container_runtime()
        hog = runtime.start_memory_hog(target.node, found)
        record = restore.Record.now(ctx.run_id, "oom_kill", hog_original(ctx.provider.name, hog))
        left = restore.Leftover(restore.MEMORY_HOG, pod.name, pod.namespace, record)
        try:
            restore.mark_pod(ctx.api, pod.name, pod.namespace, record)
        except ApiException as error:
            runtime.stop_memory_hog(hog)
            raise FaultError(f"could not record the memory hog on pod {pod.name}: "
                             f"{error.reason}") from None
        self.started.append(left)
        self.hogs.append((pod, hog))
        return (f"started a memory hog (pid {hog.pid}) in container {found[:12]} of pod "
                f"{pod.name} on {target.node}; it fills the {hog.limit_bytes // 2**20} MiB limit")

    def restore(self, ctx: FaultContext) -> None:
        """Journals the kernel's OOM kills in each victim's container, by the kernel log (the
        runtime's exit reason may miss one), kills a hog still running (the kernel has not
        killed its container) and drops each pod's record."""
        for pod, hog in self.hogs:
            kills = _oom_kills(ctx, hog)
            if kills is None:
                continue
            ctx.say(f"pod {pod.name}: the kernel's log shows {kills} OOM kill(s) in the "
                    f"container {hog.container_id[:12]}")
            if ctx.note is not None:
                ctx.note("kernel_oom_kills", target_uid=pod.uid, pod=pod.name, count=kills)
        self.hogs = []
        for left in self.started:
            restore.undo(ctx.api, left, ctx.provider, ctx.say)
        self.started = []


def _oom_kills(ctx: FaultContext, hog: MemoryHog) -> int | None:
    """The OOM kills in HOG's container; None when they cannot be read."""
    try:
        return ctx.container_runtime().oom_kills(hog)
    except FaultError:
        return None
