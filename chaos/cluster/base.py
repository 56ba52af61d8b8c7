"""What every cluster provider offers (bring a cluster up and down, report on it, load images),
and the capabilities only some offer to faults that act below the API, as protocols checked
with isinstance: ContainerRuntime, NodeControl."""

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


@runtime_checkable
class ContainerRuntime(Protocol):
    """A provider that reaches a node's container runtime below the API (local, kind)."""

    def container_kill(self, node: str, container_id: str) -> None:
        """SIGKILLs the main process of CONTAINER_ID on NODE; the kubelet restarts it."""


@runtime_checkable
class NodeControl(Protocol):
    """A provider that can take a whole node down, as if the machine died, and back (local,
    kind)."""

    def stop_node(self, name: str) -> None:
        """Stops the node's kubelet and runtime and kills its pods."""

    def start_node(self, name: str, progress: Progress) -> None:
        """Starts again a node stopped by stop_node."""


@runtime_checkable
class RegistryTrust(Protocol):
    """A provider whose nodes' containerd chaos-drill configures (local, kind): it can make them
    trust a registry's CA."""

    def trust_registry(self, host: str, ca: Path, progress: Progress) -> None:
        """Makes every node pull from HOST (host[:port]) over TLS trusting CA, from now on."""


CAPABILITY_NAMES: dict[type[Any], str] = {
    ContainerRuntime: "access to the node's container runtime",
    NodeControl: "node control",
}
"""How errors name each capability a fault may need."""
