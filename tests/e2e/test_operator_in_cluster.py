"""The operator installed in the local cluster with `chaos-drill operator install`: its pods Ready
under Pod Security "restricted", its metrics on the Service, a drill applied with kubectl that
ends Passed, and its ServiceAccount denied, by real API calls with its own token, what it must
never do."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaos.cluster import workloads
from chaos.cluster.kube import Workload
from chaos.cluster.local import LocalCluster
from chaos.drill.fault_types import LOAD_PHASES
from chaos.drill.faults.load import LOAD_LABEL
from chaos.drill.restore import ANNOTATION
from chaos.drill.spec import GROUP, PLURAL, VERSION
from chaos.monitoring import install as monitoring_install
from chaos.operator import handlers as operator
from chaos.operator import install as operator_install
from chaos.results import read_journal
from chaos.results.journal import Journal
from chaos.run import facts

from support import (
    KUBECTL,
    REPO,
    as_operator,
    cli,
    fresh_sample_workload,
    kind_down,
    wait_finished,
)

pytestmark = pytest.mark.e2e
ACCOUNT = "system:serviceaccount:chaos-drill:chaos-drill-operator"


def say(message: str) -> None:
    print(f"[operator] {message}", flush=True)


def denied(call: Any, *args: Any, **kwargs: Any) -> str:
    """CALL fails with 403 Forbidden naming the operator's account; returns the message."""
    with pytest.raises(ApiException) as caught:
        call(*args, **kwargs)
    assert caught.value.status == 403, caught.value
    message = str(json.loads(caught.value.body)["message"])
    assert ACCOUNT in message
    return message


@pytest.fixture(scope="module")
def operator_of_module(local_cluster: LocalCluster) -> Iterator[None]:
    """The operator installed once for this module's tests (opted in: demo), removed after the
    last: an install and its removal cost about half a minute."""
    kind_down(say)
    local_cluster.up(say)
    fresh_sample_workload(local_cluster, say)
    operator_install.install(local_cluster, say, ["demo"], timeout=120)
    try:
        yield
    finally:
        operator_install.uninstall(local_cluster, say, timeout=120)


@pytest.fixture
def installed(operator_of_module: None, web: Any) -> Any:
    """The module's operator, both replicas Ready again (a test may have stopped one), and web
    applied afresh: an API client."""
    workloads.wait_steady(web, operator_install.NAMESPACE, operator_install.NAME, 120)
    return web


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
                                                          bystanders: dict[str, str],
                                                          tmp_path: Path) -> None:
    admin = installed
    mine = as_operator(admin)
    core, rbac = client.CoreV1Api(mine), client.RbacAuthorizationV1Api(mine)
    # the token works: what the operator needs in an opted-in namespace is allowed, down to what
    # the advice reads (the workload, its PodDisruptionBudgets and Services), read-only
    assert client.CoreV1Api(mine).list_namespaced_pod("demo").items
    web = facts.read_facts(mine, Workload("Deployment", "web", "demo", {"app": "web"}))
    assert web.pdbs == ("web",) and "web" in web.services, web
    denied(client.PolicyV1Api(mine).delete_namespaced_pod_disruption_budget, "web", "demo")
    # where it is not bound the read is refused: one warning in the journal, no crash
    with Journal.open(tmp_path / "journal.jsonl") as journal:
        facts.journal_facts(mine, Workload("Deployment", "web", "not-opted-in", {}), journal)
    [warning] = read_journal(tmp_path / "journal.jsonl")
    assert warning.event == "warning" and "API error 403" in warning.get("message"), warning
    # each replica's /healthz, its liveness probe, answers while its kopf runs
    for pod in client.CoreV1Api(admin).list_namespaced_pod("chaos-drill").items:
        assert healthz(f"http://{pod.status.pod_ip}:8080/healthz", 20) == 200
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


def healthz(url: str, timeout: float) -> int:
    """URL's status once it is 200, or the last one after TIMEOUT seconds (503 until kopf's
    loop runs)."""
    deadline, status = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            status = error.code
        time.sleep(0.5)
    return status


def kubectl() -> str:
    if not KUBECTL.exists():
        pytest.fail(f"kubectl is not built ({KUBECTL}): run 'make kind'")
    return str(KUBECTL)


@pytest.fixture
def prometheus(installed: Any) -> Iterator[Any]:
    """The in-cluster Prometheus, installed with the CLI (image built here, cached) and
    uninstalled afterwards."""
    result = cli("monitor", "install", "--timeout", "120")
    say(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "")
    try:
        assert result.returncode == 0, result.stderr
        yield installed
    finally:
        result = cli("monitor", "uninstall")
        assert result.returncode == 0, result.stderr


