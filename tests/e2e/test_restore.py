"""Nothing is left changed, even after SIGKILL: a drill records what it changes on the object
first, and `chaos-drill restore` (or the next run) puts back replicas, cordons, probes and
stopped nodes; what a live run changed, from whichever machine, is left to it (its Lease says it
is alive), two drills never change one target at once, and a record that cannot be read is
skipped in one line."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaos.cluster import kube, processes
from chaos.cluster.local import LocalCluster
from chaos.drill import lease_keeper, leases, restore
from chaos.drill.loading import load_drill
from chaos.results import read_journal
from chaos.run.runner import DrillRun, RunOptions

from support import (
    FAULTS,
    cli,
    error_line,
    run_drill,
    running_cli,
    scale,
    wait_node_ready,
    write_drill,
)

pytestmark = pytest.mark.e2e


def kill_after(path: Path, out: Path, line: str) -> None:
    """Runs the drill and SIGKILLs it once it printed LINE: nothing of it can clean up."""
    with running_cli("run", str(path), "--out", str(out)) as (proc, output):
        output.wait_for(line, timeout=120)


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


# -- Leases: one drill per target, live runs left alone, whichever machine they run on ----------

def chaos_leases(api: Any) -> dict[str, str]:
    """chaos-drill's Leases in demo: name -> holder (run id)."""
    found = client.CoordinationV1Api(api).list_namespaced_lease(
        "demo", label_selector="app.kubernetes.io/managed-by=chaos-drill").items
    return {lease.metadata.name: lease.spec.holder_identity for lease in found}


def test_two_scale_drills_started_together_on_one_deployment_one_is_refused_in_one_line(
        web: Any, tmp_path: Path) -> None:
    runs = []
    codes, stderrs = [], []
    with ExitStack() as running:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            path = write_drill(tmp_path / name, {"type": "scale", "replicas": 5}, probe=None,
                               rounds=2, intervalSeconds=2)
            runs.append((tmp_path / name / "out", *running.enter_context(running_cli(
                "run", str(path), "--out", str(tmp_path / name / "out")))))
        for _out, proc, output in runs:
            codes.append(proc.wait(timeout=300))
            stderrs.append(output.finish(timeout=30))
    assert sorted(codes) == [0, 2], stderrs
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    run_ids = [next(r.get("run") for r in read_journal(out / "journal.jsonl")
                    if r.event == "drill_started") for out, _proc, _output in runs]
    message = error_line(stderrs[loser], f"Deployment demo/web is being drilled by run "
                         f"{run_ids[winner]} (drill demo/e2e, pid {runs[winner][1].pid} on ",
                         "wait for it to end or stop it")
    assert "scaled" not in stderrs[loser], "the refused drill must change nothing"
    assert "PASSED" in stderrs[winner], stderrs[winner]
    deployment = client.AppsV1Api(web).read_namespaced_deployment("web", "demo")
    assert deployment.spec.replicas == 3, message
    assert restore.ANNOTATION not in (deployment.metadata.annotations or {})
    left = [name for name, holder in chaos_leases(web).items() if holder in run_ids]
    assert left == [], "both runs delete their Leases"


@contextmanager
def renewed_lease(api: Any, holder: leases.Holder, seconds: int) -> Iterator[threading.Event]:
    """A run Lease for HOLDER in demo, lasting SECONDS, renewed every second as another
    machine's run would renew it, until the event yielded is set; deleted afterwards."""
    coordination = client.CoordinationV1Api(api)
    name = leases.run_lease_name(holder.run)

    def body(version: str | None = None) -> dict[str, Any]:
        made = lease_keeper.lease_body(name, "demo", holder, datetime.now(UTC), version)
        made["spec"]["leaseDurationSeconds"] = seconds
        return made

    held = coordination.create_namespaced_lease("demo", body(), _request_timeout=10)
    stop = threading.Event()

    def renew() -> None:
        nonlocal held
        while not stop.wait(1.0):
            held = coordination.replace_namespaced_lease(
                name, "demo", body(held.metadata.resource_version), _request_timeout=10)

    renewer = threading.Thread(target=renew, name="other-host-renewer", daemon=True)
    renewer.start()
    try:
        yield stop
    finally:
        stop.set()
        renewer.join(timeout=15)
        try:
            coordination.delete_namespaced_lease(name, "demo", _request_timeout=10)
        except ApiException as error:
            if error.status != 404:
                raise


