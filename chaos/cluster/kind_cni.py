"""chaos-drill's CNI for kind nodes: a ptp + host-local network per node from its podCIDR and a
route to every other node's pod range, put in place through `docker exec`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kubernetes import client

from chaos.cluster import dockerd, kube

CNI_FILE = "/etc/cni/net.d/10-chaosdrill.conflist"


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
    """Writes NAME's CNI config and its routes to the other nodes' pod ranges."""
    config = json.dumps(cni_config(nodes[name][1]), indent=1).encode()
    dockerd.run("exec", "-i", name, "sh", "-c", f"cat > {CNI_FILE}", stdin=config,
                timeout=60)
    add_routes([name], nodes)


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