def prometheus_query(api: Any, promql: str) -> list[dict[str, Any]]:
    """PROMQL's instant vector, from the in-cluster Prometheus's HTTP API through the API
    server's service proxy."""
    response = api.call_api(monitoring_install.proxy_path("/api/v1/query"), "GET",
                            query_params=[("query", promql)], auth_settings=["BearerToken"],
                            _preload_content=False, _return_http_data_only=True,
                            _request_timeout=10)
    body = json.loads(response.data)
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def by_instance(api: Any, promql: str, want: Any, timeout: float) -> dict[str, float]:
    """{instance: value} of PROMQL once WANT(it) holds; the test fails after TIMEOUT s."""
    deadline = time.monotonic() + timeout
    values: dict[str, float] = {}
    while time.monotonic() < deadline:
        values = {r["metric"]["instance"]: float(r["value"][1])
                  for r in prometheus_query(api, promql)}
        if want(values):
            return values
        time.sleep(1)
    pytest.fail(f"prometheus: {promql} is {values} after {timeout:.0f}s")


def test_applied_drill_passes_with_incidents_and_metrics(prometheus: Any,
                                                         cluster: LocalCluster) -> None:
    api = prometheus
    service = client.CoreV1Api(api).read_namespaced_service("chaos-drill-operator",
                                                            "chaos-drill")
    result = subprocess.run([kubectl(), "--kubeconfig", str(cluster.kubeconfig()), "apply", "-f",
                             str(REPO / "manifests/drills/web-pod-kill.yaml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    # the drill's series stay while its ChaosDrill does (and a while after it ends): it is
    # deleted only once its metrics are checked
    try:
        status = wait_finished(api, "web-pod-kill", 240)
        assert status["phase"] == "Passed", status
        assert status["incidents"] == 5 and status["recovered"] == 5
        assert status["attempts"] == 1
        assert status["journal"]["configMap"].startswith("demo/journal-")
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
        # the in-cluster Prometheus found both pods by the headless Service's DNS and scraped them
        pods = sorted(f"{ip}:9464" for ip in addresses)
        up = by_instance(api, 'up{job="chaos-drill"}', lambda v: sorted(v) == pods, 60)
        assert set(up.values()) == {1.0}, up
        by_instance(api, "chaosdrill_build_info", lambda v: sorted(v) == pods, 30)
        # the active pod's count; the standby's is 0 or absent (its families have no series yet)
        injected = by_instance(api, 'sum by (instance) (chaosdrill_faults_injected_total'
                               '{fault="pod_delete"})', lambda v: set(v) <= set(pods)
                               and sorted(v.values())[-1:] == [5.0] and sum(v.values()) == 5.0, 30)
        say(f"prometheus in the cluster: up {up}, pod_delete faults injected {injected}")
    finally:
        client.CustomObjectsApi(api).delete_namespaced_custom_object(
            GROUP, VERSION, "demo", PLURAL, "web-pod-kill")
    assert_no_denials_logged(api)


@pytest.mark.timeout(600)
def test_applied_load_drill_scales_web_out_and_in_with_its_phases_in_the_status(
        autoscaled: Any, installed: Any, cluster: LocalCluster) -> None:
    """manifests/drills/web-load.yaml through the in-cluster operator: its RBAC is enough for the
    load Job, the HPA and the Service, and the status carries the scale phases."""
    api = installed
    result = subprocess.run([kubectl(), "--kubeconfig", str(cluster.kubeconfig()), "apply", "-f",
                             str(REPO / "manifests/drills/web-load.yaml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    try:
        status = wait_finished(api, "web-load", 400)
    finally:
        client.CustomObjectsApi(api).delete_namespaced_custom_object(
            GROUP, VERSION, "demo", PLURAL, "web-load")
    assert status["phase"] == "Passed", status
    assert status["attempts"] == 1 and status["incidents"] == 1, status
    (incident,) = status["timeline"]
    phases = incident["phases"]  # the API server keeps JSON keys sorted: order them by time
    assert set(phases) == set(LOAD_PHASES), incident
    assert [phases[p] for p in LOAD_PHASES] == sorted(phases.values()), incident
    assert incident["peakReplicas"] > 3 and incident["scaleInSeconds"] > 0, incident
    assert incident["recoverySeconds"] is not None, incident
    say(f"load drill in the cluster: scale-out {incident['recoverySeconds']:.1f} s, scale-in "
        f"{incident['scaleInSeconds']:.1f} s after the load, peak {incident['peakReplicas']} "
        f"replicas, availability {status['availability']:.4f}")
    jobs = client.BatchV1Api(api).list_namespaced_job("demo", label_selector=LOAD_LABEL).items
    assert [j for j in jobs if not j.metadata.deletion_timestamp] == []
    assert client.AppsV1Api(api).read_namespaced_deployment("web", "demo").spec.replicas == 3
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
            GROUP, VERSION, "demo", PLURAL, name).get("status") or {}
        if done(status):
            return status
        time.sleep(0.2)
    pytest.fail(f"{what}: not within {timeout:.0f}s; status {status}")


def stop_operator(cluster: LocalCluster, pod: Any, how: str) -> None:
    """SIGKILL: the operator's process killed through the node's containerd, no clean-up;
    SIGTERM: `kubectl delete pod`, as in a rollout or a drain, which must end gracefully (the
    drill released and restored) well within the pod's 30 s grace period."""
    if how == "SIGKILL":
        container = pod.status.container_statuses[0].container_id.split("://")[1]
        cluster.container_kill(pod.spec.node_name, container)
        return
    command = [kubectl(), "--kubeconfig", str(cluster.kubeconfig()), "-n", "chaos-drill"]
    logs = subprocess.Popen([*command, "logs", "-f", pod.metadata.name],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    began = time.monotonic()
    try:
        result = subprocess.run([*command, "delete", "pod", pod.metadata.name],
                                capture_output=True, text=True, timeout=90)
        took = time.monotonic() - began
        log, _ = logs.communicate(timeout=30)  # ends with the container
    finally:
        logs.kill()
        logs.wait(timeout=10)
    assert result.returncode == 0, result.stderr
    say(f"kubectl delete pod {pod.metadata.name}: gone in {took:.1f}s; its last log lines:\n"
        + "\n".join(log.splitlines()[-15:]))
    assert took < 25, f"the operator took {took:.1f}s to stop on SIGTERM (grace period 30 s)"


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_stopping_the_active_operator_mid_drill_restores_and_the_drill_still_ends(
        installed: Any, cluster: LocalCluster, how: str) -> None:
    api = installed
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    original, _ = web_replicas(api)
    name = f"op-{how.lower()}"
    drill = {"apiVersion": "chaosdrill.dev/v1alpha1", "kind": "ChaosDrill",
             "metadata": {"name": name, "namespace": "demo"},
             "spec": {"target": {"kind": "Deployment", "name": "web"},
                      "fault": {"type": "scale", "replicas": original + 2},
                      "rounds": 2, "intervalSeconds": 2, "seed": 1,
                      "slo": {"maxRecoverySeconds": 60}}}
    custom.create_namespaced_custom_object(GROUP, VERSION, "demo",
                                           PLURAL, drill)
    try:
        # round 1 scaled web up and back (its incident recorded), then round 2 scaled it up
        wait_status(api, name, lambda s: s.get("incidents", 0) >= 1
                    and web_replicas(api) == (original, None), 120, f"{name}'s round 1 over")
        first = wait_status(api, name, lambda s: web_replicas(api)[1] is not None, 60,
                            f"{name}'s round 2 with web scaled and its restore record on")
        stop_operator(cluster, core.read_namespaced_pod(first["operator"], "chaos-drill"), how)
        say(f"{how}: stopped the operator in {first['operator']} mid-drill")
        status = wait_status(api, name, lambda s: s.get("phase") in operator.FINISHED,
                             180, f"{name} Passed or Failed after its operator got {how}")
        where, configmap = status["journal"]["configMap"].split("/")
        journals = core.read_namespaced_config_map(configmap, where).data
    finally:
        custom.delete_namespaced_custom_object(GROUP, VERSION, "demo",
                                               PLURAL, name)
    assert status["attempts"] == 2, status
    # what nothing may leave behind, whatever the verdict
    assert web_replicas(api) == (original, None)  # scaled back, no restore record left
    assert not [n.metadata.name for n in core.list_node().items if n.spec.unschedulable]
    if status["phase"] != "Passed":
        pytest.fail(f"attempt 2 ended {status['phase']} ({status.get('failedChecks')}); its "
                    "journal in brief:\n" + "\n".join(_story(journals.get("attempt-2.jsonl", ""))))
    assert status["incidents"] == 2 and status["recovered"] == 2
    assert sorted(journals) == ["attempt-1.jsonl", "attempt-2.jsonl"]
    first_run, second_run = ([json.loads(line) for line in journals[key].splitlines()]
                             for key in ("attempt-1.jsonl", "attempt-2.jsonl"))
    restored = [(r["kind"], r["name"]) for r in second_run if r["event"] == "restored_leftover"]
    if how == "SIGKILL":  # attempt 1 could not clean up: attempt 2 undid its record
        assert restored == [("Deployment", "web")], restored
        return
    # SIGTERM: attempt 1 restored web itself and said so in its journal, leaving nothing over
    assert restored == [], restored
    (finished,) = [r for r in first_run if r["event"] == "drill_finished"]
    assert finished["aborted"] is True, finished


def _story(journal: str) -> list[str]:
    """A failed attempt's journal in brief: every record but the probe's, times from the first."""
    records = [json.loads(line) for line in journal.splitlines() if line.strip()]
    first = next((r["mono"] for r in records if isinstance(r.get("mono"), int | float)), 0.0)
    return [f"{(r.get('mono') or first) - first:8.3f} " + json.dumps(
                {k: v for k, v in r.items() if k not in ("ts", "wall", "mono")})[:240]
            for r in records if r.get("event") != "probe_window"][-80:]
