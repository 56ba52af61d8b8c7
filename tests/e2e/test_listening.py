"""The local cluster listens only where it must: every socket of its processes and of the drill
exporter is on loopback or the bridge address, the API server takes no anonymous requests and
nothing answers on the machine's other addresses; pods still reach the API through its Service."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from prometheus_client import CollectorRegistry

from chaos import resources
from chaos.cluster import kube, network, processes, workloads
from chaos.cluster import layout as L
from chaos.cluster.local import LocalCluster
from chaos.monitoring import metrics_server

from support import Listener, listeners

pytestmark = pytest.mark.e2e
ALLOWED = {ipaddress.ip_address(L.NODE_IP)}


def allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback or address in ALLOWED


def host_network_pids() -> dict[int, str]:
    """Processes in the cluster's cgroups that share this machine's network namespace (runtime
    shims, any hostNetwork pod), by PID, with their command name."""
    host = os.readlink("/proc/self/ns/net")
    found = {}
    for pid in processes.cgroup_pids():
        try:
            if os.readlink(f"/proc/{pid}/ns/net") == host:
                found[pid] = Path(f"/proc/{pid}/comm").read_text().strip()
        except FileNotFoundError:
            continue
    return found


def cluster_listeners(cluster: LocalCluster) -> dict[str, set[Listener]]:
    """Listening sockets of every recorded cluster process and every host-network process in its
    cgroups, by process name."""
    owners = {p.pid: p.name for p in processes.load(cluster.lay.processes)}
    assert owners and all(processes.is_alive(p) for p in processes.load(cluster.lay.processes))
    owners = {**host_network_pids(), **owners}
    found: dict[str, set[Listener]] = {}
    for pid, name in owners.items():
        try:
            found.setdefault(name, set()).update(listeners(pid))
        except FileNotFoundError:
            continue
    return found


def test_every_socket_is_on_loopback_or_the_bridge(cluster: LocalCluster) -> None:
    with metrics_server.serve(CollectorRegistry(), 0) as exporter:
        found = cluster_listeners(cluster)
        found["chaos-drill exporter"] = set(listeners(os.getpid()))
    every = [(name, s) for name, sockets in sorted(found.items())
             for s in sorted(sockets, key=lambda s: (s.protocol, s.port))]
    print("\n".join(f"{name}: {s.protocol} {s.address} {s.port}" for name, s in every))
    wrong = [f"{name}: {s.protocol} {s.address} {s.port}" for name, s in every
             if not allowed(s.address)]
    assert wrong == [], "listening beyond loopback and the bridge:\n" + "\n".join(wrong)
    # the listing is not vacuous: each fixed port is seen, on its own address, by its owner
    for port, (address, owner) in cluster.lay.ports.items():
        assert Listener("tcp", ipaddress.ip_address(address), port) in found[owner], owner
    assert (Listener("tcp", ipaddress.ip_address(L.LOOPBACK), exporter.port)
            in found["chaos-drill exporter"])


def api_context(lay: L.Layout) -> ssl.SSLContext:
    """Trusts the cluster's CA and presents no client certificate."""
    return ssl.create_default_context(cafile=str(lay.pki / "ca.crt"))


@pytest.mark.parametrize("path", ["/readyz", "/version", "/api/v1/namespaces"])
def test_anonymous_requests_get_401(cluster: LocalCluster, path: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{cluster.lay.api_url}{path}", timeout=5,
                               context=api_context(cluster.lay))
    assert refused.value.code == 401


def test_the_admin_certificate_is_accepted(cluster: LocalCluster) -> None:
    """The provider's own checks (readyz with the admin certificate) and the admin kubeconfig."""
    assert cluster.healthy()
    with kube.api_client(cluster.kubeconfig()) as api:
        names = [n.metadata.name for n in client.CoreV1Api(api).list_namespace().items]
    assert "kube-system" in names


def other_local_addresses() -> list[str]:
    """This machine's addresses other than loopback, the bridge and IPv6 link-local ones."""
    shown = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True,
                           timeout=10, check=True).stdout
    found = []
    for link in json.loads(shown):
        for info in link.get("addr_info", []):
            address = ipaddress.ip_address(info["local"])
            if not (allowed(address) or address.is_link_local):
                found.append(str(address))
    return found


def test_nothing_answers_on_the_machines_other_addresses(cluster: LocalCluster) -> None:
    addresses = other_local_addresses()
    if not addresses:
        pytest.skip("this machine has no address besides loopback and the cluster bridge")
    assert cluster.healthy(), "the API server must be up on the bridge"
    for address in addresses:
        for port, (_, owner) in cluster.lay.ports.items():
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.settimeout(3)
                assert probe.connect_ex((address, port)) != 0, f"{owner} answers on {address}"


NAMESPACE = "listen-check"
SCRIPT = (
    "api=https://{ip}/version; "
    "token=$(cat /var/run/secrets/kubernetes.io/serviceaccount/token); "
    "echo authenticated:; wget -q -O- --no-check-certificate "
    "--header \"Authorization: Bearer $token\" $api; "
    "echo; echo anonymous:; wget -q -O- --no-check-certificate $api 2>&1; true"
)


@pytest.fixture
def check_namespace(api: Any) -> Iterator[str]:
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    try:
        workloads.wait_for_service_account(api, NAMESPACE)
        yield NAMESPACE
    finally:
        core.delete_namespace(NAMESPACE, grace_period_seconds=0)


def test_a_pod_reaches_the_api_server_through_its_service(api: Any,
                                                          check_namespace: str) -> None:
    """A pod's ServiceAccount token works through the kubernetes Service (10.96.0.1:443, whose
    endpoint is the bridge address); without a token the API server answers 401."""
    core = client.CoreV1Api(api)
    container = client.V1Container(
        name="check", image="chaosdrill.local/web:1", image_pull_policy="IfNotPresent",
        command=["/bin/busybox", "sh", "-c", SCRIPT.format(ip=network.API_SERVICE_IP)])
    pod = client.V1Pod(metadata=client.V1ObjectMeta(name="api-check", labels={"app": "check"}),
                       spec=client.V1PodSpec(containers=[container], restart_policy="Never"))
    core.create_namespaced_pod(check_namespace, pod)
    kube.wait_for_pods(api, check_namespace, "app=check", lambda pods: len(pods) == 1 and (
        pods[0].status.phase in ("Succeeded", "Failed")), timeout=90)
    log = core.read_namespaced_pod_log("api-check", check_namespace)
    authenticated, _, anonymous = log.partition("anonymous:")
    assert f'"gitVersion": "v{resources.KUBERNETES_VERSION}"' in authenticated, log
    assert "401" in anonymous, log
