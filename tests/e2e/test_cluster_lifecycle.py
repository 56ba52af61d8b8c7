"""`cluster down` leaves nothing behind, and bad input gets one line, exit code 2, and no mess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.cluster import kubelet_dir, mounts, network, processes
from chaos.cluster.local import LocalCluster

from support import PROVOKING_SYSCTLS, REPO, host_sysctls, sysctls_set

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "chaos"]


def run_cli(*args: str, env: dict[str, str] | None = None,
            user: int | None = None) -> subprocess.CompletedProcess[str]:
    prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user else []
    return subprocess.run([*prefix, *CLI, *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=REPO)


def assert_nothing_left(cluster: LocalCluster) -> None:
    lay = cluster.lay
    assert not [p for p in processes.load(lay.processes) if processes.is_alive(p)]
    assert processes.cgroup_pids() == set()
    assert not any((h / processes.CGROUP_PARENT).exists() for h in processes.cgroup_hierarchies())
    assert mounts.mounts_under((lay.run, lay.state)) == []
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                           timeout=30).stdout
    assert network.BRIDGE not in links and "veth" not in links
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True, timeout=30).stdout
    assert "10.96.0.0" not in routes and "10.244." not in routes
    assert network.leftover_rules() == []


@pytest.fixture
def cluster_down(local_cluster: LocalCluster) -> Iterator[LocalCluster]:
    local_cluster.down(lambda _: None)
    yield local_cluster


def test_down_after_running_pods_leaves_nothing(web: object, local_cluster: LocalCluster) -> None:
    assert mounts.mounts_under((local_cluster.lay.run,)), "pods should have mounts before down"
    marker = local_cluster.lay.state / kubelet_dir.MADE
    made = marker.read_text() if marker.exists() else None  # none where the host has a kubelet
    local_cluster.down(lambda _: None)
    assert_nothing_left(local_cluster)
    assert made is None or not Path(made).exists(), f"the kubelets' folder {made} is left"


def test_up_again_after_another_command_took_it_down(cluster: LocalCluster) -> None:
    """The processes this object started are gone with the cluster another one took down:
    bringing it up again waits on the new ones only, not on the dead (they read as crashed)."""
    LocalCluster().down(lambda _: None)
    cluster.up(lambda _: None)
    assert cluster.healthy()
    names = [p.name for p in processes.load(cluster.lay.processes)]
    assert len(names) == len(set(names)), names


def test_down_removes_the_interface_of_a_pod_whose_namespace_is_held(
        web: object, local_cluster: LocalCluster, tmp_path: Path) -> None:
    """Something outside the cluster (a debugging shell, another tool) holds a pod's network
    namespace: down still removes the pod's interface pair, so nothing of ours is left."""
    ports = network.bridge_ports()
    assert ports, "web's pods have interfaces on the bridge"
    host = os.readlink("/proc/self/ns/net")
    sandbox = next(p for p in sorted(processes.cgroup_pids())
                   if os.readlink(f"/proc/{p}/ns/net") != host)
    held = tmp_path / "netns"
    held.touch()
    subprocess.run(["mount", "--bind", f"/proc/{sandbox}/ns/net", str(held)], check=True,
                   timeout=30)
    try:
        local_cluster.down(lambda _: None)
        assert_nothing_left(local_cluster)
    finally:
        subprocess.run(["umount", str(held)], check=True, timeout=30)


def test_up_and_down_leave_every_host_sysctl_as_found(cluster_down: LocalCluster) -> None:
    """kubelet sets kernel.panic and friends at start; down puts them back, with ours."""
    with sysctls_set(PROVOKING_SYSCTLS):
        before = host_sysctls()
        cluster_down.up(lambda _: None)
        assert Path("/proc/sys/kernel/panic").read_text().strip() == "10", "kubelet sets it"
        cluster_down.down(lambda _: None)
        after = host_sysctls()
    assert {k: (v, after.get(k)) for k, v in before.items() if after.get(k) != v} == {}


