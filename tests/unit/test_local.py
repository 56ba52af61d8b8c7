"""The local provider with an unreadable or odd process record: `down` stops what its cgroups
hold instead, in the same order, and says so in one line; node control names the fix; a restart
never runs a program the record names unless it is the component's own binary; `up` refuses a
taken address range before anything else."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from chaos.cluster import layout as L
from chaos.cluster import local_checks, network, processes, routes
from chaos.cluster.layout import Layout
from chaos.cluster.local import LocalCluster
from chaos.cluster.processes import Process
from chaos.errors import ClusterError, SetupError


@pytest.fixture
def cluster(tmp_path: Path) -> LocalCluster:
    lay = Layout(tmp_path / "state", tmp_path / "run")
    lay.state.mkdir()
    return LocalCluster(lay)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the provider asked of processes.py, in order; nothing is signalled."""
    seen: list[str] = []

    def stop_cgroups(relatives: Sequence[str], timeout: float = 10.0) -> set[int]:
        seen.append("stop cgroups " + " ".join(relatives))
        return {4242} if relatives == ("etcd",) else set()

    def kill_cgroup_processes(timeout: float = 10.0, prefixes: Sequence[str] = ("",)) -> None:
        seen.append("kill cgroups " + " ".join(prefixes))

    def stop(process: Process, timeout: float = 10.0) -> None:
        seen.append(f"stop {process.name} {process.pid}")

    monkeypatch.setattr(processes, "stop_cgroups", stop_cgroups)
    monkeypatch.setattr(processes, "kill_cgroup_processes", kill_cgroup_processes)
    monkeypatch.setattr(processes, "stop", stop)
    return seen


def test_a_truncated_record_stops_our_cgroups_in_order_and_says_so_once(
        cluster: LocalCluster, calls: list[str]) -> None:
    record = cluster.lay.processes
    processes.save(record, [Process("etcd", 4242, 1, "log", ("etcd",))])
    record.write_text(record.read_text()[:30])
    said: list[str] = []
    cluster._stop_processes(said.append)
    assert calls == [
        "stop cgroups kube-proxy", "stop cgroups node-1/kubelet node-2/kubelet",
        "stop cgroups node-1/runtime node-2/runtime", "kill cgroups ",
        "stop cgroups control-plane", "stop cgroups etcd",
    ]
    warning, *rest = said
    assert warning.startswith(f"{record} is unreadable (truncated or not JSON: ")
    assert warning.endswith("): stopping what runs in chaos-drill's cgroups instead")
    assert rest == ["stopped pid 4242 in cgroup chaosdrill/etcd"]


def test_a_readable_record_stops_each_process_by_pid_then_sweeps_our_cgroups(
        cluster: LocalCluster, calls: list[str]) -> None:
    processes.save(cluster.lay.processes, [
        Process("etcd", 11, 1, "log", ("etcd",)),
        Process("kubelet node-1", 12, 1, "log", ("kubelet",)),
        Process("kube-proxy", 13, 1, "log", ("kube-proxy",)),
    ])
    cluster._stop_processes(lambda _: None)
    assert calls == ["stop kube-proxy 13", "stop kubelet node-1 12", "kill cgroups ",
                     "stop etcd 11", "kill cgroups "]


def test_a_restart_never_runs_a_program_the_record_names(
        cluster: LocalCluster, calls: list[str]) -> None:
    processes.save(cluster.lay.processes,
                   [Process("kube-apiserver", 4242, 1, "log", ("/tmp/x", "--y"))])
    with pytest.raises(ClusterError) as refused:
        cluster.restart_component("kube-apiserver", lambda _: None)
    assert str(refused.value) == (
        f"{cluster.lay.processes} records kube-apiserver as /tmp/x, not "
        f"{L.bin_dir() / 'kube-apiserver'}: run 'sudo chaos-drill cluster down', then up")
    assert calls == []


def test_node_control_with_an_unreadable_record_names_the_fix(
        cluster: LocalCluster, calls: list[str]) -> None:
    cluster.lay.processes.write_text("[")
    with pytest.raises(ClusterError, match=r"processes.json is unreadable \(truncated or not "
                       r"JSON: .*\): run 'sudo chaos-drill cluster down', then up$"):
        cluster.stop_node("node-1")
    assert calls == []


def test_up_refuses_a_taken_range_before_it_looks_at_or_changes_anything(
        cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    vpn = {"dst": "10.96.0.0/12", "dev": "wg0", "scope": "link", "flags": []}
    monkeypatch.setattr(routes, "_ip_json", lambda what: [vpn] if what == "route" else [])
    for check in ("preflight_root", "preflight_tools", "preflight_no_kind"):
        monkeypatch.setattr(local_checks, check, lambda: None)

    def touched(*_: object) -> bool:
        raise AssertionError("up went past its checks")

    for step in ("healthy", "down", "_start_all"):
        monkeypatch.setattr(LocalCluster, step, touched)
    monkeypatch.setattr(network, "bridge_exists", touched)
    with pytest.raises(SetupError, match=r"^the local cluster's service range 10\.96\.0\.0/12 "
                       r"is taken on this host \(10\.96\.0\.0/12 dev wg0 scope link\): "):
        cluster.up(lambda _: None)
