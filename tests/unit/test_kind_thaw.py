"""A node container whose cgroups a dead runc left frozen: `down` thaws them, top down, and only
those under the cluster's own containers."""

from __future__ import annotations

from pathlib import Path

from chaos.cluster import kind_host


def freezer(root: Path, *parts: str, state: str) -> Path:
    path = root.joinpath("freezer", "docker", *parts)
    path.mkdir(parents=True, exist_ok=True)
    (path / "freezer.state").write_text(state + "\n")
    return path


def test_frozen_cgroups_under_the_nodes_are_thawed_top_down(tmp_path: Path) -> None:
    node = freezer(tmp_path, "abc", state="THAWED")
    pod = freezer(tmp_path, "abc", "kubepods", state="FROZEN")
    container = freezer(tmp_path, "abc", "kubepods", "cri-1", state="FROZEN")
    other = freezer(tmp_path, "other", state="FROZEN")
    v2 = tmp_path / "docker" / "abc" / "kubelet.slice"
    v2.mkdir(parents=True)
    (v2 / "cgroup.freeze").write_text("1\n")
    assert kind_host.thaw(["abc"], tmp_path) == [pod, container, v2]
    assert (pod / "freezer.state").read_text() == "THAWED"
    assert (container / "freezer.state").read_text() == "THAWED"
    assert (node / "freezer.state").read_text() == "THAWED\n", "a running one is not written"
    assert (other / "freezer.state").read_text() == "FROZEN\n", "not a node of the cluster"
    assert (v2 / "cgroup.freeze").read_text() == "0"
    assert kind_host.thaw(["abc", "gone"], tmp_path) == []
