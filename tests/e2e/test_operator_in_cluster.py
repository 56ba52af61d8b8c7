"""The operator installed in the local cluster with `chaos-drill operator install`: its pods Ready
under Pod Security "restricted", its metrics on the Service, a drill applied with kubectl that
ends Passed, and its ServiceAccount denied, by real API calls with its own token, what it must
never do."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaos import operator, operator_install
from chaos.cluster.layout import KUBERNETES_VERSION, cache_dir
from chaos.cluster.local import LocalCluster
from chaos.restore import ANNOTATION

from support import wait_finished

pytestmark = pytest.mark.e2e
REPO = Path(__file__).parents[2]
ACCOUNT = "system:serviceaccount:chaos-drill:chaos-drill-operator"


def say(message: str) -> None:
    print(f"[operator] {message}", flush=True)


@pytest.fixture
def installed(web: Any, cluster: LocalCluster) -> Iterator[Any]:
    """The operator installed (opted in: demo), removed afterwards with everything it made."""
    operator_install.install(cluster, say, ["demo"], timeout=120)
    try:
        yield web
    finally:
        operator_install.uninstall(cluster, say, timeout=120)


def operator_token(api: Any) -> str:
    request = {"spec": {"audiences": [], "expirationSeconds": 600}}
    response = client.CoreV1Api(api).create_namespaced_service_account_token(
        "chaos-drill-operator", "chaos-drill", request)
    return str(response.status.token)


def as_operator(api: Any) -> Any:
    """An API client that authenticates with a token of the operator's own ServiceAccount."""
    configuration = client.Configuration()
    configuration.host = api.configuration.host
    configuration.ssl_ca_cert = api.configuration.ssl_ca_cert
    configuration.api_key = {"authorization": f"Bearer {operator_token(api)}"}
    return client.ApiClient(configuration)


def denied(call: Any, *args: Any, **kwargs: Any) -> str:
    """CALL fails with 403 Forbidden naming the operator's account; returns the message."""
    with pytest.raises(ApiException) as caught:
        call(*args, **kwargs)
    assert caught.value.status == 403, caught.value
    message = str(json.loads(caught.value.body)["message"])
    assert ACCOUNT in message
    return message


@pytest.fixture
def bystanders(api: Any) -> Iterator[dict[str, str]]:
    """Opted-in pods (label chaosdrill.dev/allow=true) where the operator was not bound: in a
    namespace of their own and in kube-system."""
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "not-opted-in"}})
    pods = {"not-opted-in": "bystander", "kube-system": "chaos-bystander"}
    for namespace, name in pods.items():
        core.create_namespaced_pod(namespace, {
            "metadata": {"name": name, "labels": {"chaosdrill.dev/allow": "true"}},
            "spec": {"containers": [{"name": "c", "image": "chaosdrill.local/pause:1",
                                     "imagePullPolicy": "IfNotPresent"}],
                     "terminationGracePeriodSeconds": 0}})
    try:
        yield pods
    finally:
        core.delete_namespaced_pod("chaos-bystander", "kube-system", grace_period_seconds=0)
        core.delete_namespace("not-opted-in")