def test_down_with_a_truncated_process_record_says_so_and_leaves_nothing(
        cluster: LocalCluster) -> None:
    """A record cut short (as an in-place write interrupted by a crash left it): down stops what
    runs in the cluster's own cgroups instead, in one line of warning and no traceback."""
    record = cluster.lay.processes
    whole = record.read_text()
    record.write_text(whole[: len(whole) // 2])
    result = run_cli("cluster", "down")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if "is unreadable" in line]
    assert len(warnings) == 1, result.stderr
    assert warnings[0].startswith(f"chaos-drill: {record} is unreadable (truncated or not JSON")
    assert warnings[0].endswith("): stopping what runs in chaos-drill's cgroups instead")
    assert "chaos-drill: local cluster down" in result.stderr.splitlines()
    assert_nothing_left(cluster)


def test_a_route_on_the_service_range_is_refused_at_up_and_kept(
        cluster_down: LocalCluster) -> None:
    """A route of the host's own on 10.96.0.0/12 (a VPN's, say; here on a bridge the test makes,
    as this kernel has no dummy interfaces): up refuses before changing anything, naming the
    route and the fix, and the route is still there, on its own interface."""
    link = "cdrill-test1"
    subprocess.run(["ip", "link", "add", link, "type", "bridge"], check=True, timeout=30)
    try:
        subprocess.run(["ip", "link", "set", link, "up"], check=True, timeout=30)
        subprocess.run(["ip", "route", "add", network.SERVICE_CIDR, "dev", link], check=True,
                       timeout=30)
        result = run_cli("cluster", "up")
        kept = subprocess.run(["ip", "-4", "route", "show", network.SERVICE_CIDR],
                              capture_output=True, text=True, check=True, timeout=30).stdout
    finally:
        subprocess.run(["ip", "link", "del", link], check=True, timeout=30)
    one_line_error(result, f"the local cluster's service range {network.SERVICE_CIDR} is taken "
                   f"on this host ({network.SERVICE_CIDR} dev {link} ",
                   f"remove it ('sudo ip route del {network.SERVICE_CIDR} dev {link}'), or use "
                   "--provider kind")
    assert kept.split()[:3] == [network.SERVICE_CIDR, "dev", link], kept
    assert_nothing_left(cluster_down)


def test_status_names_a_dead_component(cluster: LocalCluster) -> None:
    scheduler = next(p for p in processes.load(cluster.lay.processes)
                     if p.name == "kube-scheduler")
    os.kill(scheduler.pid, signal.SIGKILL)
    result = run_cli("cluster", "status")
    assert result.returncode == 1
    assert "kube-scheduler: STOPPED" in result.stdout
    cluster.up(lambda _: None)  # a dead component makes up restart the whole cluster
    assert run_cli("cluster", "status").returncode == 0


def one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0]


def test_unknown_provider(cluster_down: LocalCluster) -> None:
    one_line_error(run_cli("cluster", "up", "--provider", "nope"), "unknown provider 'nope'",
                   "local, kind, kubeconfig")
    assert_nothing_left(cluster_down)


def test_not_root(cluster_down: LocalCluster) -> None:
    one_line_error(run_cli("cluster", "up", user=65534), "needs root", "sudo")
    assert_nothing_left(cluster_down)


def test_port_taken(cluster_down: LocalCluster) -> None:
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("0.0.0.0", 6443))  # on every address, so also on the API server's
        holder.listen()
        one_line_error(run_cli("cluster", "up"), "port 6443", "kube-apiserver", "already in use")
    assert_nothing_left(cluster_down)


def test_missing_package(cluster_down: LocalCluster) -> None:
    env = {**os.environ, "PATH": "/nonexistent"}
    one_line_error(run_cli("cluster", "up", env=env), "containerd not found", "make setup")
    assert_nothing_left(cluster_down)


def test_bad_autoscaling_setting(cluster_down: LocalCluster) -> None:
    env = {**os.environ, "CHAOS_DRILL_METRIC_RESOLUTION": "5s"}
    one_line_error(run_cli("cluster", "up", env=env), "CHAOS_DRILL_METRIC_RESOLUTION",
                   "10s or more")
    assert_nothing_left(cluster_down)


def test_broken_kubeconfig(tmp_path: Path) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text("this: [is not a kubeconfig")
    one_line_error(run_cli("deploy", "--provider", "kubeconfig", "--kubeconfig", str(broken)),
                   "cannot use kubeconfig", str(broken))


def test_unreachable_cluster(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        "clusters: [{name: x, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: x, user: {token: t}}]\n"
        "contexts: [{name: x, context: {cluster: x, user: x}}]\n"
    )
    one_line_error(run_cli("cluster", "up", "--provider", "kubeconfig", "--kubeconfig",
                           str(config)), "no cluster reachable at https://127.0.0.1:1")
