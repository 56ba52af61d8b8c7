"""The clusters' add-ons: CoreDNS as kube-dns and metrics-server behind the aggregation layer on
the local cluster, metrics-server alone on kind (which has CoreDNS). Their images are archives
of the binaries cluster/build/ built, their manifests live in manifests/addons/. `cluster up`
does not wait for them: a drill waits for what it needs, the cluster DNS before its probe
(`wait_for_dns`) and the metrics API before a load (`wait_for_metrics`)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from chaos import resources
from chaos.cluster import configs, kube, pki, tuning, workloads
from chaos.cluster import layout as L
from chaos.errors import ClusterError
from chaos.images import node as nodeimage

MANIFESTS = workloads.MANIFESTS / "addons"
METRICS_SERVER = MANIFESTS / "metrics-server.yaml"
METRICS_API = "v1beta1.metrics.k8s.io"
DNS_WAIT_SECONDS = 120.0
"""How long a drill waits for the cluster DNS of a cluster just brought up."""
METRICS_WAIT_SECONDS = 120.0
"""How long a drill waits for the metrics API of a cluster just brought up (metrics-server
starts, then scrapes every kubelet once; about 12 s on kind here)."""


@dataclass(frozen=True)
class BinaryImage:
    """An image holding one static binary at /NAME that is also its entrypoint."""

    name: str
    reference: str
    binary: Path

    def archive(self) -> bytes:
        tree = nodeimage.single(self.binary, self.name)
        return nodeimage.binary_archive(self.reference, tree, [f"/{self.name}"])


def addon_images() -> list[BinaryImage]:
    return [
        BinaryImage("coredns", f"chaosdrill.local/coredns:v{resources.COREDNS_VERSION}",
                    L.coredns_binary()),
        BinaryImage("metrics-server",
                    f"chaosdrill.local/metrics-server:v{resources.METRICS_SERVER_VERSION}",
                    L.metrics_server_binary()),
    ]


def build_archives(directory: Path, names: tuple[str, ...] | None = None) -> list[Path]:
    """One archive per add-on (of NAMES, default all) in DIRECTORY, written again only when its
    binary is newer."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for image in addon_images():
        if names is not None and image.name not in names:
            continue
        path = directory / (image.reference.split("/")[-1].replace(":", "-") + ".tar")
        if not path.exists() or path.stat().st_mtime < image.binary.stat().st_mtime:
            partial = path.with_suffix(".partial")
            partial.write_bytes(image.archive())
            partial.rename(path)
        paths.append(path)
    return paths


def documents(pki: Path, only_metrics_server: bool = False) -> list[dict[str, Any]]:
    """The manifests (or metrics-server's alone), plus metrics-server's serving cert as a Secret
    and the CA that the APIService trusts it with, both from the directory PKI."""
    docs = ([d for d in yaml.safe_load_all(METRICS_SERVER.read_text()) if d]
            if only_metrics_server else list(workloads.documents(MANIFESTS)))
    ca = (pki / "ca.crt").read_bytes()
    resolution = f"--metric-resolution={tuning.current().metric_resolution_seconds}s"
    for doc in docs:
        if doc["kind"] == "APIService":
            doc["spec"]["caBundle"] = base64.b64encode(ca).decode()
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "metrics-server":
            (server,) = doc["spec"]["template"]["spec"]["containers"]
            server["args"] = [resolution if a.startswith("--metric-resolution=") else a
                              for a in server["args"]]
    secret = {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "metrics-server-tls", "namespace": "kube-system"},
        "data": {key: base64.b64encode((pki / f"metrics-server.{ext}").read_bytes()).decode()
                 for key, ext in (("tls.crt", "crt"), ("tls.key", "key"))},
    }
    return [secret, *docs]


def install(api: Any, pki: Path, only_metrics_server: bool = False) -> None:
    workloads.apply(api, documents(pki, only_metrics_server), lambda _: None)


def write_metrics_server_pki(directory: Path) -> Path:
    """A CA of its own and metrics-server's serving cert from it, in DIRECTORY, for a cluster
    whose CA key chaos-drill does not hold (kind): the APIService trusts that CA alone."""
    directory.mkdir(parents=True, exist_ok=True)
    pki.make_ca(directory)
    pki.issue(directory, configs.METRICS_SERVER_CERT)
    return directory


def metrics_missing(api: Any, nodes: list[str]) -> list[str]:
    """What the metrics API does not serve yet: NodeMetrics of each of NODES (a node's pods are
    scraped with it); [] when it serves them all."""
    custom = client.CustomObjectsApi(api)
    try:
        node_items = custom.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes",
                                                       _request_timeout=10)["items"]
    except (ApiException, HTTPError) as error:
        return [f"the metrics API ({str(error).splitlines()[0]})"]
    served = {item["metadata"]["name"] for item in node_items}
    return [f"NodeMetrics {name}" for name in nodes if name not in served]


