"""Talks to one local node's containerd through `ctr`: import images, SIGKILL a container (a
command in a pod's network namespace goes through chaos.cluster.node_access)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from chaos.errors import FaultError, SetupError

NAMESPACE = "k8s.io"
RUNTIME_TIMEOUT = 120
"""Seconds a ctr call may take (an image import is the slowest)."""


def ctr(socket: Path, *args: str) -> str:
    command = ["ctr", "--address", str(socket), "--namespace", NAMESPACE, *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=RUNTIME_TIMEOUT)
    if result.returncode != 0:
        raise FaultError(f"ctr {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def import_image(socket: Path, archive: Path) -> None:
    try:
        ctr(socket, "images", "import", "--no-unpack=false", str(archive))
    except FaultError as error:
        raise SetupError(f"could not import {archive.name} into containerd: {error}") from error


def kill_container(socket: Path, container_id: str) -> None:
    """SIGKILLs the main process of CONTAINER_ID; the kubelet will restart it."""
    ctr(socket, "tasks", "kill", "--signal", "SIGKILL", container_id)
