"""What every cluster provider offers (bring a cluster up and down, report on it, load images),
and the capabilities only some offer to faults that act below the API, as protocols checked
with isinstance: ContainerRuntime, NodeControl, PodNetwork."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    running: bool
    detail: str = ""


@dataclass(frozen=True)
class ClusterStatus:
    """A provider's report: is it up, where is its kubeconfig, how are its parts."""

    provider: str
    up: bool
    kubeconfig: Path | None
    components: tuple[ComponentStatus, ...] = ()


class ClusterProvider(Protocol):
    name: str

    def up(self, progress: Progress) -> None: ...

    def down(self, progress: Progress) -> None: ...

    def status(self) -> ClusterStatus: ...

    def kubeconfig(self) -> Path: ...

    def load_images(self, archives: Sequence[Path], progress: Progress) -> None: ...


@dataclass(frozen=True)
class MemoryHog:
    """A process oom_kill started on NODE in a container's memory cgroup and PID namespace; PID
    and START (its start time in clock ticks since boot, /proc/PID/stat field 22) are as the
    node's /proc shows them, and together name that one process."""

    node: str
    pid: int
    start: int
    container_id: str
    limit_bytes: int
    """The container's memory limit the hog runs into."""


@runtime_checkable
class ContainerRuntime(Protocol):
    """A provider that reaches a node's container runtime below the API (local, kind)."""

    def container_kill(self, node: str, container_id: str) -> None:
        """SIGKILLs the main process of CONTAINER_ID on NODE; the kubelet restarts it."""

    def start_memory_hog(self, node: str, container_id: str) -> MemoryHog:
        """Starts, as root, a process that raises the main process's oom_score_adj and allocates
        in CONTAINER_ID's memory cgroup until the kernel's OOM killer kills that main process;
        it dies with the container."""

    def stop_memory_hog(self, hog: MemoryHog) -> bool:
        """SIGKILLs HOG if that very process still runs (True), else False; reaps it."""

    def oom_kills(self, hog: MemoryHog) -> int | None:
        """How many processes of HOG's container the kernel's OOM killer killed, by the kernel
        log; None when that log cannot be read."""


@runtime_checkable
class NodeControl(Protocol):
    """A provider that can take a whole node down, as if the machine died, and back (local,
    kind)."""

    def stop_node(self, name: str) -> None:
        """Stops the node's kubelet and runtime and kills its pods."""

    def start_node(self, name: str, progress: Progress) -> None:
        """Starts again a node stopped by stop_node."""


@runtime_checkable
class PodNetwork(Protocol):
    """A provider that runs commands as root in a pod's network namespace on its node (local,
    kind)."""

    def pod_netns_run(self, node: str, pod_uid: str, command: Sequence[str]) -> str:
        """Runs COMMAND (iptables, ip) in the network namespace of the pod POD_UID on NODE
        (entered through its sandbox, which runs while the pod exists, even while its
        containers restart); its output. FaultError when it fails or the pod is not there."""


@runtime_checkable
class RegistryTrust(Protocol):
    """A provider whose nodes' containerd chaos-drill configures (local, kind): it can make them
    trust a registry's CA."""

    def trust_registry(self, host: str, ca: Path, progress: Progress) -> None:
        """Makes every node pull from HOST (host[:port]) over TLS trusting CA, from now on."""


@runtime_checkable
class HostRoutes(Protocol):
    """A provider that routes its cluster's Services to this host (kind) and knows when that
    route leads elsewhere."""

    def host_probe_refusal(self, address: str) -> str | None:
        """Why this host must not probe ADDRESS, a Service of this cluster; None when it may."""


CAPABILITY_NAMES: dict[type[Any], str] = {
    ContainerRuntime: "access to the node's container runtime",
    NodeControl: "node control",
    PodNetwork: "root in a pod's network namespace on its node",
}
"""How errors name each capability a fault may need."""