def test_operator_is_denied_secrets_foreign_pods_and_rbac(installed: Any,
                                                          bystanders: dict[str, str]) -> None:
    admin = installed
    mine = as_operator(admin)
    core, rbac = client.CoreV1Api(mine), client.RbacAuthorizationV1Api(mine)
    # the token works: what the operator needs in an opted-in namespace is allowed
    assert client.CoreV1Api(mine).list_namespaced_pod("demo").items
    for namespace in ("demo", "chaos-drill", "kube-system"):
        denied(core.list_namespaced_secret, namespace)
    denied(core.list_secret_for_all_namespaces)
    for namespace, name in bystanders.items():
        message = denied(core.delete_namespaced_pod, name, namespace, grace_period_seconds=0)
        assert 'cannot delete resource "pods"' in message
        assert client.CoreV1Api(admin).read_namespaced_pod(name, namespace).metadata.uid
    binding = {"metadata": {"name": "chaos-drill-escalate"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "cluster-admin"},
               "subjects": [{"kind": "ServiceAccount", "name": "chaos-drill-operator",
                             "namespace": "chaos-drill"}]}
    denied(rbac.create_cluster_role_binding, binding)
    denied(rbac.create_namespaced_role_binding, "demo", {**binding, "metadata": {
        "name": "chaos-drill-escalate", "namespace": "demo"}})
    denied(rbac.patch_cluster_role, "chaos-drill-operator",
           {"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]})
    denied(rbac.delete_cluster_role_binding, "chaos-drill-operator")


def kubectl() -> str:
    path = cache_dir() / f"kubernetes-tools-v{KUBERNETES_VERSION}" / "bin" / "kubectl"
    if not path.exists():
        pytest.skip(f"kubectl is not built ({path}): run 'make kind'")
    return str(path)


def test_applied_drill_passes_with_incidents_and_metrics(installed: Any,
                                                         cluster: LocalCluster) -> None:
    api = installed
    service = client.CoreV1Api(api).read_namespaced_service("chaos-drill-operator",
                                                            "chaos-drill")
    result = subprocess.run([kubectl(), "--kubeconfig", str(cluster.kubeconfig()), "apply", "-f",
                             str(REPO / "manifests/drills/web-pod-kill.yaml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    try:
        status = wait_finished(api, "web-pod-kill", 240)
    finally:
        client.CustomObjectsApi(api).delete_namespaced_custom_object(
            operator.GROUP, operator.VERSION, "demo", operator.PLURAL, "web-pod-kill")
    assert status["phase"] == "Passed", status
    assert status["incidents"] == 5 and status["recovered"] == 5
    assert status["attempts"] == 1 and status["journal"]["configMap"].startswith("chaos-drill/")
    # each replica's metrics, by pod as the in-cluster Prometheus scrapes them: the active one
    # injected the 5 faults, the standby none (peering ran the drill once)
    endpoints = client.CoreV1Api(api).read_namespaced_endpoints("chaos-drill-operator-pods",
                                                                "chaos-drill")
    addresses = [a.ip for subset in endpoints.subsets for a in subset.addresses]
    counts = sorted(injected_pod_deletes(f"http://{ip}:9464/metrics") for ip in addresses)
    assert counts == [0.0, 5.0], counts
    service = client.CoreV1Api(api).read_namespaced_service("chaos-drill-operator",
                                                            "chaos-drill")
    scraped = urllib.request.urlopen(f"http://{service.spec.cluster_ip}:9464/metrics",
                                     timeout=10).read().decode()
    assert "chaosdrill_build_info" in scraped
    assert_no_denials_logged(api)


def injected_pod_deletes(url: str) -> float:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("chaosdrill_faults_injected_total")
               and 'fault="pod_delete"' in line)


def assert_no_denials_logged(api: Any) -> None:
    """The operator's RBAC is enough for what it did: neither replica logged a 403."""
    core = client.CoreV1Api(api)
    for pod in core.list_namespaced_pod("chaos-drill").items:
        log = core.read_namespaced_pod_log(pod.metadata.name, "chaos-drill")
        assert "forbidden" not in log.lower(), log[-3000:]


def web_replicas(api: Any) -> tuple[int, str | None]:
    web = client.AppsV1Api(api).read_namespaced_deployment("web", "demo")
    return web.spec.replicas, (web.metadata.annotations or {}).get(ANNOTATION)


def wait_status(api: Any, name: str, done: Any, timeout: float, what: str) -> dict[str, Any]:
    custom = client.CustomObjectsApi(api)
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = custom.get_namespaced_custom_object_status(
            operator.GROUP, operator.VERSION, "demo", operator.PLURAL, name).get("status") or {}
        if done(status):
            return status
        time.sleep(0.2)
    pytest.fail(f"{what}: not within {timeout:.0f}s; status {status}")


def test_killing_the_active_operator_mid_drill_restores_and_the_drill_still_ends(
        installed: Any, cluster: LocalCluster) -> None:
    api = installed
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    original, _ = web_replicas(api)
    drill = {"apiVersion": "chaosdrill.dev/v1alpha1", "kind": "ChaosDrill",
             "metadata": {"name": "op-kill", "namespace": "demo"},
             "spec": {"target": {"kind": "Deployment", "name": "web"},
                      "fault": {"type": "scale", "replicas": original + 2},
                      "rounds": 2, "intervalSeconds": 2, "seed": 1,
                      "slo": {"maxRecoverySeconds": 60}}}
    custom.create_namespaced_custom_object(operator.GROUP, operator.VERSION, "demo",
                                           operator.PLURAL, drill)
    try:
        # round 1 scaled web up and back (its incident recorded), then round 2 scaled it up
        wait_status(api, "op-kill", lambda s: s.get("incidents", 0) >= 1
                    and web_replicas(api) == (original, None), 120, "op-kill's round 1 over")
        first = wait_status(api, "op-kill", lambda s: web_replicas(api)[1] is not None, 60,
                            "op-kill's round 2 with web scaled and its restore record on")
        active = core.read_namespaced_pod(first["operator"], "chaos-drill")
        container = active.status.container_statuses[0].container_id.split("://")[1]
        cluster.container_kill(active.spec.node_name, container)  # SIGKILL: no clean-up
        say(f"SIGKILLed the operator in {first['operator']} mid-drill")
        status = wait_status(api, "op-kill", lambda s: s.get("phase") in operator.FINISHED,
                             180, "op-kill Passed or Failed after its operator was killed")
        journals = core.read_namespaced_config_map(
            status["journal"]["configMap"].split("/")[1], "chaos-drill").data
    finally:
        custom.delete_namespaced_custom_object(operator.GROUP, operator.VERSION, "demo",
                                               operator.PLURAL, "op-kill")
    assert status["attempts"] == 2, status
    assert status["phase"] == "Passed", status
    assert status["incidents"] == 2 and status["recovered"] == 2
    assert web_replicas(api) == (original, None)  # scaled back, no restore record left
    assert not [n.metadata.name for n in core.list_node().items if n.spec.unschedulable]
    assert sorted(journals) == ["attempt-1.jsonl", "attempt-2.jsonl"]
    restored = [json.loads(line) for line in journals["attempt-2.jsonl"].splitlines()
                if '"restored_leftover"' in line]
    assert [(r["kind"], r["name"]) for r in restored] == [("Deployment", "web")], restored
