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

from support import FAULTS, cli, run_drill, scale, start_cli, write_drill

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


def test_a_scale_drill_after_a_dead_runs_scale_starts_from_the_restored_count(
        web: Any, cluster: LocalCluster, tmp_path: Path) -> None:
    """A dead run left web scaled to 5: the next run restores 3 and must wait until its watch has
    seen that, or its own scale to 5 is 'recovered' by the pods about to go (the operator's
    second attempt after a SIGKILL met this)."""
    dead = restore.Record("dead-run", "scale", 3, "another-host", 1, "2026-01-01T00:00:00+00:00")
    restore.mark_workload(web, "Deployment", "web", "demo", dead)
    scale(web, 5)
    path = write_drill(tmp_path, {"type": "scale", "replicas": 5}, probe=None)
    summary = run_drill(cluster, path, tmp_path / "out")
    records = read_journal(tmp_path / "out" / "journal.jsonl")
    assert [(r.get("name"), r.get("original")) for r in records
            if r.event == "restored_leftover"] == [("web", 3)]
    order = [r.event if r.event != "phase" else r.get("phase") for r in records
             if r.event in ("fault_injected", "phase")]
    assert order[0] == "fault_injected", order
    [incident] = summary.incidents
    assert incident.recovery_seconds is not None and incident.recovery_seconds > 0.1, incident
    assert summary.passed, summary.slo_checks


def test_a_replica_change_the_watch_has_not_delivered_is_not_steady(
        web: Any, cluster: LocalCluster, tmp_path: Path) -> None:
    """The race behind the case above, made certain: with the workload watch held back, a
    replica change made through the API keeps the run from calling the workload steady, where
    the watch's last word (3 of 3 Ready) alone would."""
    path = write_drill(tmp_path, {"type": "scale", "replicas": 5}, probe=None)
    run = DrillRun(load_drill(path), cluster, RunOptions(out_dir=tmp_path / "out"), print)
    try:
        run.observer.start()
        assert run._wait_steady(30), "web is steady before the change"
        [workload_watch] = [w for w in run.observer.watches if w.name == "workload"]
        workload_watch.stop()
        client.AppsV1Api(web).patch_namespaced_deployment_scale(
            "web", "demo", {"spec": {"replicas": 4}}, _request_timeout=30)
        assert run.observer.workload_status["desired"] == 3, "the watch did not deliver it"
        assert not run._wait_steady(2.0)
    finally:
        run.observer.stop()
        run.journal.close()
        scale(web, 3)
