"""The local cluster's add-ons: CoreDNS as kube-dns and metrics-server behind the aggregation
layer. Their images are archives of the binaries cluster/build/ built, their manifests live in
manifests/addons/, and `ready` is what `cluster up` waits for."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from chaos import workloads
from chaos.cluster import layout as L
from chaos.cluster import nodeimage, tuning

MANIFESTS = workloads.MANIFESTS / "addons"
METRICS_API = "v1beta1.metrics.k8s.io"


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
        BinaryImage("coredns", f"chaosdrill.local/coredns:v{L.COREDNS_VERSION}",
                    L.coredns_binary()),
        BinaryImage("metrics-server",
                    f"chaosdrill.local/metrics-server:v{L.METRICS_SERVER_VERSION}",
                    L.metrics_server_binary()),
    ]


def build_archives(directory: Path) -> list[Path]:
    """One archive per add-on in DIRECTORY, written again only when its binary is newer."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for image in addon_images():
        path = directory / (image.reference.split("/")[-1].replace(":", "-") + ".tar")
        if not path.exists() or path.stat().st_mtime < image.binary.stat().st_mtime:
            partial = path.with_suffix(".partial")
            partial.write_bytes(image.archive())
            partial.rename(path)
        paths.append(path)
    return paths


def documents(pki: Path) -> list[dict[str, Any]]:
    """The manifests, plus metrics-server's serving cert as a Secret and the CA that the
    APIService trusts it with."""
    docs = list(workloads.documents(MANIFESTS))
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


def install(api: Any, pki: Path) -> None:
    workloads.apply(api, documents(pki), lambda _: None)


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

