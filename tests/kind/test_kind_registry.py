"""Images through a real registry on kind: Debian's docker-registry on the kind network's gateway,
serving TLS from a CA made here, and every kind node's containerd trusting that CA through the
mounted certs.d (`cluster up --registry-ca`) when `deploy --image-registry` names it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from chaos.cluster import dockerd, kind, kind_config, kind_host, kube, registry_hosts, workloads
from chaos.cluster.kind import KindCluster
from chaos.cluster.local import LocalCluster

from support import cli, pushed, running_registry

pytestmark = [pytest.mark.e2e, pytest.mark.kind, pytest.mark.timeout(900)]


def say(message: str) -> None:
    print(f"[kind-registry] {message}", flush=True)


def mounts_certs_d(provider: KindCluster) -> bool:
    nodes = provider._nodes()
    return bool(nodes) and all(kind_config.NODE_REGISTRY_HOSTS in dockerd.run(
        "inspect", "-f", "{{range .Mounts}}{{.Destination}} {{end}}", node, timeout=60).split()
        for node in nodes)


@pytest.fixture(scope="module")
def kind_cluster(cluster_lock: None) -> Iterator[KindCluster]:
    """chaos-drill's kind cluster, made afresh if its nodes do not mount certs.d; down after."""
    if not kind_host.node_image_dir().joinpath("image-id").exists():
        pytest.fail(f"{kind_host.node_image_dir()} missing: run 'make kind' first")
    LocalCluster().down(say)
    provider = KindCluster()
    if kind.running_here() and not mounts_certs_d(provider):
        provider.down(say)
    provider.up(say)
    try:
        yield provider
    finally:
        provider.down(say)


def test_kind_nodes_pull_the_pushed_images_from_a_tls_registry(kind_cluster: KindCluster) -> None:
    gateway = dockerd.run("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}",
                          kind_host.NETWORK, timeout=60).strip()
    with running_registry(gateway) as registry:
        try:
            digests = pushed(registry)
            trusted = cli("cluster", "up", "--provider", "kind", "--registry-ca",
                          f"{registry.host}={registry.ca}")
            assert trusted.returncode == 0, trusted.stderr
            hosts = kind_cluster.registry_hosts / registry.host / "hosts.toml"
            assert f'ca = "/etc/containerd/certs.d/{registry.host}/ca.crt"' in hosts.read_text()
            deployed = cli("deploy", "--provider", "kind", "--image-registry", registry.host,
                           "--timeout", "180")
            assert deployed.returncode == 0, deployed.stderr
            assert "loading" not in deployed.stderr

            core = client.CoreV1Api(kube.api_client(kind_cluster.kubeconfig()))
            pods = [pod for app in ("web", "api") for pod in core.list_namespaced_pod(
                "demo", label_selector=f"app={app}", _request_timeout=30).items
                if pod.metadata.deletion_timestamp is None]
            assert len(pods) == 5
            for pod in pods:
                status = pod.status.container_statuses[0]
                assert pod.spec.containers[0].image == f"{registry.host}/web:1"
                assert status.ready, pod.metadata.name
                assert status.image_id == f"{registry.host}/web@{digests['web']}"
            assert f"/v2/web/manifests/{digests['web']}" in registry.pulled_manifests()
        finally:
            workloads.deploy(kind_cluster, say, timeout=180)
            registry_hosts.forget(kind_cluster.registry_hosts, registry.host)
