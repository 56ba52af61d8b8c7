"""Applies the sample workloads in manifests/workloads/ and waits until they are steady."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from urllib3.exceptions import HTTPError

from chaos.cluster import kube
from chaos.cluster.base import ClusterProvider, Progress
from chaos.errors import ClusterError
from chaos.images import catalog
from chaos.images import sample as images
from chaos.resources import shipped

MANIFESTS = shipped("manifests")
WORKLOADS = MANIFESTS / "workloads"
AUTOSCALING = MANIFESTS / "autoscaling"
"""HorizontalPodAutoscalers, applied only on request: the `scale` fault and most drills set
replicas by hand, which an autoscaler would fight."""
FIELD_MANAGER = "chaos-drill"


def documents(directory: Path = WORKLOADS) -> Iterator[dict[str, Any]]:
    """The documents of DIRECTORY's YAML files by file name, Namespaces first: a file may hold
    objects of a namespace another file makes (api.yaml's of web.yaml's `demo`)."""
    docs = [doc for path in sorted(directory.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]
    yield from sorted(docs, key=lambda doc: doc["kind"] != "Namespace")


def apply(api: Any, docs: list[dict[str, Any]], progress: Progress) -> None:
    """Server-side applies DOCS in order, waiting for each new namespace's default account."""
    dynamic = DynamicClient(api)
    for doc in docs:
        resource = dynamic.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        meta = doc["metadata"]
        dynamic.server_side_apply(resource, body=doc, name=meta["name"],
                                  namespace=meta.get("namespace"), field_manager=FIELD_MANAGER,
                                  force_conflicts=True)
        progress(f"applied {doc['kind']} {meta.get('namespace', '')}/{meta['name']}".replace(
            " /", " "))
        if doc["kind"] == "Namespace":
            wait_for_service_account(api, meta["name"])


def wait_for_service_account(api: Any, namespace: str, timeout: float = 30.0) -> None:
    core = client.CoreV1Api(api)
    stream = watch.Watch().stream(core.list_namespaced_service_account, namespace,
                                  field_selector="metadata.name=default",
                                  timeout_seconds=int(timeout))
    for event in stream:
        if event["type"] in ("ADDED", "MODIFIED"):
            return
    raise ClusterError(f"namespace {namespace} got no default ServiceAccount in {timeout:.0f}s: "
                       "is kube-controller-manager running?")


def deployment_steady(deployment: Any) -> bool:
    """All desired replicas updated, available and Ready, and the spec observed."""
    spec, status = deployment.spec, deployment.status
    want = spec.replicas if spec.replicas is not None else 1
    return bool(
        (status.observed_generation or 0) >= (deployment.metadata.generation or 0)
        and (status.ready_replicas or 0) == want
        and (status.updated_replicas or 0) == want
        and (status.replicas or 0) == want
    )


def wait_steady(api: Any, namespace: str, name: str, timeout: float) -> None:
    """Watches Deployment NAMESPACE/NAME until steady; a ClusterError after TIMEOUT seconds."""
    apps = client.AppsV1Api(api)
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        stream = watch.Watch().stream(apps.list_namespaced_deployment, namespace,
                                      field_selector=f"metadata.name={name}",
                                      timeout_seconds=max(1, int(left)))
        for event in stream:
            if deployment_steady(event["object"]):
                return
    raise ClusterError(f"deployment {namespace}/{name} not Ready after {timeout:.0f}s: "
                       f"see 'kubectl -n {namespace} describe deployment {name}'")


def set_autoscaling(api: Any, on: bool, progress: Progress) -> None:
    """Applies manifests/autoscaling/ when ON, else removes what it holds (if there)."""
    docs = list(documents(AUTOSCALING))
    if on:
        apply(api, docs, progress)
        return
    autoscaling = client.AutoscalingV2Api(api)
    for doc in docs:
        meta = doc["metadata"]
        try:
            autoscaling.delete_namespaced_horizontal_pod_autoscaler(meta["name"],
                                                                     meta["namespace"])
            progress(f"removed HorizontalPodAutoscaler {meta['namespace']}/{meta['name']}")
        except ApiException as error:
            if error.status == 403:  # may not even read autoscalers: there is none of ours
                progress(f"warning: may not delete HorizontalPodAutoscalers in "
                         f"{meta['namespace']}; if {meta['name']} is there, it will fight "
                         "the scale fault")
            elif error.status != 404:
                raise


def load_or_pull(provider: ClusterProvider, archives: list[Path], registry: str | None,
                 progress: Progress) -> None:
    """Loads ARCHIVES into the nodes, unless the nodes pull them from REGISTRY."""
    if registry is None:
        provider.load_images(archives, progress)
    else:
        progress(f"images come from {registry} ('chaos-drill images push {registry}' put them "
                 "there): nothing loaded into the nodes")


def deploy(provider: ClusterProvider, progress: Progress, timeout: float = 120.0,
           autoscale: bool = False, wait: bool = True, registry: str | None = None) -> None:
    """Loads the images (or has the nodes pull them from REGISTRY), applies manifests/workloads/
    (with its autoscalers if AUTOSCALE, else without any) and, with WAIT, waits until every
    Deployment is steady."""
    api = kube.api_client(provider.kubeconfig())
    archives = images.build_archives(images.archive_dir()) if registry is None else []
    load_or_pull(provider, archives, registry, progress)
    docs = catalog.pulled_from(list(documents()), registry)
    try:
        apply(api, docs, progress)
        set_autoscaling(api, autoscale, progress)
        if not wait:
            progress("sample workloads applied (not waited for)")
            return
        for doc in docs:
            if doc["kind"] == "Deployment":
                progress(f"waiting for deployment {doc['metadata']['name']} to be Ready")
                wait_steady(api, doc["metadata"]["namespace"], doc["metadata"]["name"], timeout)
    except (ApiException, HTTPError) as error:
        raise ClusterError(f"deploy failed: {str(error).splitlines()[0]}: is the cluster up? "
                           "('chaos-drill cluster status')") from None
    progress("sample workloads Ready")
