"""Images through a real registry: Debian's docker-registry serving TLS from a CA made here,
`images push` into it, and the local cluster's containerd pulling from it (trusting that CA
through its certs.d, no insecure flag) when `deploy --image-registry` names it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from chaos.cluster import kube, registry_hosts, workloads
from chaos.cluster import layout as L
from chaos.cluster.local import LocalCluster

from support import (
    Registry,
    assert_pulled,
    cli,
    free_port,
    live_pods,
    one_error,
    pushed,
    running_registry,
)

pytestmark = pytest.mark.e2e

SAMPLE_APPS = ("web", "api")


def _say(message: str) -> None:
    print(f"[registry] {message}", flush=True)


@dataclass(frozen=True)
class Pushed:
    registry: Registry
    digests: dict[str, str]
    """The manifest digest `images push` reported for each image, by name."""


@pytest.fixture(scope="module")
def bridge_registry(local_cluster: LocalCluster) -> Iterator[Pushed]:
    """A registry on the cluster's bridge address holding every image `images push` sends,
    trusted by the nodes through `cluster up --registry-ca`; afterwards the sample workload is put
    back on the loaded images, the CA's folder removed and the registry stopped by its PID."""
    cluster = local_cluster
    cluster.up(_say)
    config = (cluster.lay.node(1).state / "containerd.toml").read_text()
    if "config_path" not in config:  # a cluster started before containerd read certs.d
        cluster.down(_say)
        cluster.up(_say)
    with running_registry(L.NODE_IP) as registry:
        try:
            digests = pushed(registry)
            trusted = cli("cluster", "up", "--registry-ca", f"{registry.host}={registry.ca}")
            assert trusted.returncode == 0, trusted.stderr
            yield Pushed(registry, digests)
        finally:
            workloads.deploy(cluster, _say, timeout=120)
            registry_hosts.forget(cluster.lay.registry_hosts, registry.host)


def assert_pushed(pod: Any, image: str, pushed: Pushed) -> None:
    assert_pulled(pod, image, pushed.registry, pushed.digests)


def test_deploy_pulls_the_pushed_images_from_a_tls_registry(
        cluster: LocalCluster, bridge_registry: Pushed) -> None:
    host = bridge_registry.registry.host
    hosts = (cluster.lay.registry_hosts / host / "hosts.toml").read_text()
    assert f'ca = "{cluster.lay.registry_hosts / host / "ca.crt"}"' in hosts
    assert "insecure" not in hosts and "skip_verify" not in hosts

    deployed = cli("deploy", "--image-registry", host)
    assert deployed.returncode == 0, deployed.stderr
    assert "nothing loaded into the nodes" in deployed.stderr
    assert "importing" not in deployed.stderr

    api = kube.api_client(cluster.kubeconfig())
    sample = [pod for app in SAMPLE_APPS for pod in live_pods(api, "demo", f"app={app}")]
    assert len(sample) == 5  # web 3, api 2
    for pod in sample:
        assert_pushed(pod, "web:1", bridge_registry)


def test_operator_and_prometheus_install_pull_from_the_registry(
        cluster: LocalCluster, web: Any, bridge_registry: Pushed) -> None:
    host = bridge_registry.registry.host
    api = web  # the sample workload: its namespace demo is what the operator may touch
    try:
        installed = cli("operator", "install", "--image-registry", host)
        assert installed.returncode == 0, installed.stderr
        assert "loading" not in installed.stderr
        operators = live_pods(api, "chaos-drill", "app.kubernetes.io/name=chaos-drill-operator")
        assert len(operators) == 2
        tag = operators[0].spec.containers[0].image.rsplit(":", 1)[1]
        for operator in operators:
            assert_pushed(operator, f"operator:{tag}", bridge_registry)
            env = {e.name: e.value for e in operator.spec.containers[0].env}
            assert env["CHAOS_DRILL_PROBER_IMAGE"] == f"{host}/operator:{tag}"

        monitored = cli("monitor", "install", "--image-registry", host)
        assert monitored.returncode == 0, monitored.stderr
        (prometheus,) = live_pods(api, "chaos-drill-monitoring",
                                  "app.kubernetes.io/name=prometheus")
        tag = prometheus.spec.containers[0].image.rsplit(":", 1)[1]
        assert_pushed(prometheus, f"prometheus:{tag}", bridge_registry)
    finally:
        cli("monitor", "uninstall")
        cli("operator", "uninstall")


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
