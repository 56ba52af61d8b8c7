"""Images through a real registry: Debian's docker-registry serving TLS from a CA made here,
`images push` into it, and the local cluster's containerd pulling from it (trusting that CA
through its certs.d, no insecure flag) when `deploy --image-registry` names it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from chaos.cluster import kube, registry_hosts, workloads
from chaos.cluster import layout as L
from chaos.cluster.local import LocalCluster

from support import Registry, cli, free_port, one_error, pushed, running_registry

pytestmark = pytest.mark.e2e

SAMPLE_APPS = ("web", "api")


def _say(message: str) -> None:
    print(f"[registry] {message}", flush=True)


@pytest.fixture
def bridge_registry(cluster: LocalCluster) -> Iterator[Registry]:
    """A registry on the cluster's bridge address, trusted by the nodes through
    `cluster up --registry-ca`; afterwards the sample workload is put back on the loaded images,
    the CA's folder removed and the registry stopped by its PID."""
    config = (cluster.lay.node(1).state / "containerd.toml").read_text()
    if "config_path" not in config:  # a cluster started before containerd read certs.d
        cluster.down(_say)
        cluster.up(_say)
    with running_registry(L.NODE_IP) as registry:
        try:
            yield registry
        finally:
            workloads.deploy(cluster, _say, timeout=120)
            registry_hosts.forget(cluster.lay.registry_hosts, registry.host)


def sample_pods(api: Any) -> list[Any]:
    core = client.CoreV1Api(api)
    return [pod for app in SAMPLE_APPS for pod in core.list_namespaced_pod(
        "demo", label_selector=f"app={app}", _request_timeout=30).items
        if pod.metadata.deletion_timestamp is None]


def test_deploy_pulls_the_pushed_images_from_a_tls_registry(
        cluster: LocalCluster, bridge_registry: Registry) -> None:
    registry = bridge_registry
    digests = pushed(registry)
    trusted = cli("cluster", "up", "--registry-ca", f"{registry.host}={registry.ca}")
    assert trusted.returncode == 0, trusted.stderr
    hosts = cluster.lay.registry_hosts / registry.host / "hosts.toml"
    assert f'ca = "{cluster.lay.registry_hosts / registry.host / "ca.crt"}"' in hosts.read_text()
    assert "insecure" not in hosts.read_text()

    deployed = cli("deploy", "--image-registry", registry.host)
    assert deployed.returncode == 0, deployed.stderr
    assert "nothing loaded into the nodes" in deployed.stderr
    assert "importing" not in deployed.stderr

    api = kube.api_client(cluster.kubeconfig())
    pods = sample_pods(api)
    assert len(pods) == 5  # web 3, api 2
    for pod in pods:
        container = pod.spec.containers[0]
        assert container.image == f"{registry.host}/web:1"
        assert container.image_pull_policy == "Always"
        status = pod.status.container_statuses[0]
        assert status.ready, pod.metadata.name
        # the runtime's record of where the image came from, and the digest the push reported
        assert status.image_id == f"{registry.host}/web@{digests['web']}", status.image_id
    # the registry's own log: the nodes fetched that manifest (by the digest the tag resolved to)
    assert f"/v2/web/manifests/{digests['web']}" in registry.pulled_manifests()


def test_push_errors_are_one_line() -> None:
    closed = f"127.0.0.1:{free_port()}"
    message = one_error(cli("images", "push", closed))
    assert f"registry {closed} unreachable" in message and "is it up" in message
    with running_registry("127.0.0.1", {"alice": "right"}) as registry:
        untrusted = one_error(cli("images", "push", registry.host))
        assert f"TLS to {registry.host} failed" in untrusted
        assert "not signed by the system's CAs" in untrusted and "--ca-file" in untrusted
        anonymous = one_error(cli("images", "push", registry.host, "--ca-file",
                                  str(registry.ca)))
        assert f"{registry.host} denied pushing web anonymously (HTTP 401)" in anonymous
        env = {**os.environ, "CHAOS_DRILL_REGISTRY_USERNAME": "alice",
               "CHAOS_DRILL_REGISTRY_PASSWORD": "wrong"}
        wrong = one_error(cli("images", "push", registry.host, "--ca-file", str(registry.ca),
                              env=env))
        assert "denied pushing web with the credentials from CHAOS_DRILL_REGISTRY" in wrong
        assert registry.pulled_manifests() == []
        env["CHAOS_DRILL_REGISTRY_PASSWORD"] = "right"
        assert pushed(registry, *env.items())["web"].startswith("sha256:")
    bad_name = one_error(cli("deploy", "--image-registry", "https://ghcr.io/org"), alone=True)
    assert "is not HOST[:PORT][/PATH]" in bad_name
