"""`chaos-drill monitor install|uninstall`: the in-cluster Prometheus of manifests/monitoring/k8s/
with the image built here from Debian's prometheus (chaos.images.prometheus, cached) loaded into
the cluster like the operator's; it scrapes each operator pod by DNS. Uninstall deletes its
namespace. Grafana's objects are left out: its image comes from a registry these machines lack."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from kubernetes import client

from chaos.cluster import kube, workloads
from chaos.cluster.base import ClusterProvider, Progress
from chaos.images import catalog
from chaos.images import prometheus as prometheus_image
from chaos.monitoring.k8s import MONITORING_NAMESPACE, k8s_manifests

NAME = "prometheus"
PORT = 9090
CONFIG_HASH = "chaosdrill.dev/config-sha256"
"""On the pod template: a changed config rolls the pod (Prometheus reads it at start)."""


def prometheus_documents(reference: str) -> list[dict[str, Any]]:
    """The namespace, Prometheus's ConfigMap, Deployment (image REFERENCE) and Service."""
    docs = [doc for doc in k8s_manifests() if doc["kind"] == "Namespace"
            or doc["metadata"]["name"] in (NAME, "prometheus-config")]
    config = next(doc for doc in docs if doc["kind"] == "ConfigMap")
    digest = hashlib.sha256(json.dumps(config["data"], sort_keys=True).encode()).hexdigest()
    for doc in docs:
        if doc["kind"] == "Deployment":
            template = doc["spec"]["template"]
            template["metadata"].setdefault("annotations", {})[CONFIG_HASH] = digest[:16]
            for container in template["spec"]["containers"]:
                container["image"] = reference
    return docs


def install(provider: ClusterProvider, progress: Progress, timeout: float = 120.0,
            registry: str | None = None) -> None:
    began = time.monotonic()
    api = kube.api_client(provider.kubeconfig())
    archive, reference = prometheus_image.build(progress)
    if registry is None:
        progress(f"loading {reference} ({archive.stat().st_size >> 20} MiB)")
    workloads.load_or_pull(provider, [archive], registry, progress)
    docs = catalog.pulled_from(prometheus_documents(reference), registry)
    workloads.apply(api, docs, progress)
    progress(f"waiting for deployment {MONITORING_NAMESPACE}/{NAME} to be Ready")
    workloads.wait_steady(api, MONITORING_NAMESPACE, NAME, timeout)
    progress(f"prometheus installed and Ready in {time.monotonic() - began:.1f}s: "
             f"http://{NAME}.{MONITORING_NAMESPACE}.svc:{PORT} in the cluster, or through "
             f"the API server: {proxy_path('/graph')}")


def proxy_path(path: str) -> str:
    """PATH of Prometheus's HTTP API through the API server's service proxy."""
    return (f"/api/v1/namespaces/{MONITORING_NAMESPACE}/services/{NAME}:{PORT}/proxy"
            f"{path}")


def uninstall(provider: ClusterProvider, progress: Progress, timeout: float = 120.0) -> None:
    core = client.CoreV1Api(kube.api_client(provider.kubeconfig()))
    progress(f"deleting namespace {MONITORING_NAMESPACE}")
    kube.ignore_missing(core.delete_namespace, MONITORING_NAMESPACE)
    kube.wait_until(core.list_namespace, (), MONITORING_NAMESPACE, lambda ns: ns is None, timeout,
               f"namespace {MONITORING_NAMESPACE} gone")
    progress("prometheus uninstalled")
