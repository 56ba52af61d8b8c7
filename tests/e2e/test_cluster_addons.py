"""The local cluster's add-ons on the real cluster: a pod resolves Services by name through
kube-dns, and pod metrics come through the aggregated metrics API (as `kubectl top` reads them)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.utils import parse_quantity

from chaos.cluster import addons, kube, network

from support import run_in

pytestmark = pytest.mark.e2e
NAME = "web.demo.svc.cluster.local"


def test_addons_are_ready_when_up_returns(api: Any) -> None:
    assert addons.not_ready(api) == []


def test_a_pod_resolves_a_service_by_name(web: Any) -> None:
    core = client.CoreV1Api(web)
    pod = core.list_namespaced_pod("demo", label_selector="app=web").items[0].metadata.name
    service_ip = core.read_namespaced_service("web", "demo").spec.cluster_ip
    resolv = run_in(web, pod, "cat", "/etc/resolv.conf")
    assert f"nameserver {network.DNS_SERVICE_IP}" in resolv
    assert "search demo.svc.cluster.local svc.cluster.local cluster.local" in resolv
    answer = run_in(web, pod, "nslookup", NAME)
    assert service_ip in answer, answer
    # no -T: busybox wget's timeout option crashes the static build (SIGSEGV). kube-proxy may
    # still route to a pod the fixture just replaced ("No route to host"): wait for its rules.
    deadline = time.monotonic() + 30
    page = run_in(web, pod, "wget", "-q", "-O", "-", "http://web/")
    while "chaos-drill web" not in page:
        assert time.monotonic() < deadline, f"http://web/ from pod {pod} for 30 s: {page}"
        time.sleep(0.5)
        page = run_in(web, pod, "wget", "-q", "-O", "-", "http://web/")


def test_pod_metrics_come_through_the_metrics_api(web: Any) -> None:
    pods = {p.metadata.name for p in client.CoreV1Api(web).list_namespaced_pod(
        "demo", label_selector="app=web").items}
    metrics = client.CustomObjectsApi(web)
    deadline = time.monotonic() + 90
    seen: set[str] = set()
    items: list[dict[str, Any]] = []
    while not pods <= seen:
        assert time.monotonic() < deadline, f"PodMetrics only for {sorted(seen)} of {sorted(pods)}"
        time.sleep(1)
        items = metrics.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", "demo",
                                                      "pods")["items"]
        seen = {item["metadata"]["name"] for item in items}
    for item in items:
        if item["metadata"]["name"] in pods:
            usage = item["containers"][0]["usage"]
            # quantities in canonical form: 2 MiB exactly is "2Mi", not "2048Ki"
            assert parse_quantity(usage["cpu"]) > 0 and parse_quantity(usage["memory"]) > 0
    nodes = metrics.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == kube.node_names(web)
