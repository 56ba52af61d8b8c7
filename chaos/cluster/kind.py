"""The kind provider: a multi-node cluster in Docker through the kind CLI. Not runnable on
machines without a Docker engine; its commands are built by pure functions that tests check."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from chaos.cluster.base import ClusterStatus, Progress
from chaos.cluster.layout import cache_dir
from chaos.errors import ClusterError, FaultError, SetupError

KIND_TIMEOUT = 900
"""Seconds a kind or docker call may take (creating a cluster is the slowest)."""

CONFIG = Path(__file__).resolve().parents[2] / "manifests" / "kind" / "cluster.yaml"


def create_command(name: str, config: Path = CONFIG) -> list[str]:
    return ["kind", "create", "cluster", "--name", name, "--config", str(config), "--wait", "120s"]


def delete_command(name: str) -> list[str]:
    return ["kind", "delete", "cluster", "--name", name]


def load_command(name: str, archive: Path) -> list[str]:
    return ["kind", "load", "image-archive", str(archive), "--name", name]


def kill_command(node: str, container_id: str) -> list[str]:
    """SIGKILLs a container's main process through the node container's own containerd."""
    return ["docker", "exec", node, "ctr", "--namespace", "k8s.io", "tasks", "kill",
            "--signal", "SIGKILL", container_id]


class KindCluster:
    """Drives the kind CLI; every failure becomes a one-line error naming the fix."""

    name = "kind"

    def __init__(self, cluster_name: str = "chaos-drill") -> None:
        self.cluster_name = cluster_name

    def _run(self, command: list[str]) -> str:
        if shutil.which(command[0]) is None:
            raise SetupError(f"{command[0]} not found: install it, or use --provider local")
        result = subprocess.run(command, capture_output=True, text=True, timeout=KIND_TIMEOUT)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise ClusterError(f"{' '.join(command[:3])} failed: {last}")
        return result.stdout

    def kubeconfig(self) -> Path:
        path = cache_dir() / f"kind-{self.cluster_name}.kubeconfig"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self._run(["kind", "get", "kubeconfig", "--name", self.cluster_name]))
        return path

    def up(self, progress: Progress) -> None:
        if self.cluster_name in self._run(["kind", "get", "clusters"]).split():
            progress(f"kind cluster {self.cluster_name} already exists")
            return
        progress(f"creating kind cluster {self.cluster_name} (3 nodes)")
        self._run(create_command(self.cluster_name))

    def down(self, progress: Progress) -> None:
        progress(f"deleting kind cluster {self.cluster_name}")
        self._run(delete_command(self.cluster_name))

    def status(self) -> ClusterStatus:
        exists = self.cluster_name in self._run(["kind", "get", "clusters"]).split()
        return ClusterStatus("kind", exists, self.kubeconfig() if exists else None)

    def load_images(self, archives: Sequence[Path], progress: Progress) -> None:
        for archive in archives:
            progress(f"loading {archive.name} into kind cluster {self.cluster_name}")
            self._run(load_command(self.cluster_name, archive))

    def container_kill(self, node: str, container_id: str) -> None:
        try:
            self._run(kill_command(node, container_id))
        except ClusterError as error:
            raise FaultError(str(error)) from None
