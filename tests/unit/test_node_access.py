"""Running commands on a node, the same way for the local and kind providers: the commands built
for each, finding a pod's PID in the runtime's lists, and a command in that PID's network
namespace (on this host, with a stand-in `ctr`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chaos.cluster import dockerd, node_access
from chaos.cluster.kind import KindCluster
from chaos.cluster.local import LocalCluster
from chaos.errors import FaultError

SANDBOX = "a" * 64
APP = "b" * 64
TASKS = f"""TASK    PID     STATUS
{APP}    4800    STOPPED
{SANDBOX}    4711    RUNNING
{"c" * 64}    4900    RUNNING
"""
LIST = ["iptables", "-w", "5", "-S"]


def test_a_kind_node_runs_nsenter_and_ctr_inside_its_container() -> None:
    access = node_access.in_node_container("chaos-drill-worker")
    assert [*access.prefix, *node_access.netns_command(4711, LIST)] == [
        dockerd.docker(), "exec", "chaos-drill-worker",
        "nsenter", "-t", "4711", "-n", "iptables", "-w", "5", "-S"]
    assert [*access.prefix, *node_access.pod_containers_command(access, "u-1")] == [
        dockerd.docker(), "exec", "chaos-drill-worker", "ctr", "--namespace", "k8s.io",
        "containers", "ls", "-q", 'labels."io.kubernetes.pod.uid"==u-1']


def test_a_local_node_runs_them_on_the_host_with_its_own_containerd() -> None:
    access = node_access.on_host("node-1", Path("/run/n1/containerd.sock"))
    assert access.prefix == ()
    assert node_access.pod_containers_command(access, "u-1") == [
        "ctr", "--address", "/run/n1/containerd.sock", "--namespace", "k8s.io",
        "containers", "ls", "-q", 'labels."io.kubernetes.pod.uid"==u-1']


def test_both_providers_have_the_pod_network_capability() -> None:
    from chaos.cluster.base import PodNetwork

    assert isinstance(LocalCluster(), PodNetwork)
    assert isinstance(KindCluster(), PodNetwork)


def test_running_tasks_skip_the_header_and_stopped_ones() -> None:
    assert node_access.running_tasks(TASKS) == {SANDBOX: 4711, "c" * 64: 4900}


def test_the_sandbox_serves_while_the_pods_container_is_stopped() -> None:
    assert node_access.pick_pod_pid([APP, SANDBOX], TASKS, "u-1", "n") == 4711


def test_a_pod_without_a_running_process_is_refused() -> None:
    with pytest.raises(FaultError, match=r"^pod u-1 has no running process on node "
                                         r"chaos-drill-worker: was it deleted\?$"):
        node_access.pick_pod_pid([APP], TASKS, "u-1", "chaos-drill-worker")


def stand_in(pid: int) -> node_access.NodeAccess:
    """A node reached through PREFIX `env` (as kind's `docker exec NODE`), whose `ctr` lists one
    container running as PID."""
    script = ('case "$1" in containers) echo ' + SANDBOX + ';; tasks) printf '
              f"'TASK PID STATUS\\n{SANDBOX} {pid} RUNNING\\n';; esac")
    return node_access.NodeAccess("stand-in", ("env",), ("sh", "-c", script, "ctr"))


@pytest.mark.skipif(os.geteuid() != 0, reason="nsenter needs root")
def test_a_command_runs_in_the_pods_namespace_and_its_failure_names_it() -> None:
    access = stand_in(os.getpid())  # this process's own namespace
    assert node_access.netns_run(access, "u-1", ["echo", "in"]) == "in\n"
    with pytest.raises(FaultError, match=r"^sh -c echo no >&2; exit 3 in the network namespace "
                                         r"of pod u-1 on node stand-in failed: no$"):
        node_access.netns_run(access, "u-1", ["sh", "-c", "echo no >&2; exit 3"])


@pytest.mark.skipif(os.geteuid() != 0, reason="nsenter needs root")
def test_a_failing_script_is_named_on_one_line() -> None:
    script = ["sh", "-c", "true\necho first >&2; echo second >&2; exit 3"]
    with pytest.raises(FaultError, match=r"^a sh script in the network namespace of pod u-1 on "
                                         r"node stand-in failed: first; second$"):
        node_access.netns_run(stand_in(os.getpid()), "u-1", script)
