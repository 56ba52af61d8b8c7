"""The kubelets' shared socket folder: a socket counts only when made after the kubelet started,
and down removes only the folder chaos-drill made."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from chaos.cluster import kubelet_dir


def bound(path: Path) -> socket.socket:
    path.parent.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    return sock


def test_a_socket_counts_only_when_made_after_the_start(tmp_path: Path) -> None:
    path = tmp_path / "device-plugins" / "kubelet.sock"
    assert not kubelet_dir.listening_since(0, path)
    with bound(path):
        assert kubelet_dir.listening_since(time.time() - 60, path)
        assert not kubelet_dir.listening_since(time.time() + 60, path), "an earlier socket"
    path.unlink()
    path.write_text("")
    assert not kubelet_dir.listening_since(0, path), "a file is not a socket"


def test_down_removes_the_folder_up_found_missing_and_only_it(tmp_path: Path) -> None:
    state, root = tmp_path / "state", tmp_path / "kubelet"
    state.mkdir()
    kubelet_dir.note_made(state, root)
    (root / "device-plugins").mkdir(parents=True)
    kubelet_dir.note_made(state, root)  # a second up keeps the older record
    kubelet_dir.remove_made(state, root)
    assert not root.exists() and not (state / kubelet_dir.MADE).exists()

    (root / "pods").mkdir(parents=True)  # a host's own kubelet folder: only ours goes
    kubelet_dir.note_made(state, root)
    (root / "device-plugins").mkdir()
    kubelet_dir.remove_made(state, root)
    assert (root / "pods").is_dir() and not (root / "device-plugins").exists()
    kubelet_dir.remove_made(state, root)  # nothing recorded: nothing done


def test_a_record_naming_another_folder_is_not_followed(tmp_path: Path) -> None:
    state, root, other = tmp_path / "state", tmp_path / "kubelet", tmp_path / "precious"
    state.mkdir()
    other.mkdir()
    (state / kubelet_dir.MADE).write_text(str(other))
    kubelet_dir.remove_made(state, root)
    assert other.is_dir() and not (state / kubelet_dir.MADE).exists()
