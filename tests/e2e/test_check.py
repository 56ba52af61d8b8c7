"""`chaos-drill check` on the real local cluster: a deliberately weak Deployment gets each finding,
a hardened one none; a missing target, a missing namespace and an unreachable cluster each get one
line and exit 2."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from chaos.cluster import kube
from chaos.cluster.local import LocalCluster

from support import cli, free_port, one_error

pytestmark = pytest.mark.e2e

NAMESPACE = "chaos-check-e2e"
OPT_IN = {"chaosdrill.dev/allow": "true"}
IMAGE = "chaosdrill.local/web:1"
POD_SECURITY = {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
DELETE_SECONDS = 120


def deployment(name: str, replicas: int, container: dict[str, Any],
               **pod_spec: Any) -> dict[str, Any]:
    labels = {"app": name, **OPT_IN}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "automountServiceAccountToken": False,
                         "terminationGracePeriodSeconds": 5, "securityContext": POD_SECURITY,
                         "containers": [{"name": "web", "image": IMAGE,
                                         "imagePullPolicy": "IfNotPresent",
                                         "ports": [{"name": "http", "containerPort": 8080}],
                                         "securityContext": CONTAINER_SECURITY, **container}],
                         **pod_spec}}}}


def service(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": "http"}]}}


WEAK = deployment("weak", 1, {})
HARDENED = deployment(
    "hardened", 3,
    {"readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
     "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 2,
                       "failureThreshold": 3},
     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
     "lifecycle": {"preStop": {"sleep": {"seconds": 2}}}},
    topologySpreadConstraints=[{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                "whenUnsatisfiable": "ScheduleAnyway",
                                "labelSelector": {"matchLabels": {"app": "hardened"}}}])
HARDENED_PDB = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": "hardened", "namespace": NAMESPACE},
                "spec": {"maxUnavailable": 1,
                         "selector": {"matchLabels": {"app": "hardened"}}}}


@pytest.fixture
def check_namespace(cluster: LocalCluster) -> Iterator[Any]:
    """An opted-in namespace holding the weak and the hardened Deployment (each behind a
    Service), both rolled out; deleted afterwards, and waited for, within DELETE_SECONDS."""
    api = kube.api_client(cluster.kubeconfig())
    core = client.CoreV1Api(api)
    _delete_namespace(core)  # a run killed before its cleanup
    core.create_namespace({"metadata": {"name": NAMESPACE, "labels": {
        **OPT_IN, "pod-security.kubernetes.io/enforce": "restricted"}}}, _request_timeout=30)
    try:
        apps, policy = client.AppsV1Api(api), client.PolicyV1Api(api)
        for body in (WEAK, HARDENED):
            apps.create_namespaced_deployment(NAMESPACE, body, _request_timeout=30)
            core.create_namespaced_service(NAMESPACE, service(body["metadata"]["name"]),
                                           _request_timeout=30)
        policy.create_namespaced_pod_disruption_budget(NAMESPACE, HARDENED_PDB,
                                                       _request_timeout=30)
        for app, replicas in (("weak", 1), ("hardened", 3)):
            kube.wait_for_pods(api, NAMESPACE, f"app={app}", _all_ready(replicas), timeout=120)
        yield api
    finally:
        _delete_namespace(core)


def _all_ready(replicas: int) -> Callable[[list[Any]], bool]:
    return lambda pods: len(pods) == replicas and all(kube.pod_ready(p) for p in pods)


def _delete_namespace(core: Any) -> None:
    kube.ignore_missing(core.delete_namespace, NAMESPACE)
    kube.wait_until(core.list_namespace, (), NAMESPACE, lambda ns: ns is None, DELETE_SECONDS,
                    f"namespace {NAMESPACE} to be deleted")


def checks_in(stdout: str) -> list[str]:
    return re.findall(r"^  \[([a-z-]+)\] ", stdout, re.MULTILINE)


def test_weak_and_hardened(check_namespace: Any) -> None:
    weak = cli("check", "--target", "Deployment/weak", "--namespace", NAMESPACE)
    assert weak.returncode == 1, weak.stdout + weak.stderr
    assert checks_in(weak.stdout) == ["replicas", "pdb", "spread", "readiness", "resources",
                                      "prestop"], weak.stdout
    assert f"Deployment {NAMESPACE}/weak: weak spots (6):" in weak.stdout
    assert "evidence: spec.replicas: 1" in weak.stdout
    assert "Service(s) weak select its pods" in weak.stdout
    hardened = cli("check", "--target", "Deployment/hardened", "--namespace", NAMESPACE)
    assert hardened.returncode == 0, hardened.stdout + hardened.stderr
    assert hardened.stdout == f"Deployment {NAMESPACE}/hardened: no weak spots found\n"


def test_missing_target_and_namespace(check_namespace: Any) -> None:
    missing = cli("check", "--target", "Deployment/nope", "--namespace", NAMESPACE)
    one_error(missing, f"Deployment {NAMESPACE}/nope not found", "--target", alone=True)
    assert missing.stdout == ""
    gone = cli("check", "--target", "Deployment/web", "--namespace", "no-such-namespace")
    one_error(gone, "namespace no-such-namespace not found", alone=True)


def test_unreachable_cluster(tmp_path: Path) -> None:
    port = free_port()
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "gone",
              "clusters": [{"name": "gone", "cluster": {"server": f"https://127.0.0.1:{port}",
                                                        "insecure-skip-tls-verify": True}}],
              "users": [{"name": "u", "user": {"token": "t"}}],
              "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}]}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    result = cli("check", "--target", "Deployment/web", "--provider", "kubeconfig",
                 "--kubeconfig", str(path))
    one_error(result, "cannot reach the Kubernetes API server", alone=True)
