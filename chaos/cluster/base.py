"""What every cluster provider offers: bring a cluster up and down, report on it, load images,
and reach a node's runtime for the faults that act below the API."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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

    def container_kill(self, node: str, container_id: str) -> None: ...
