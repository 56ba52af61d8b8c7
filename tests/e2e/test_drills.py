"""Drills on the real local cluster: every fault recovers with ordered phases that agree with
the API's timestamps; seeds repeat; dry runs change nothing; verdicts and crashes are honest."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaos.cluster import kube, workloads
from chaos.cluster.local import LocalCluster
from chaos.drill import restore
from chaos.drill.timeline import Incident
from chaos.results import JournalRecord, read_journal

from support import FAULTS, REPO, cli, run_drill, running_cli, wait_for_record, write_drill

pytestmark = pytest.mark.e2e


def api_recovery(out: Path) -> dict[str, float]:
    """Per incident: Ready's API timestamp minus the injection's wall-clock time."""
    injected: dict[str, datetime] = {}
    ready: dict[str, datetime] = {}
    for record in read_journal(out / "journal.jsonl"):
        if record.event == "fault_injected":
            injected[record.get("incident")] = datetime.fromisoformat(record.get("api_time"))
        if record.event == "phase" and record.get("phase") == "ready" and record.get("api_time"):
            ready[record.get("incident")] = datetime.fromisoformat(record.get("api_time"))
    return {i: (ready[i] - injected[i]).total_seconds() for i in ready if i in injected}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_fault_recovers_in_order(fault: str, web: Any, cluster: LocalCluster,
                                       tmp_path: Path) -> None:
    summary = run_drill(cluster, write_drill(tmp_path, FAULTS[fault]), tmp_path / "out")
    assert summary.passed, summary.slo_checks
    assert summary.incidents, "the drill opened no incident"
    by_api = api_recovery(tmp_path / "out")
    for incident in summary.incidents:
        assert incident.recovery_seconds is not None
        assert incident.ordered, incident.phases
        assert list(incident.phases) == [p for p in Incident(
            "x", 1, fault, "", "", "", service="web").expected_phases if p in incident.phases]
        if fault != "scale":  # scale phases span several pods and carry no API time
            # whole-second API timestamps: the truth lies within 1 s below the API figure's
            delta = incident.recovery_seconds - by_api[incident.id]
            assert -0.25 <= delta <= 1.25, (incident.id, incident.recovery_seconds, delta)
    nodes = client.CoreV1Api(web).list_node().items
    assert not any(n.spec.unschedulable for n in nodes), "node_drain must uncordon"
    if fault == "scale":
        replicas = client.AppsV1Api(web).read_namespaced_deployment("web", "demo").spec.replicas
        assert replicas == 3, "scale must restore the original replicas"


@pytest.mark.parametrize(("fault", "grace"), [("pod_delete", 0), ("pod_delete", 5),
                                            ("node_drain", 0)])
def test_the_grace_period_asked_is_the_one_the_api_applies(
        fault: str, grace: int, web: Any, cluster: LocalCluster, tmp_path: Path) -> None:
    """gracePeriodSeconds reaches the API: 0 removes the victim at once, as a crash would (the
    pods' own is 2 s); 5 gives it 5 s."""
    applied: dict[str, int | str] = {}

    def look(incident: Incident) -> None:
        try:
            pod = client.CoreV1Api(web).read_namespaced_pod(incident.target_pod, "demo")
            applied[incident.id] = pod.metadata.deletion_grace_period_seconds
        except ApiException as error:
            applied[incident.id] = "gone" if error.status == 404 else str(error.status)

    path = write_drill(tmp_path, {"type": fault, "gracePeriodSeconds": grace})
    summary = run_drill(cluster, path, tmp_path / "out", on_inject=look)
    assert summary.passed, summary.slo_checks
    assert applied and set(applied.values()) == {"gone" if grace == 0 else grace}, applied


def test_ten_rounds_ten_incidents_and_seeds_repeat(web: Any, cluster: LocalCluster,
                                                  tmp_path: Path) -> None:
    path = write_drill(tmp_path, FAULTS["pod_delete"], rounds=10, seed=123)
    dry = run_drill(cluster, path, tmp_path / "dry", dry_run=True)
    assert dry.incidents == ()
    real = run_drill(cluster, path, tmp_path / "real")
    assert len(real.incidents) == 10 and all(i.recovery_seconds for i in real.incidents)

    def first_victims(out: Path) -> list[str]:
        records = read_journal(out / "journal.jsonl")
        return next(r.get("victims") for r in records if r.event == "selection")

    assert first_victims(tmp_path / "dry") == first_victims(tmp_path / "real")
    assert real.incidents[0].target_pod == first_victims(tmp_path / "dry")[0]


def versions(api: Any) -> dict[str, str]:
    """The sample workload's pods and web's Deployment, each with its resourceVersion. Only
    those: another test's pods (a load Job's, a prober's) may still be going away meanwhile."""
    pods = client.CoreV1Api(api).list_namespaced_pod(
        "demo", label_selector="app in (web, api)").items
    deployment = client.AppsV1Api(api).read_namespaced_deployment("web", "demo")
    found = {p.metadata.uid: p.metadata.resource_version for p in pods}
    found["deployment"] = deployment.metadata.resource_version
    return found


@pytest.mark.parametrize("fault", ["pod_delete", "scale", "node_drain"])
def test_dry_run_changes_nothing(fault: str, web: Any, tmp_path: Path) -> None:
    before = versions(web)
    result = cli("run", str(write_drill(tmp_path, FAULTS[fault], rounds=2)), "--dry-run",
                 "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "dry run: would" in result.stderr
    assert versions(web) == before


def test_impossible_slo_fails_with_exit_1_and_junit(web: Any, tmp_path: Path) -> None:
    path = write_drill(tmp_path, FAULTS["pod_delete"],
                       slo={"maxRecoverySeconds": 0.001, "minAvailability": 0})
    result = cli("run", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 1, result.stderr
    junit = (tmp_path / "out" / "junit.xml").read_text()
    assert 'name="max_recovery_seconds"' in junit
    assert "<failure" in junit
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["passed"] is False


def test_unsteady_workload_is_refused(web: Any, tmp_path: Path) -> None:
    apps = client.AppsV1Api(web)
    broken = {
        "metadata": {"name": "broken", "labels": {"chaosdrill.dev/allow": "true"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "broken"}},
                 "template": {"metadata": {"labels": {"app": "broken",
                                                      "chaosdrill.dev/allow": "true"}},
                              "spec": {"containers": [{
                                  "name": "c", "image": "chaosdrill.local/missing:1",
                                  "imagePullPolicy": "IfNotPresent",
                                  "securityContext": {
                                      "allowPrivilegeEscalation": False,
                                      "runAsNonRoot": True, "runAsUser": 65534,
                                      "capabilities": {"drop": ["ALL"]},
                                      "seccompProfile": {"type": "RuntimeDefault"}}}]}}},
    }
    apps.create_namespaced_deployment("demo", broken)
    try:
        path = write_drill(tmp_path, FAULTS["pod_delete"], target={
            "kind": "Deployment", "name": "broken"}, probe=None)
        result = cli("run", str(path), "--out", str(tmp_path / "out"))
        assert result.returncode == 2, result.stderr
        assert "is not steady" in result.stderr
        assert (tmp_path / "out" / "journal.jsonl").exists()
        pods = client.CoreV1Api(web).list_namespaced_pod("demo", label_selector="app=broken")
        assert len(pods.items) == 1 and not pods.items[0].metadata.deletion_timestamp
    finally:
        apps.delete_namespaced_deployment("broken", "demo")


def test_killed_drill_leaves_a_journal_report_rebuilds(web: Any, tmp_path: Path) -> None:
    path = write_drill(tmp_path, FAULTS["pod_delete"], rounds=10, intervalSeconds=1)
    out = tmp_path / "out"
    with running_cli("run", str(path), "--out", str(out)) as (proc, output):
        output.wait_for("r2-i1: recovered", timeout=120)
    assert not (out / "summary.json").exists()
    result = cli("report", str(out))
    assert result.returncode == 1  # an interrupted drill is not a pass
    summary = json.loads((out / "summary.json").read_text())
    assert summary["aborted"] is True
    recovered = [i for i in summary["incidents"] if i["recovery_seconds"] is not None]
    assert len(recovered) >= 2
    assert "drill_completed" in (out / "junit.xml").read_text()


def test_observer_survives_an_apiserver_restart(web: Any, cluster: LocalCluster,
                                                tmp_path: Path) -> None:
    restarted = threading.Event()

    def restart_during_second_incident(incident: Incident) -> None:
        if incident.id == "r2-i1":
            cluster.restart_component("kube-apiserver", print)
            restarted.set()

    # pod_delete, not container_kill: a container killed again waits out CrashLoopBackOff
    path = write_drill(tmp_path, FAULTS["pod_delete"], rounds=3, intervalSeconds=1)
    summary = run_drill(cluster, path, tmp_path / "out", on_inject=restart_during_second_incident)
    assert restarted.is_set()
    assert [i.id for i in summary.incidents] == ["r1-i1", "r2-i1", "r3-i1"]
    assert all(i.recovery_seconds is not None for i in summary.incidents)
    workloads.wait_steady(web, "demo", "web", 60)


Found = Callable[[JournalRecord], bool]


def record(event: str, **fields: Any) -> Found:
    """Matches a journal record of EVENT whose fields hold FIELDS."""
    return lambda r: r.event == event and all(r.get(k) == v for k, v in fields.items())


@dataclass(frozen=True)
class Moment:
    """A phase of a 3-round scale drill for a signal to land in: it is sent once the phase began
    (WAIT, a line of the CLI's output or a journal record), and the journal then shows it landed
    there: BEGAN (if any) recorded before it, ENDED not; CLOSED is how each incident ended."""

    signum: int
    wait: str | Found
    began: Found | None
    ended: Found
    closed: dict[str, bool]


def during_recovery(signum: int) -> Moment:
    """Once r1-i1's new pods exist, before they are all Ready."""
    created = record("phase", incident="r1-i1", phase="replicas_created")
    return Moment(signum, created, created, record("incident_closed", incident="r1-i1"),
                  {"r1-i1": False})


def after_injecting(incident: str, closed: dict[str, bool]) -> Moment:
    injected = record("fault_injected", incident=incident)
    return Moment(signal.SIGINT, injected, injected, record("incident_closed", incident=incident),
                  closed)


MOMENTS = {
    # the CLI says this line once the run exists, before its observers and steady-state check
    "sigint_before_the_first_round": Moment(
        signal.SIGINT, "drill e2e:", None, record("round_started"), {}),
    "sigint_right_after_injecting": after_injecting("r1-i1", {"r1-i1": False}),
    "sigint_during_recovery": during_recovery(signal.SIGINT),
    # said after r1-i1 closed, before the 2 s interval and the second round's steady check
    "sigint_between_rounds_after_the_restore": Moment(
        signal.SIGINT, "restoring web to 3", record("incident_closed", incident="r1-i1"),
        record("round_started", round=2), {"r1-i1": True}),
    "sigint_during_the_second_round": after_injecting("r2-i1", {"r1-i1": True, "r2-i1": False}),
    "sigterm_during_recovery": during_recovery(signal.SIGTERM),
    "sighup_during_recovery": during_recovery(signal.SIGHUP),  # the terminal closes
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_a_signal_at_any_moment_restores_and_writes_results(
        moment: str, web: Any, tmp_path: Path) -> None:
    """The signal is sent once the phase began, and the journal's monotonic times (the same
    clock in both processes) show it landed in that phase: no sleeping and hoping."""
    at = MOMENTS[moment]
    path = write_drill(tmp_path, FAULTS["scale"], rounds=3, intervalSeconds=2)
    out = tmp_path / "out"
    with running_cli("run", str(path), "--out", str(out), tty=True) as (proc, output):
        if isinstance(at.wait, str):
            output.wait_for(at.wait, timeout=120)
        else:
            wait_for_record(out / "journal.jsonl", at.wait, timeout=120)
        sent = time.monotonic()
        proc.send_signal(at.signum)
        code = proc.wait(timeout=90)
    text = output.finish(30)
    assert code == 1, text
    assert f"{signal.Signals(at.signum).name}: stopping" in text
    records = read_journal(out / "journal.jsonl")
    before = [r.event for r in records if r.mono < sent]
    if at.began is not None:
        assert any(at.began(r) and r.mono < sent for r in records), (
            f"the signal came before its phase began: {before}")
    assert not any(at.ended(r) and r.mono < sent for r in records), (
        f"the signal came after its phase ended: {before}")
    closed = {r.get("incident"): r for r in records if r.event == "incident_closed"}
    assert {i: c.get("recovered") for i, c in closed.items()} == at.closed, closed
    assert all(c.get("reason") == "stopped" for c in closed.values() if not c.get("recovered"))
    assert records[-1].event == "drill_finished" and records[-1].get("aborted") is True
    deployment = client.AppsV1Api(web).read_namespaced_deployment("web", "demo")
    assert deployment.spec.replicas == 3, "the scale must be restored"
    assert restore.ANNOTATION not in (deployment.metadata.annotations or {})
    summary = json.loads((out / "summary.json").read_text())
    assert summary["aborted"] is True and summary["passed"] is False
    assert (out / "junit.xml").exists() and (out / "report.html").exists()
    workloads.wait_steady(web, "demo", "web", 60)


def test_a_second_ctrl_c_quits_at_once(web: Any, tmp_path: Path) -> None:
    path = write_drill(tmp_path, FAULTS["scale"], rounds=3, intervalSeconds=2)
    out = tmp_path / "out"
    with running_cli("run", str(path), "--out", str(out)) as (proc, output):
        output.wait_for("r1-i1: scaled", timeout=120)
        proc.send_signal(signal.SIGINT)
        output.wait_for("SIGINT: stopping", timeout=30)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 130
    assert "quit at once" in output.finish(30)
    assert (out / "journal.jsonl").exists()
    result = cli("restore", "--namespace", "demo")  # what the quit left, if anything
    assert result.returncode == 0, result.stderr
    deployment = client.AppsV1Api(web).read_namespaced_deployment("web", "demo")
    assert deployment.spec.replicas == 3


def test_missing_namespace_is_one_line(cluster: LocalCluster, tmp_path: Path) -> None:
    path = write_drill(tmp_path, FAULTS["pod_delete"])
    path.write_text(path.read_text().replace("namespace: demo", "namespace: nowhere"))
    result = cli("run", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "namespace nowhere not found" in lines[0]


def stateful_set(name: str, replicas: int) -> dict[str, Any]:
    """The sample app as a StatefulSet (restricted pod security, opted in)."""
    template = yaml.safe_load((REPO / "manifests" / "workloads" / "web.yaml").read_text()
                              .split("---")[1])["spec"]["template"]
    template["metadata"]["labels"] = {"app": name, "chaosdrill.dev/allow": "true"}
    return {"metadata": {"name": name},
            "spec": {"replicas": replicas, "serviceName": name,
                     "podManagementPolicy": "Parallel",
                     "selector": {"matchLabels": {"app": name}}, "template": template}}


@pytest.mark.parametrize("fault", ["pod_delete", "scale"])
def test_stateful_set_targets(fault: str, web: Any, cluster: LocalCluster,
                              tmp_path: Path) -> None:
    apps = client.AppsV1Api(web)
    apps.create_namespaced_stateful_set("demo", stateful_set("db", 2))
    try:
        kube.wait_for_pods(web, "demo", "app=db",
                           lambda pods: len([p for p in pods if kube.pod_ready(p)]) == 2, 120)
        path = write_drill(tmp_path, {**FAULTS[fault], "replicas": 3} if fault == "scale"
                           else FAULTS[fault], target={"kind": "StatefulSet", "name": "db"},
                           probe=None, slo={"maxRecoverySeconds": 120})
        summary = run_drill(cluster, path, tmp_path / "out")
        assert summary.passed, summary.slo_checks
        assert all(i.recovery_seconds is not None for i in summary.incidents)
        assert apps.read_namespaced_stateful_set("db", "demo").spec.replicas == 2
    finally:
        apps.delete_namespaced_stateful_set("db", "demo")
