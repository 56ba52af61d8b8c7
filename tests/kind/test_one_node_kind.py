"""The quickest kind smoke path: `cluster up --provider kind --kind-workers 0` makes one node
that runs everything (kind takes the control plane's taint off), the sample workload runs on it,
a pod_delete drill on it passes with a probe, a node fault is refused in one line, and an `up`
asking for another size says the cluster there has one node. The cluster goes down at the end,
so the session's three-node one comes back for whatever runs next."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from chaos.cluster import kind, kind_checks, kube
from chaos.cluster.local import LocalCluster
from chaos.drill.node_guard import CONTROL_PLANE_LABEL
from chaos.results.journal import read_journal

from support import FAULTS, KindSession, cli, write_drill

pytestmark = [pytest.mark.e2e, pytest.mark.kind, pytest.mark.timeout(600)]

KIND = ("--provider", "kind")


def say(message: str) -> None:
    print(f"[kind one node] {message}", flush=True)


@pytest.fixture(scope="module")
def one_node(kind_session: KindSession) -> Iterator[KindSession]:
    """A one-node kind cluster brought up by the command line for this module (whatever ran
    before is taken down first); down again afterwards."""
    if kind_checks.local_cluster_up():
        LocalCluster().down(say)
    if kind.running_here():
        kind_session.provider.down(say)
    try:
        up = cli("cluster", "up", *KIND, "--kind-workers", "0")
        assert up.returncode == 0, up.stderr[-3000:]
        assert "creating kind cluster chaos-drill (1 node, image " in up.stderr, up.stderr
        yield kind_session
    finally:
        if kind.running_here():
            kind_session.provider.down(say)


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