def test_a_change_by_a_live_run_on_another_host_is_left_alone_until_its_lease_expires(
        web: Any) -> None:
    apps = client.AppsV1Api(web)
    holder = leases.Holder("elsewhere01", "demo/theirs", "another-host", 4242,
                           "2026-01-01T00:00:00+00:00")
    record = restore.Record("elsewhere01", "scale", 3, "another-host", 4242,
                            "2026-01-01T00:00:00+00:00",
                            f"demo/{leases.run_lease_name('elsewhere01')}")
    try:
        with renewed_lease(web, holder, seconds=6) as stop_renewing:
            restore.mark_workload(web, "Deployment", "web", "demo", record)
            scale(web, 4)
            result = cli("restore", "--namespace", "demo")
            assert result.returncode == 0, result.stderr
            assert ("leaving Deployment demo/web: replicas (originally 3) by scale run "
                    "elsewhere01 (pid 4242 on another-host, 2026-01-01T00:00:00+00:00): the run "
                    "is alive (its Lease is being renewed)") in result.stderr, result.stderr
            deployment = apps.read_namespaced_deployment("web", "demo")
            assert deployment.spec.replicas == 4
            assert restore.ANNOTATION in (deployment.metadata.annotations or {})
            stop_renewing.set()  # the other machine's run dies: its Lease lapses in 6 s
            result = cli("restore", "--namespace", "demo")
            assert result.returncode == 0, result.stderr
            assert "restoring Deployment demo/web" in result.stderr, result.stderr
            assert leases.run_lease_name("elsewhere01") not in chaos_leases(web), (
                "restore deletes a dead run's expired Lease")
        deployment = apps.read_namespaced_deployment("web", "demo")
        assert deployment.spec.replicas == 3
        assert restore.ANNOTATION not in (deployment.metadata.annotations or {})
    finally:
        apps.patch_namespaced_deployment("web", "demo", {"metadata": {"annotations": {
            restore.ANNOTATION: None}}})
        scale(web, 3)


def test_a_tampered_record_is_skipped_in_one_line_and_the_others_are_restored(
        web: Any) -> None:
    apps, core = client.AppsV1Api(web), client.CoreV1Api(web)
    dead = restore.Record("deadrun0001", "scale", 3, "another-host", 1,
                          "2026-01-01T00:00:00+00:00", "demo/chaos-drill-run-deadrun0001")
    tampered = json.dumps({**json.loads(dead.to_json()), "original": None})
    node = sorted(n.metadata.name for n in core.list_node().items)[-1]
    try:
        restore.mark_workload(web, "Deployment", "web", "demo", dead)
        scale(web, 4)
        apps.patch_namespaced_deployment("api", "demo", {"metadata": {"annotations": {
            restore.ANNOTATION: tampered}}})
        core.patch_node(node, {"metadata": {"annotations": {restore.ANNOTATION: "{oops"}}})
        result = cli("restore", "--namespace", "demo")
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        skipped = [line for line in result.stderr.splitlines() if "skipped" in line]
        assert skipped[:2] == [
            f"chaos-drill: skipped Node {node}: its restore record cannot be used (it is not "
            f"JSON): check the object by hand, then remove the annotation (kubectl annotate "
            f"node {node} {restore.ANNOTATION}-)",
            "chaos-drill: skipped Deployment demo/api: its restore record cannot be used (its "
            "original is null, not a replica count): check the object by hand, then remove the "
            f"annotation (kubectl annotate deployment -n demo api {restore.ANNOTATION}-)"]
        assert "restoring Deployment demo/web" in result.stderr, result.stderr
        assert result.stderr.strip().splitlines()[-1] == (
            "chaos-drill: restored 1 change(s); skipped 2: see above")
        web_now = apps.read_namespaced_deployment("web", "demo")
        assert web_now.spec.replicas == 3
        assert restore.ANNOTATION not in (web_now.metadata.annotations or {})
        api_now = apps.read_namespaced_deployment("api", "demo")
        assert api_now.metadata.annotations[restore.ANNOTATION] == tampered, "left for a person"
    finally:
        unmark = {"metadata": {"annotations": {restore.ANNOTATION: None}}}
        for deployment in ("api", "web"):
            apps.patch_namespaced_deployment(deployment, "demo", unmark)
        core.patch_node(node, unmark)
        scale(web, 3)


# -- node_stop ---------------------------------------------------------------------------------

def node_processes(cluster: LocalCluster, node: str) -> list[str]:
    """The node's recorded processes that run (containerd NODE, kubelet NODE)."""
    return sorted(p.name for p in processes.load(cluster.lay.processes)
                  if p.name.endswith(f" {node}") and processes.is_alive(p))


def test_restore_after_sigkill_mid_node_stop_starts_the_node_again(
        web: Any, cluster: LocalCluster, tmp_path: Path) -> None:
    core = client.CoreV1Api(web)
    kill_after(write_drill(tmp_path, FAULTS["node_stop"]), tmp_path / "out", "stopped node")
    stopped = [n for n in core.list_node().items
               if restore.ANNOTATION in (n.metadata.annotations or {})]
    assert len(stopped) == 1, "node_stop records the stop on the node"
    node = stopped[0].metadata.name
    assert (record_of(stopped[0]).fault, record_of(stopped[0]).original) == ("node_stop", "local")
    assert node_processes(cluster, node) == [], "the killed run left the node stopped"
    result = cli("restore", "--namespace", "demo")
    assert result.returncode == 0, result.stderr
    assert f"restoring Node {node}: stopped by node_stop run " in result.stderr, result.stderr
    assert node_processes(cluster, node) == [f"containerd {node}", f"kubelet {node}"]
    wait_node_ready(web, node, timeout=90)
    assert restore.ANNOTATION not in (core.read_node(node).metadata.annotations or {})
    assert "nothing left to restore" in restore_cli()
