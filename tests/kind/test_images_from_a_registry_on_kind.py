"""kind's nodes pulling through a real registry: Debian's docker-registry serving TLS from a CA
made here, on the host's address in the nodes' Docker network, `images push` into it, `cluster up
--provider kind --registry-ca` making every node's containerd trust that CA (a mounted certs.d,
no insecure flag), and `deploy --image-registry` running the sample app on what they pulled.
The session's cluster is reused; the app goes back to its loaded images afterwards."""

from __future__ import annotations

import subprocess

import pytest

from chaos.cluster import kind_config, kind_host, kube, registry_hosts, workloads

from support import KindSession, assert_pulled, cli, live_pods, pushed, running_registry

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
                sample = live_pods(api, "demo", "app=web") + live_pods(api, "demo", "app=api")
            assert len(sample) == 5, [p.metadata.name for p in sample]  # web 3, api 2
            for pod in sample:
                assert_pulled(pod, "web:1", registry, digests)
            assert len({pod.spec.node_name for pod in sample}) >= 2, "pulled on more than one node"
        finally:
            registry_hosts.forget(provider.registry_hosts, host)
            workloads.deploy(provider, say, timeout=180)
