"""chaos-drill's CNI for kind nodes: a ptp + host-local network per node from its podCIDR and a
route to every other node's pod range, put in place through `docker exec`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kubernetes import client

from chaos.cluster import dockerd, kube
from chaos.errors import ClusterError

CNI_FILE = "/etc/cni/net.d/10-chaosdrill.conflist"
API_RULE = '"default/kubernetes:https cluster IP"'
"""The comment kube-proxy puts on its rules for the kubernetes Service's cluster IP."""
PROXY_WAIT_SECONDS = 120.0


def cni_config(pod_cidr: str) -> dict[str, Any]:
    """A node's CNI network: a veth per pod (ptp), addresses from the node's podCIDR."""
    return {
        "cniVersion": "0.4.0", "name": "chaosdrill",
        "plugins": [
            {"type": "ptp", "ipMasq": False, "mtu": 1500,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": pod_cidr}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def route_commands(node: str, nodes: dict[str, tuple[str, str]]) -> list[list[str]]:
    """`ip route replace` on NODE for every other node's pod range, via that node's IP;
    NODES maps name -> (internal IP, podCIDR)."""
    return [["ip", "route", "replace", cidr, "via", ip]
            for other, (ip, cidr) in sorted(nodes.items()) if other != node]


def node_addresses(kubeconfig: Path) -> dict[str, tuple[str, str]]:
    """Each node that has both, by name: (internal IP, podCIDR)."""
    with kube.api_client(kubeconfig) as api:
        items = client.CoreV1Api(api).list_node(_request_timeout=30).items
    found = {}
    for node in items:
        ip = next((a.address for a in node.status.addresses or []
                   if a.type == "InternalIP"), None)
        if ip and node.spec.pod_cidr:
            found[node.metadata.name] = (ip, node.spec.pod_cidr)
    return found


def configure_node(name: str, nodes: dict[str, tuple[str, str]]) -> None:
    """Writes NAME's CNI config and its routes to the other nodes' pod ranges, once its
    kube-proxy has the kubernetes Service's rule: a pod started before it (CoreDNS) has its
    first connection to the API tracked without the NAT, and that hangs for 30 s."""
    wait_for_api_rule(name)
    config = json.dumps(cni_config(nodes[name][1]), indent=1).encode()
    dockerd.run("exec", "-i", name, "sh", "-c", f"cat > {CNI_FILE}", stdin=config,
                timeout=60)
    add_routes([name], nodes)


def wait_for_api_rule(name: str, timeout: float = PROXY_WAIT_SECONDS) -> None:
    """Until kube-proxy on kind node NAME has its rule for the kubernetes Service's cluster IP;
    a ClusterError naming it after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while API_RULE not in dockerd.run("exec", name, "iptables-save", "-t", "nat", timeout=60):
        if time.monotonic() > deadline:
            raise ClusterError(f"kube-proxy on kind node {name} has no rule for the kubernetes "
                               f"Service after {timeout:.0f}s: see 'kubectl -n kube-system logs "
                               "daemonset/kube-proxy'")
        time.sleep(0.2)


def add_routes(containers: Iterable[str], nodes: dict[str, tuple[str, str]]) -> None:
    """The routes to the other nodes' pod ranges, on each of CONTAINERS that NODES knows."""
    for node in containers:
        if node in nodes:
            for command in route_commands(node, nodes):
                dockerd.run("exec", node, *command, timeout=60)


def lacks_cni(kubeconfig: Path, nodes: Iterable[str]) -> bool:
    """True for a cluster made without a default CNI (`disableDefaultCNI`, or a node image
    without kind's, as ours) that none was installed in: no DaemonSet in kube-system but
    kube-proxy, and one of NODES (containers) with nothing in /etc/cni/net.d."""
    with kube.api_client(kubeconfig) as api:
        daemonsets = client.AppsV1Api(api).list_namespaced_daemon_set(
            "kube-system", _request_timeout=30).items
    if any(d.metadata.name != "kube-proxy" for d in daemonsets):
        return False
    script = "ls /etc/cni/net.d 2>/dev/null | grep -q conf && echo has || echo none"
    return any(dockerd.run("exec", node, "sh", "-c", script, timeout=60).strip() == "none"
               for node in nodes)
