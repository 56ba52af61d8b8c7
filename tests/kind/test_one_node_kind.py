"""The quickest kind smoke path: `cluster up --provider kind --kind-workers 0` makes one node
that runs everything (kind takes the control plane's taint off), the sample workload runs on it,
a pod_delete drill on it passes with a probe, a node fault is refused in one line, and an `up`
asking for another size says the cluster there has one node. The cluster goes down at the end,
so the session's three-node one comes back for whatever runs next. Last, the cluster is left as
a reboot or a killed session leaves it (dockerd and every node process SIGKILLed, the nodes'
network namespaces, bridge, rules and volumes still there) and `cluster down` clears it all."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from chaos.cluster import (
    dockerd,
    kind,
    kind_checks,
    kind_host,
    kube,
    mounts,
    network,
    processes,
)
from chaos.cluster.local import LocalCluster
from chaos.drill.node_guard import CONTROL_PLANE_LABEL
from chaos.results.journal import read_journal

from support import FAULTS, KindSession, cli, write_drill, zombie

pytestmark = [pytest.mark.e2e, pytest.mark.kind, pytest.mark.timeout(600)]

KIND = ("--provider", "kind")
PLANE = "chaos-drill-control-plane"


def say(message: str) -> None:
    print(f"[kind one node] {message}", flush=True)


@pytest.fixture(scope="module")
def this_module(kind_session: KindSession) -> Iterator[KindSession]:
    """The session's kind cluster, taken down after this module whatever it left."""
    try:
        yield kind_session
    finally:
        if kind.running_here():
            kind_session.provider.down(say)


@pytest.fixture
def one_node(this_module: KindSession) -> KindSession:
    """A one-node kind cluster brought up by the command line, unless one is up (whatever else
    ran before is taken down first)."""
    provider = this_module.provider
    if kind.running_here() and dockerd.engine_up() and provider._nodes() == [PLANE]:
        return this_module
    if kind_checks.local_cluster_up():
        LocalCluster().down(say)
    if kind.running_here():
        provider.down(say)
    up = cli("cluster", "up", *KIND, "--kind-workers", "0")
    assert up.returncode == 0, up.stderr[-3000:]
    assert "creating kind cluster chaos-drill (1 node, image " in up.stderr, up.stderr
    return this_module


def test_one_node_runs_the_smoke_path(one_node: KindSession, tmp_path: Path) -> None:
    with kube.api_client(one_node.provider.kubeconfig()) as api:
        nodes = client.CoreV1Api(api).list_node(_request_timeout=30).items
        assert [n.metadata.name for n in nodes] == ["chaos-drill-control-plane"]
        assert kube.node_ready(nodes[0]) and CONTROL_PLANE_LABEL in nodes[0].metadata.labels
        assert not [t for t in nodes[0].spec.taints or [] if t.effect == "NoSchedule"], \
            "the only node takes pods"
    deployed = cli("deploy", "--no-wait", *KIND)
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    out = tmp_path / "out"
    ran = cli("run", str(write_drill(tmp_path, FAULTS["pod_delete"])), *KIND, "--out", str(out))
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] is True and len(summary["incidents"]) == 1, summary
    records = read_journal(out / "journal.jsonl")
    assert any(r.event == "phase" and r.get("phase") == "ready" for r in records)
    assert any(r.event == "probe_window" for r in records), "the probe ran on the one node"
    with kube.api_client(one_node.provider.kubeconfig()) as api:
        pods = client.CoreV1Api(api).list_namespaced_pod("demo", label_selector="app=web").items
    assert {p.spec.node_name for p in pods} == {"chaos-drill-control-plane"}


def test_a_node_fault_is_refused_and_another_size_is_named(one_node: KindSession,
                                                           tmp_path: Path) -> None:
    deployed = cli("deploy", *KIND)
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    refused = cli("run", str(write_drill(tmp_path, FAULTS["node_stop"], probe=None)), *KIND,
                  "--out", str(tmp_path / "out"))
    assert refused.returncode != 0
    assert "node chaos-drill-control-plane is a control-plane node" in refused.stderr + \
        refused.stdout, refused.stderr[-3000:]
    again = cli("cluster", "up", *KIND, "--kind-workers", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert ("kind cluster chaos-drill already up with 1 node, not the 3 that --kind-workers 2 "
            "asks for") in again.stderr, again.stderr


def kill_engine_and_nodes(provider: kind.KindCluster) -> None:
    """SIGKILLs the dockerd we started and its containerd, then each node's shim and init (the
    kernel kills the rest of a PID namespace with its init): every PID from our record or
    Docker's."""
    engine = provider.engine.started()
    assert engine is not None and processes.is_alive(engine), "the tests' dockerd is ours"
    inits = [int(dockerd.run("inspect", "-f", "{{.State.Pid}}", node).strip())
             for node in provider._nodes()]
    shims = [int((processes.stat_fields(pid) or ["?", "0"])[1]) for pid in inits]
    first = [engine.pid, *dockerd.child_pids(engine.pid)]
    for group in (first, shims + inits):
        for pid in group:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while any(processes.start_time_of(pid) for pid in group):
            assert time.monotonic() < deadline, f"still alive 30s after SIGKILL: {group}"
            time.sleep(0.1)


def test_down_clears_a_cluster_whose_engine_and_nodes_were_killed(one_node: KindSession) -> None:
    provider = one_node.provider
    kill_engine_and_nodes(provider)
    assert not dockerd.engine_up()
    assert network.bridge_exists(kind_host.BRIDGE)
    assert mounts.mounts_under((dockerd.EXEC_ROOT / "netns",)), \
        "the nodes' network namespaces outlive their processes, as after a killed session"
    with zombie() as pid:  # as a killed dockerd and containerd not yet reaped
        for pidfile in dockerd.PIDFILES:
            assert pidfile.exists(), f"{pidfile}: the killed engine's pid file"
            pidfile.write_text(str(pid))
        down = cli("cluster", "down", *KIND)
    assert down.returncode == 0, down.stderr[-3000:]
    assert "the Docker engine is not running but left cluster chaos-drill" in down.stderr, \
        down.stderr
    assert provider.leftovers() == []
    assert not mounts.mounts_under((dockerd.EXEC_ROOT,))
    assert not kind.running_here() and not dockerd.engine_up()