def wait_for_metrics(api: Any, say: Callable[[str], None],
                     timeout: float = METRICS_WAIT_SECONDS) -> None:
    """Returns once the metrics API serves every node, saying so when it has to wait; a
    ClusterError naming what is missing after TIMEOUT seconds."""
    nodes = kube.node_names(api)
    try:
        client.CustomObjectsApi(api).list_cluster_custom_object(
            "metrics.k8s.io", "v1beta1", "nodes", _request_timeout=10)
    except ApiException as error:
        if error.status == 403:  # served, but not to us (the operator): the HPA reads it
            say("not allowed to read the metrics API (403): not waiting for it")
            return
    except HTTPError:
        pass
    missing = metrics_missing(api, nodes)
    if not missing:
        return
    say(f"waiting up to {timeout:.0f}s for the metrics API (metrics-server), which the "
        "autoscaler reads")
    deadline = time.monotonic() + timeout
    while missing and time.monotonic() < deadline:
        time.sleep(1)
        missing = metrics_missing(api, nodes)
    if missing:
        raise ClusterError(f"the metrics API does not serve {'; '.join(missing)} after "
                           f"{timeout:.0f}s: see 'kubectl -n kube-system logs "
                           "deployment/metrics-server'")
    say("the metrics API serves every node")


def dns_serving(api: Any) -> bool:
    """True when kube-dns has a ready endpoint, or when it cannot be told (no Service kube-dns:
    the cluster resolves names some other way; or not allowed to read it)."""
    namespace, name = kube.DNS_SERVICE
    try:
        client.CoreV1Api(api).read_namespaced_service(name, namespace, _request_timeout=10)
        # raw: the client cannot read a slice with no endpoints (null, not a list)
        response = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
            namespace, label_selector=f"kubernetes.io/service-name={name}",
            _preload_content=False, _request_timeout=10)
        slices = json.loads(response.data)["items"]
    except ApiException as error:
        return error.status in (403, 404)
    except (HTTPError, ValueError, KeyError):
        return False
    return any((endpoint.get("conditions") or {}).get("ready") is not False
               for found in slices for endpoint in found.get("endpoints") or [])


def wait_for_dns(api: Any, say: Callable[[str], None],
                 timeout: float = DNS_WAIT_SECONDS) -> None:
    """Returns once the cluster DNS serves (a probe may call a Service by name, as web's
    /cgi-bin/api does), saying so when it has to wait; a ClusterError after TIMEOUT seconds."""
    if dns_serving(api):
        return
    namespace, name = kube.DNS_SERVICE
    say(f"waiting up to {timeout:.0f}s for the cluster DNS ({namespace}/{name}), which a probe "
        "may go through")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if dns_serving(api):
            say("the cluster DNS serves")
            return
    raise ClusterError(f"Service {namespace}/{name} has no ready endpoint after {timeout:.0f}s: "
                       "see 'kubectl -n kube-system logs deployment/coredns'")


def deployments() -> list[tuple[str, str]]:
    """(namespace, name) of every add-on Deployment."""
    return [(d["metadata"]["namespace"], d["metadata"]["name"])
            for d in workloads.documents(MANIFESTS) if d["kind"] == "Deployment"]


def not_ready(api: Any) -> list[str]:
    """What of the add-ons is not ready yet: Deployments not steady, the metrics API not
    Available; [] when all is."""
    waiting = []
    try:
        apps = client.AppsV1Api(api)
        for namespace, name in deployments():
            if not workloads.deployment_steady(apps.read_namespaced_deployment(name, namespace)):
                waiting.append(f"deployment {namespace}/{name}")
        service = client.ApiregistrationV1Api(api).read_api_service(METRICS_API)
    except (ApiException, HTTPError) as error:
        return [f"the API ({str(error).splitlines()[0]})"]
    if not _available(service):
        waiting.append(f"APIService {METRICS_API}")
    return waiting


def _available(service: Any) -> bool:
    for condition in (service.status and service.status.conditions) or []:
        if condition.type == "Available":
            return bool(condition.status == "True")
    return False


def corefile() -> str:
    """The Corefile kube-dns runs (for tests and the README)."""
    for doc in workloads.documents(MANIFESTS):
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "coredns":
            return str(doc["data"]["Corefile"])
    raise ValueError(f"no coredns ConfigMap in {MANIFESTS}")

