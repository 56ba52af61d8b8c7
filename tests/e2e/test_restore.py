"""Nothing is left changed, even after SIGKILL: a drill records what it changes on the object
first, and `chaos-drill restore` (or the next run) puts back replicas, cordons and probes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaos.cluster import kube
from chaos.cluster.local import LocalCluster
from chaos.drill import restore
from chaos.drill.loading import load_drill
from chaos.results import read_journal
from chaos.run.runner import DrillRun, RunOptions

from support import FAULTS, cli, start_cli, write_drill

pytestmark = pytest.mark.e2e


def kill_after(path: Path, out: Path, line: str) -> None:
    """Runs the drill and SIGKILLs it once it printed LINE: nothing of it can clean up."""
    proc, output = start_cli("run", str(path), "--out", str(out))
    try:
        output.wait_for(line, timeout=120)
    finally:
        proc.kill()
        proc.wait(timeout=30)


def record_of(obj: Any) -> restore.Record:
    text = (obj.metadata.annotations or {}).get(restore.ANNOTATION)
    assert text, f"{obj.metadata.name} carries no restore record"
    record = restore.Record.from_json(text)
    assert record is not None
    return record


def restore_cli() -> str:
    result = cli("restore", "--namespace", "demo")
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_restore_after_sigkill_mid_scale(web: Any, tmp_path: Path) -> None:
    apps = client.AppsV1Api(web)
    kill_after(write_drill(tmp_path, FAULTS["scale"]), tmp_path / "out", "r1-i1: scaled")
    deployment = apps.read_namespaced_deployment("web", "demo")
    assert deployment.spec.replicas == 5
    assert record_of(deployment).original == 3
    assert "restoring Deployment demo/web" in restore_cli()
    deployment = apps.read_namespaced_deployment("web", "demo")
    assert deployment.spec.replicas == 3
    assert restore.ANNOTATION not in (deployment.metadata.annotations or {})
    assert "nothing left to restore" in restore_cli()


def test_restore_after_sigkill_mid_drain(web: Any, tmp_path: Path) -> None:
    core = client.CoreV1Api(web)
    kill_after(write_drill(tmp_path, FAULTS["node_drain"]), tmp_path / "out", "evicted pod")
    cordoned = [n for n in core.list_node().items if n.spec.unschedulable]
    assert len(cordoned) == 1
    assert record_of(cordoned[0]).original is False
    assert f"restoring Node {cordoned[0].metadata.name}" in restore_cli()
    node = core.read_node(cordoned[0].metadata.name)
    assert not node.spec.unschedulable
    assert restore.ANNOTATION not in (node.metadata.annotations or {})


def test_restore_after_sigkill_mid_liveness_break(web: Any, tmp_path: Path) -> None:
    core = client.CoreV1Api(web)
    kill_after(write_drill(tmp_path, FAULTS["liveness_break"]), tmp_path / "out",
               "removed /www/healthz")
    pods = core.list_namespaced_pod("demo", label_selector="app=web").items
    marked = [p for p in pods if restore.ANNOTATION in (p.metadata.annotations or {})]
    assert len(marked) == 1
    assert "restoring Pod demo/" in restore_cli()
    pod = core.read_namespaced_pod(marked[0].metadata.name, "demo")
    assert restore.ANNOTATION not in (pod.metadata.annotations or {})
    kube.wait_for_pods(web, "demo", "app=web",
                       lambda found: len(found) == 3 and all(map(kube.pod_ready, found)), 60)


def test_next_run_restores_what_a_killed_run_left(web: Any, cluster: LocalCluster,
                                                  tmp_path: Path) -> None:
    kill_after(write_drill(tmp_path, FAULTS["scale"]), tmp_path / "killed", "r1-i1: scaled")
    (tmp_path / "next").mkdir()
    path = write_drill(tmp_path / "next", FAULTS["pod_delete"])
    summary = DrillRun(load_drill(path), cluster, RunOptions(out_dir=tmp_path / "out"),
                       print).run()
    assert summary.passed, summary.slo_checks
    restored = [r for r in read_journal(tmp_path / "out" / "journal.jsonl")
                if r.event == "restored_leftover"]
    assert [(r.get("kind"), r.get("name"), r.get("original")) for r in restored] == [
        ("Deployment", "web", 3)]
    deployment = client.AppsV1Api(web).read_namespaced_deployment("web", "demo")
    assert deployment.spec.replicas == 3
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["passed"] is True
