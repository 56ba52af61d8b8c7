"""The local cluster is a real Kubernetes: nodes, Services, logs, exec, self-healing, scaling."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import time
import urllib.request
from typing import Any

import pytest
from kubernetes import client
from kubernetes.stream import stream

from chaos import resources
from chaos.cluster import configs, kube, network
from chaos.cluster.local import LocalCluster

from support import ready_pods

pytestmark = pytest.mark.e2e
SELECTOR = "app=web"


def test_nodes_ready_at_pinned_version(api: Any) -> None:
    nodes = client.CoreV1Api(api).list_node().items
    assert sorted(n.metadata.name for n in nodes) == ["node-1", "node-2"]
    assert all(kube.node_ready(n) for n in nodes)
    assert {n.status.node_info.kubelet_version for n in nodes} == {
        f"v{resources.KUBERNETES_VERSION}"
    }


def test_service_answers_from_the_host(web: Any) -> None:
    service = client.CoreV1Api(web).read_namespaced_service("web", "demo")
    url = f"http://{service.spec.cluster_ip}/"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body = response.read().decode()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert "chaos-drill web" in body
    web_pods = client.CoreV1Api(web).list_namespaced_pod("demo", label_selector=SELECTOR).items
    assert len(ready_pods(web_pods)) == 3


def test_logs_and_exec_reach_the_kubelet(web: Any) -> None:
    core = client.CoreV1Api(web)
    pod = core.list_namespaced_pod("demo", label_selector=SELECTOR).items[0]
    output = stream(core.connect_get_namespaced_pod_exec, pod.metadata.name, "demo",
                    command=["/bin/busybox", "cat", "/www/healthz"],
                    stderr=True, stdin=False, stdout=True, tty=False)
    assert output.strip() == "ok"
    logs = core.read_namespaced_pod_log(pod.metadata.name, "demo")
    assert "response:200" in logs


def test_deleted_pod_is_replaced_and_ready(web: Any) -> None:
    core = client.CoreV1Api(web)
    victim = core.list_namespaced_pod("demo", label_selector=SELECTOR).items[0]
    core.delete_namespaced_pod(victim.metadata.name, "demo", grace_period_seconds=0)

    def replaced(pods: list[Any]) -> bool:
        ready = ready_pods(pods)
        return len(ready) == 3 and victim.metadata.uid not in {p.metadata.uid for p in ready}

    kube.wait_for_pods(web, "demo", SELECTOR, replaced, timeout=60)


def test_killed_container_is_restarted_in_place(web: Any, cluster: LocalCluster) -> None:
    core = client.CoreV1Api(web)
    pod = core.list_namespaced_pod("demo", label_selector=SELECTOR).items[0]
    status = pod.status.container_statuses[0]
    cluster.container_kill(pod.spec.node_name, status.container_id.split("://", 1)[1])

    def restarted(pods: list[Any]) -> bool:
        same = [p for p in pods if p.metadata.uid == pod.metadata.uid]
        return bool(same) and kube.pod_ready(same[0]) and (
            same[0].status.container_statuses[0].restart_count == status.restart_count + 1
        )

    kube.wait_for_pods(web, "demo", SELECTOR, restarted, timeout=60)


def test_scale_to_six(web: Any) -> None:
    client.AppsV1Api(web).patch_namespaced_deployment_scale(
        "web", "demo", {"spec": {"replicas": 6}}
    )
    kube.wait_for_pods(web, "demo", SELECTOR, lambda pods: len(ready_pods(pods)) == 6, 90)


@pytest.mark.parametrize("address", ["10.244.1.77", "10.244.200.1", "10.96.0.10", "10.111.1.1"])
def test_pod_and_service_ranges_never_take_the_default_route(cluster: LocalCluster,
                                                             address: str) -> None:
    route = subprocess.run(["ip", "route", "get", address], capture_output=True, text=True,
                           check=True, timeout=30).stdout
    assert f"dev {network.BRIDGE}" in route, route


def test_forward_guard_comes_before_any_kube_proxy_rule(cluster: LocalCluster) -> None:
    mangle = subprocess.run(["iptables", "-w", "-t", "mangle", "-S", "FORWARD"],
                            capture_output=True, text=True, check=True,
                            timeout=30).stdout.splitlines()
    assert [r for r in mangle if r.startswith("-A FORWARD")][0] == (
        f"-A FORWARD -j {network.GUARD_CHAIN}")
    guard = subprocess.run(["iptables", "-w", "-t", "mangle", "-S", network.GUARD_CHAIN],
                           capture_output=True, text=True, check=True, timeout=30).stdout
    assert f"-i {network.BRIDGE} ! -o {network.BRIDGE} -j DROP" in guard


RANGE_READ = """
import base64, json, socket, ssl, sys, urllib.request
body = json.dumps({"key": base64.b64encode(b"/registry/").decode(),
                   "range_end": base64.b64encode(b"/registry0").decode(),
                   "count_only": True}).encode()
outcomes = {}
for scheme, context in (("http", None), ("https", ssl._create_unverified_context())):
    try:
        with urllib.request.urlopen(urllib.request.Request(
                f"{scheme}://127.0.0.1:2379/v3/kv/range", data=body), timeout=5,
                context=context) as response:
            outcomes[scheme] = "read " + json.loads(response.read()).get("count", "0")
    except Exception as error:
        outcomes[scheme] = "refused: " + type(error).__name__
for key in sys.argv[1:]:
    try:
        open(key, "rb").close()
        outcomes[key] = "opened"
    except OSError as error:
        outcomes[key] = "refused: " + type(error).__name__
print(json.dumps(outcomes))
"""


def test_etcd_refuses_a_local_user_that_is_not_the_api_server(cluster: LocalCluster) -> None:
    """As nobody: no plain HTTP, no TLS without etcd's client cert, and no key to borrow. Root
    with the API server's etcd client cert reads the same range, so the refusals are real."""
    pk = cluster.lay.etcd_pki
    keys = [str(pk / f"{configs.ETCD_CLIENT}.key"), str(cluster.lay.pki / "ca.key")]
    as_nobody = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3",
         "-c", RANGE_READ, *keys], capture_output=True, text=True, timeout=60, check=True)
    outcomes = json.loads(as_nobody.stdout)
    assert all(value.startswith("refused") for value in outcomes.values()), outcomes
    context = ssl.create_default_context(cafile=str(pk / "ca.crt"))
    context.load_cert_chain(str(pk / f"{configs.ETCD_CLIENT}.crt"), keys[0])
    body = json.dumps({"key": base64.b64encode(b"/registry/").decode(),
                       "range_end": base64.b64encode(b"/registry0").decode(),
                       "count_only": True}).encode()
    request = urllib.request.Request(f"{configs.ETCD_URL}/v3/kv/range", data=body)
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        assert int(json.loads(response.read())["count"]) > 0
