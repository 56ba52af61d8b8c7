"""Talks to one local node's containerd through `ctr`: import images, SIGKILL a container, run
a command in a container's network namespace (nsenter)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
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


POD_UID_LABEL = "io.kubernetes.pod.uid"
"""The label the kubelet puts on every container of a pod, its sandbox's too."""


def pod_pid(socket: Path, pod_uid: str) -> int:
    """The host PID of a running process of the pod POD_UID (its sandbox's, when its containers
    are between restarts): every container of the pod shares its network namespace."""
    ids = set(ctr(socket, "containers", "ls", "-q", f'labels."{POD_UID_LABEL}"=={pod_uid}')
              .split())
    for line in ctr(socket, "tasks", "ls").splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3 and fields[0] in ids and fields[2] == "RUNNING":
            return int(fields[1])
    raise FaultError(f"pod {pod_uid} has no running process on this node: was it deleted?")


def netns_run(socket: Path, pod_uid: str, command: Sequence[str]) -> str:
    """Runs COMMAND in the network namespace of the pod POD_UID."""
    argv = ["nsenter", "-t", str(pod_pid(socket, pod_uid)), "-n", *command]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=RUNTIME_TIMEOUT)
    if result.returncode != 0:
        raise FaultError(f"{' '.join(command)} in the network namespace of pod {pod_uid} "
                         f"failed: {result.stderr.strip()}")
    return result.stdout
