"""The local cluster's add-ons on the real cluster: a pod resolves Services by name through
kube-dns, and pod metrics come through the aggregated metrics API (as `kubectl top` reads them)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.utils import parse_quantity

from chaos.cluster import addons, kube, network
from chaos.cluster.local import LocalCluster
from chaos.results.journal import read_journal

from support import FAULTS, run_drill, run_in, wait_addons_ready, write_drill

pytestmark = pytest.mark.e2e
NAME = "web.demo.svc.cluster.local"


def test_a_drill_waits_for_the_cluster_dns_before_its_probe(web: Any, cluster: LocalCluster,
                                                            tmp_path: Path) -> None:
    """`cluster up` does not wait for CoreDNS; a drill whose probe may call a Service by name
    (web's /cgi-bin/api calls api) waits for it, says so, and probes only once it serves."""
    apps = client.AppsV1Api(web)
    replicas = apps.read_namespaced_deployment("coredns", "kube-system").spec.replicas

    def scale(count: int) -> None:
        apps.patch_namespaced_deployment_scale("coredns", "kube-system",
                                               {"spec": {"replicas": count}})

    scale(0)
    try:
        deadline = time.monotonic() + 60
        while addons.dns_serving(web):
            assert time.monotonic() < deadline, "kube-dns still has a ready endpoint"
            time.sleep(0.2)
        said: list[str] = []
        waiting = threading.Event()

        def say(line: str) -> None:
            said.append(line)
            if "for the cluster DNS" in line:
                waiting.set()

        drill = write_drill(tmp_path, FAULTS["pod_delete"], probe={
            "service": "web", "port": 80, "path": "/cgi-bin/api", "ratePerSecond": 20})
        out = tmp_path / "out"
        ran: dict[str, Any] = {}

        def drill_run() -> None:
            try:
                ran["summary"] = run_drill(cluster, drill, out, say=say)
            except BaseException as error:  # noqa: BLE001 - shown by the assertion below
                ran["error"] = error

        thread = threading.Thread(target=drill_run, daemon=True)
        thread.start()
        assert waiting.wait(60), said
        back = time.monotonic()
        scale(replicas)
        thread.join(180)
        assert not thread.is_alive(), said
        assert "summary" in ran, ran.get("error")
        assert ran["summary"].passed, ran["summary"].slo_checks
        assert "the cluster DNS serves" in said
        started = next(r for r in read_journal(out / "journal.jsonl")
                       if r.event == "probe_started")
        assert started.mono > back, "the probe started before the DNS was back"
    finally:
        scale(replicas)
        wait_addons_ready(web)


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
