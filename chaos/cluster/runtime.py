"""Talks to one local node's containerd through `ctr`: list and import images, SIGKILL a
container (a command in a pod's network namespace goes through chaos.cluster.node_access)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from chaos.errors import FaultError, SetupError
from chaos.images.archive import image_of

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


def held(socket: Path) -> set[tuple[str, str]]:
    """(reference, image ID) of every image the runtime at SOCKET holds."""
    return images_listed(ctr(socket, "images", "ls"))


def images_listed(listing: str) -> set[tuple[str, str]]:
    """(reference, image ID) of each image in LISTING, `ctr images ls`'s output: the CRI names
    each image also by its ID (sha256:...), with the same manifest digest as its reference."""
    rows = [line.split()[:3] for line in listing.splitlines()[1:] if len(line.split()) >= 3]
    ids = {digest: ref for ref, _, digest in rows if ref.startswith("sha256:")}
    return {(ref, ids[digest]) for ref, _, digest in rows
            if not ref.startswith("sha256:") and digest in ids}


def import_missing(socket: Path, node: str, archives: Sequence[Path],
                   progress: Callable[[str], None]) -> None:
    """Imports into NODE's runtime at SOCKET the ARCHIVES whose image (reference and ID) it
    lacks, saying which."""
    holds = held(socket)
    for archive in archives:
        if image_of(archive) not in holds:
            progress(f"importing {archive.name} into {node}")
            import_image(socket, archive)


def kill_container(socket: Path, container_id: str) -> None:
    """SIGKILLs the main process of CONTAINER_ID; the kubelet will restart it."""
    ctr(socket, "tasks", "kill", "--signal", "SIGKILL", container_id)
