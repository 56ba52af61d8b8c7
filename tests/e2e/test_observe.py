"""What others break, recorded on the real local cluster: `watch --out` during a `kubectl delete
pod` and a container SIGKILLed through containerd from outside chaos-drill, and during a scale
down and up, which breaks nothing; and a container killed twice in a row, whose second, slow
restart is put down to the kubelet's back-off."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaos.cluster import kube
from chaos.cluster.local import LocalCluster
from chaos.drill.fault_types import fault_type

from support import KUBECTL, cli, running_cli, scale, write_drill

pytestmark = pytest.mark.e2e


def web_pods(api: Any) -> list[Any]:
    pods = client.CoreV1Api(api).list_namespaced_pod("demo", label_selector="app=web").items
    return sorted((p for p in pods if not p.metadata.deletion_timestamp),
                  key=lambda p: p.metadata.name)


def kill_container(cluster: LocalCluster, pod: Any) -> None:
    """SIGKILLs the pod's container through its node's containerd, as an operator would."""
    node = next(n for n in cluster.lay.nodes if n.name == pod.spec.node_name)
    container = pod.status.container_statuses[0].container_id.split("://", 1)[-1]
    subprocess.run(["ctr", "--address", str(node.socket), "--namespace", "k8s.io", "tasks",
                    "kill", "--signal", "SIGKILL", container], check=True, timeout=60,
                   capture_output=True)


def in_order(incident: dict[str, Any]) -> list[str]:
    """The incident's phases, checked to be the fault's own, each no earlier than the last."""
    phases = incident["phases"]
    assert list(phases) == list(fault_type(incident["fault"]).phases), phases
    times = list(phases.values())
    assert times == sorted(times) and times[0] == 0.0, phases
    return list(phases)


def test_watch_records_a_kubectl_delete_and_a_container_kill(
        web: Any, cluster: LocalCluster, tmp_path: Path) -> None:
    out = tmp_path / "watched"
    with running_cli("watch", "--target", "Deployment/web", "--out",
                     str(out)) as (watch, output):
        output.wait_for("recording what others break", timeout=60)
        deleted, killed = web_pods(web)[:2]
        subprocess.run([str(KUBECTL), "--kubeconfig", str(cluster.kubeconfig()), "-n", "demo",
                        "delete", "pod", deleted.metadata.name, "--wait=false"], check=True,
                       timeout=60, capture_output=True)
        output.wait_for("o1: recovered", timeout=90)
        kill_container(cluster, killed)
        output.wait_for("o2: recovered", timeout=90)
        watch.send_signal(signal.SIGINT)
        code = watch.wait(timeout=60)
        (tmp_path / "watch.log").write_text(output.finish(30))  # to read on failure
        assert code == 0, (tmp_path / "watch.log").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["drill"] == "watch" and summary["passed"], summary["slo_checks"]
    first, second = summary["incidents"]
    assert (first["id"], first["fault"], first["target_pod"], first["origin"]) == (
        "o1", "pod_delete", deleted.metadata.name, "observed")
    assert (second["id"], second["fault"], second["target_pod"], second["origin"]) == (
        "o2", "container_kill", killed.metadata.name, "observed")
    for incident in (first, second):
        in_order(incident)
        assert incident["recovery_seconds"] is not None and incident["timing"], incident
    assert second["restart_count"] >= 1
    assert "deletionTimestamp" in first["injected_from"]
    assert "finishedAt" in second["injected_from"]
    report = (out / "report.html").read_text()
    assert report.count('class="observed">observed</span>') >= 4  # table and chart, each
    assert "API timestamps have 1 s resolution" in report


def test_watch_takes_a_scale_down_and_up_for_no_incident(web: Any, tmp_path: Path) -> None:
    out = tmp_path / "watched"
    before = {p.metadata.name for p in web_pods(web)}
    with running_cli("watch", "--target", "Deployment/web", "--out",
                     str(out)) as (watch, output):
        output.wait_for("recording what others break", timeout=60)
        scale(web, 2)
        output.wait_for("removed by a scale-down", timeout=60)
        scale(web, 3)
        watch.send_signal(signal.SIGINT)
        code = watch.wait(timeout=60)
        log = output.finish(30)
        (tmp_path / "watch.log").write_text(log)  # to read on failure
        assert code == 0, log
    assert ": observed " not in log, log
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] and summary["incidents"] == [], summary
    [removed] = summary["scale_downs"]
    gone = before - {p.metadata.name for p in web_pods(web)}
    assert len(gone) == 1 and removed.startswith(f"{gone.pop()}: ReplicaSet/web-"), removed
    assert removed.endswith(" scaled to 2"), removed
    assert "not incidents: " + removed in (out / "report.html").read_text()


def test_a_container_killed_twice_restarts_late_and_the_back_off_is_named(
        web: Any, tmp_path: Path) -> None:
    # a pod never restarted, so the kubelet holds no back-off for it before the first kill
    victim = next(p.metadata.name for p in web_pods(web)
                  if p.status.container_statuses[0].restart_count == 0)
    client.CoreV1Api(web).patch_namespaced_pod(victim, "demo",
                                               {"metadata": {"labels": {"victim": "yes"}}})
    path = write_drill(tmp_path, {"type": "container_kill"}, rounds=2, intervalSeconds=0,
                       probe=None, target={"labelSelector": {"matchLabels": {
                           "app": "web", "victim": "yes"}}})
    out = tmp_path / "out"
    result = cli("run", str(path), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    first, second = summary["incidents"]
    assert first["target_pod"] == second["target_pod"] == victim
    assert in_order(first) == in_order(second) == list(fault_type("container_kill").phases)
    assert not [c for c in first["causes"] if c.startswith("restart delayed")], (
        "the first kill restarts at once", first["causes"])
    restart = second["phases"]["restarted"] - second["phases"]["container_exited"]
    assert restart > 5, f"the second restart took only {restart:.1f} s: no back-off?"
    assert any(e["reason"] == "BackOff" for e in second["events"]), second["events"]
    [cause] = second["causes"]
    assert cause.startswith("restart delayed") and "by CrashLoopBackOff (BackOff event" in cause
    report = (out / "report.html").read_text()
    assert f"why: {cause}" in report
    [advice] = [a for a in summary["advice"] if a["check"] == "crash-loop"]
    assert advice["evidence"].startswith(f"r2-i1: the restart waited {restart:.1f} s after the "
                                         "container exited (BackOff event at +"), advice
    assert f"[crash-loop] {advice['finding']}" in result.stderr
    assert kube.pod_ready(client.CoreV1Api(web).read_namespaced_pod(victim, "demo"))
