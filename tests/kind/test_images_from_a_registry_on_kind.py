"""kind's nodes pulling through a real registry: Debian's docker-registry serving TLS from a CA
made here, on the host's address in the nodes' Docker network, `images push` into it, `cluster up
--provider kind --registry-ca` making every node's containerd trust that CA (a mounted certs.d,
no insecure flag), and `deploy --image-registry` running the sample app on what they pulled.
The session's cluster is reused; the app goes back to its loaded images afterwards."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from kubernetes import client

from chaos.cluster import kind_config, kind_host, kube, registry_hosts, workloads

from support import KindSession, cli, pushed, running_registry

pytestmark = [pytest.mark.e2e, pytest.mark.kind, pytest.mark.timeout(600)]

KIND = ("--provider", "kind")


def say(message: str) -> None:
    print(f"[kind registry] {message}", flush=True)


def host_address() -> str:
    """The host's address on the nodes' Docker network bridge, where they reach it."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", kind_host.BRIDGE],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    (address,) = [field.split("/")[0] for field in out.split() if "/" in field]
    return address


def pods(api: Any, selector: str) -> list[Any]:
    return [pod for pod in client.CoreV1Api(api).list_namespaced_pod(
        "demo", label_selector=selector, _request_timeout=30).items
        if pod.metadata.deletion_timestamp is None]


def test_kind_nodes_pull_the_pushed_images_from_a_tls_registry(kind_up: KindSession) -> None:
    provider = kind_up.provider
    with running_registry(host_address()) as registry:
        host = registry.host
        try:
            digests = pushed(registry)
            trusted = cli("cluster", "up", *KIND, "--registry-ca", f"{host}={registry.ca}")
            assert trusted.returncode == 0, trusted.stderr[-3000:]
            assert f"the kind nodes pull from {host} trusting" in trusted.stderr
            hosts = (provider.registry_hosts / host / "hosts.toml").read_text()
            assert f'{kind_config.NODE_REGISTRY_HOSTS}/{host}/ca.crt' in hosts, hosts
            assert "insecure" not in hosts and "skip_verify" not in hosts

            deployed = cli("deploy", *KIND, "--image-registry", host)
            assert deployed.returncode == 0, deployed.stderr[-3000:]
            assert "nothing loaded into the nodes" in deployed.stderr, deployed.stderr
            with kube.api_client(provider.kubeconfig()) as api:
                sample = pods(api, "app=web") + pods(api, "app=api")
            assert len(sample) == 5, [p.metadata.name for p in sample]  # web 3, api 2
            nodes = set()
            for pod in sample:
                container, status = pod.spec.containers[0], pod.status.container_statuses[0]
                assert container.image == f"{host}/web:1"
                assert container.image_pull_policy == "Always"
                assert status.image_id == f"{host}/web@{digests['web']}", status.image_id
                assert status.ready, pod.metadata.name
                nodes.add(pod.spec.node_name)
            assert len(nodes) >= 2, "pulled on more than one node"
            # the registry's own log: nodes fetched that manifest by the digest the tag named
            assert f"/v2/web/manifests/{digests['web']}" in registry.pulled_manifests()
        finally:
            registry_hosts.forget(provider.registry_hosts, host)
            workloads.deploy(provider, say, timeout=180)
