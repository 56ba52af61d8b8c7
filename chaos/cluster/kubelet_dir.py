"""The one host folder the local cluster's kubelets share: every kubelet's device manager empties
/var/lib/kubelet/device-plugins, then listens on its kubelet.sock, a path no flag changes. Two
kubelets starting at once race there (one empties the folder while the other binds, and one
bind fails: "address already in use"), so each starts once the one before it listens. The
folders chaos-drill made are removed on down."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

KUBELET_ROOT = Path("/var/lib/kubelet")
SOCKET = KUBELET_ROOT / "device-plugins" / "kubelet.sock"
MADE = "made-kubelet-dir"
"""In the state directory: the folder chaos-drill made for the socket, to remove on down."""


def note_made(state: Path, root: Path = KUBELET_ROOT) -> None:
    """Records the first folder of the socket's path that is missing now (the kubelets will
    make it); an earlier record stays, as it is older."""
    marker = state / MADE
    if marker.exists():
        return
    for folder in (root, root / SOCKET.parent.name):
        if not folder.exists():
            marker.write_text(str(folder))
            return


def listening_since(began: float, socket: Path = SOCKET) -> bool:
    """A kubelet started at BEGAN (time.time()) listens: the socket was made after it."""
    try:
        found = socket.stat()
    except OSError:
        return False
    return stat.S_ISSOCK(found.st_mode) and found.st_ctime >= began


def remove_made(state: Path, root: Path = KUBELET_ROOT) -> None:
    """Removes the folder note_made recorded (only one on the socket's path), then the record."""
    marker = state / MADE
    if not marker.exists():
        return
    made = Path(marker.read_text().strip())
    if made in (root, root / SOCKET.parent.name):
        shutil.rmtree(made, ignore_errors=True)
    marker.unlink()
