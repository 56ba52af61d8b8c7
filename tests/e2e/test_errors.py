"""One-line errors on a real cluster: bad probes and targets refused before any fault, an RBAC
denial naming the verb and resource, and the API server going away mid-drill. Each exits 2 with
one line, no traceback, and nothing changed."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaos.cluster import configs, pki, processes
from chaos.cluster.local import LocalCluster
from chaos.drill import restore
from chaos.results import read_journal

from support import FAULTS, cli, crowd_deployment, one_error, running_cli, write_drill

pytestmark = pytest.mark.e2e


def pod_versions(api: Any) -> dict[str, str]:
    """The web pods' versions: any change to one (a delete, a patch) changes these."""
    pods = client.CoreV1Api(api).list_namespaced_pod("demo", label_selector="app=web").items
    return {p.metadata.uid: p.metadata.resource_version for p in pods}


@pytest.mark.parametrize(("probe", "needles"), [
    ({"service": "nope", "port": 80}, ("spec.probe.service", "demo/nope not found")),
    ({"service": "web", "port": 81}, ("spec.probe.port", "has no port 81", "80")),
])
def test_a_bad_probe_is_refused_before_any_fault(probe: dict[str, Any], needles: tuple[str, ...],
                                                 web: Any, tmp_path: Path) -> None:
    before = pod_versions(web)
    result = cli("run", str(write_drill(tmp_path, FAULTS["pod_delete"], probe=probe)),
                 "--out", str(tmp_path / "out"))
    one_error(result, *needles)
    assert pod_versions(web) == before
    assert not [r for r in read_journal(tmp_path / "out" / "journal.jsonl")
                if r.event == "fault_injected"]


def test_a_workload_with_no_opted_in_pod_is_refused(web: Any, tmp_path: Path) -> None:
    apps = client.AppsV1Api(web)
    shy = crowd_deployment(1, name="shy")
    shy["spec"]["template"]["metadata"]["labels"] = {"app": "shy"}  # not opted in
    apps.create_namespaced_deployment("demo", shy)
    try:
        before = pod_versions(web)
        path = write_drill(tmp_path, FAULTS["pod_delete"], probe=None,
                           target={"kind": "Deployment", "name": "shy"})
        result = cli("run", str(path), "--out", str(tmp_path / "out"))
        one_error(result, "no pod of Deployment demo/shy has opted in",
                       "chaosdrill.dev/allow=true")
        assert pod_versions(web) == before
    finally:
        apps.delete_namespaced_deployment("shy", "demo")


def viewer_kubeconfig(cluster: LocalCluster, api: Any, path: Path) -> Path:
    """A user who may read everything in namespaces and watch nodes, and hold a run's Leases
    (which a drill takes first), and change nothing else."""
    pki.issue(cluster.lay.pki, pki.CertRequest("viewer", "viewer"))
    configs.write_kubeconfig(path, cluster.lay, "viewer")
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_cluster_role({"metadata": {"name": "viewer-nodes"}, "rules": [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
         "verbs": ["get", "list", "watch", "create", "update", "delete"]}]})
    for role in ("view", "viewer-nodes"):
        rbac.create_cluster_role_binding({
            "metadata": {"name": f"viewer-{role}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": role},
            "subjects": [{"kind": "User", "name": "viewer",
                          "apiGroup": "rbac.authorization.k8s.io"}]})
    return path


def test_an_rbac_denial_names_the_verb_and_resource(web: Any, cluster: LocalCluster,
                                                    tmp_path: Path) -> None:
    rbac = client.RbacAuthorizationV1Api(web)
    kubeconfig = viewer_kubeconfig(cluster, web, tmp_path / "viewer.kubeconfig")
    try:
        result = cli("run", str(write_drill(tmp_path, FAULTS["scale"])), "--provider",
                     "kubeconfig", "--kubeconfig", str(kubeconfig), "--out", str(tmp_path / "o"))
        one_error(result, "403", 'User "viewer" cannot patch resource "deployments"',
                       "RBAC")
    finally:
        rbac.delete_cluster_role_binding("viewer-view")
        rbac.delete_cluster_role_binding("viewer-viewer-nodes")
        rbac.delete_cluster_role("viewer-nodes")
    deployment = client.AppsV1Api(web).read_namespaced_deployment("web", "demo")
    assert deployment.spec.replicas == 3
    assert restore.ANNOTATION not in (deployment.metadata.annotations or {})


def test_the_api_server_going_away_mid_drill_is_one_line(web: Any, cluster: LocalCluster,
                                                         tmp_path: Path) -> None:
    path = write_drill(tmp_path, FAULTS["pod_delete"], rounds=5, intervalSeconds=1,
                       recoveryTimeoutSeconds=10)
    out = tmp_path / "out"
    try:
        with running_cli("run", str(path), "--out", str(out)) as (proc, output):
            output.wait_for("r1-i1: recovered", timeout=120)
            apiserver = next(p for p in processes.load(cluster.lay.processes)
                             if p.name == "kube-apiserver")
            processes.stop(apiserver)
            code = proc.wait(timeout=180)
    finally:
        cluster.restart_component("kube-apiserver", print)
    stderr = output.finish(30)
    result = subprocess.CompletedProcess(proc.args, code, "", stderr)
    line = one_error(result)
    assert "cannot reach the Kubernetes API server" in line or "is not steady" in line, line
    assert (out / "summary.json").exists() and (out / "report.html").exists()
