"""spec.fault.node on the real local cluster: a node_drain drill drains the node it names, not the
first victim's, and a node the cluster does not have is refused in one line before anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaos.cluster.local import LocalCluster
from chaos.drill.node_guard import CONTROL_PLANE_LABEL
from chaos.drill.targeting import OPT_IN_LABEL
from chaos.drill.timeline import Incident
from chaos.results import read_journal

from support import FAULTS, cli, run_drill, write_drill

pytestmark = pytest.mark.e2e


def first_victim_node(api: Any, cluster: LocalCluster, path: Path, out: Path) -> str:
    """The node of the pod the drill's seed picks first, from a dry run (same seed, same pick)."""
    run_drill(cluster, path, out, dry_run=True)
    selection = next(r for r in read_journal(out / "journal.jsonl") if r.event == "selection")
    victim = selection.get("victims")[0]
    return str(client.CoreV1Api(api).read_namespaced_pod(victim, "demo").spec.node_name)


def web_pods_on(api: Any, node: str) -> set[str]:
    pods = client.CoreV1Api(api).list_namespaced_pod(
        "demo", label_selector=f"app=web,{OPT_IN_LABEL}=true").items
    return {p.metadata.name for p in pods if p.spec.node_name == node
            and not p.metadata.deletion_timestamp}


def test_node_drain_drains_the_node_spec_fault_node_names(web: Any, cluster: LocalCluster,
                                                          tmp_path: Path) -> None:
    nodes = sorted(n.metadata.name for n in client.CoreV1Api(web).list_node().items)
    victim_node = first_victim_node(web, cluster, write_drill(tmp_path, FAULTS["node_drain"]),
                                    tmp_path / "dry")
    chosen = next(n for n in nodes if n != victim_node)
    on_chosen = web_pods_on(web, chosen)
    assert on_chosen, f"web has no pod on {chosen}: its spread constraint should put one there"

    cordoned_at_inject: list[tuple[str, bool]] = []

    def on_inject(incident: Incident) -> None:
        node = client.CoreV1Api(web).read_node(chosen)
        cordoned_at_inject.append((incident.node, bool(node.spec.unschedulable)))

    path = write_drill(tmp_path, {**FAULTS["node_drain"], "node": chosen})
    summary = run_drill(cluster, path, tmp_path / "out", on_inject=on_inject)

    assert summary.passed, summary.slo_checks
    assert {i.target_pod for i in summary.incidents} == on_chosen
    assert all(i.node == chosen and i.recovery_seconds is not None for i in summary.incidents)
    assert cordoned_at_inject and all(seen == (chosen, True) for seen in cordoned_at_inject)
    for node in client.CoreV1Api(web).list_node().items:
        assert not node.spec.unschedulable, f"{node.metadata.name} was left cordoned"
    assert web_pods_on(web, chosen).isdisjoint(on_chosen)


def test_a_missing_node_is_refused_in_one_line(web: Any, tmp_path: Path) -> None:
    before = {p.metadata.uid for p in client.CoreV1Api(web).list_namespaced_pod("demo").items}
    path = write_drill(tmp_path, {**FAULTS["node_drain"], "node": "node-9"})
    result = cli("run", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "spec.fault.node node-9 does not exist: use one of node-1, node-2" in lines[0]
    assert not (tmp_path / "out").exists(), "a refused drill must leave no results folder"
    after = {p.metadata.uid for p in client.CoreV1Api(web).list_namespaced_pod("demo").items}
    assert after == before
    assert not any(n.spec.unschedulable for n in client.CoreV1Api(web).list_node().items)


def test_the_cli_refuses_a_node_fault_on_the_control_plane_in_one_line(web: Any,
                                                                       tmp_path: Path) -> None:
    """`chaos-drill run` needs no drillable label (its user's credentials decide), but never
    drains a control-plane node; the label is set on node-1 for the test and removed after."""
    core = client.CoreV1Api(web)
    core.patch_node("node-1", {"metadata": {"labels": {CONTROL_PLANE_LABEL: ""}}})
    try:
        before = {p.metadata.uid for p in core.list_namespaced_pod("demo").items}
        path = write_drill(tmp_path, {**FAULTS["node_drain"], "node": "node-1"})
        result = cli("run", str(path), "--out", str(tmp_path / "out"))
    finally:
        core.patch_node("node-1", {"metadata": {"labels": {CONTROL_PLANE_LABEL: None}}})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert (f"node node-1 is a control-plane node ({CONTROL_PLANE_LABEL}): node faults never "
            "touch the control plane; name a worker in spec.fault.node") in lines[0]
    assert {p.metadata.uid for p in core.list_namespaced_pod("demo").items} == before
    assert not any(n.spec.unschedulable for n in core.list_node().items)
