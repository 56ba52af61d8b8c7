"""Where the local cluster keeps its binaries, state, sockets and logs, and its fixed addresses."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from chaos.cluster import network
from chaos.resources import (
    COREDNS_VERSION,
    ETCD_VERSION,
    KUBERNETES_VERSION,
    METRICS_SERVER_VERSION,
    cache_dir,
    shipped,
)

NODE_COUNT = 2
API_PORT = 6443
ETCD_PORT = 2379
ETCD_PEER_PORT = 2380
CONTROLLER_MANAGER_PORT = 10257
SCHEDULER_PORT = 10259
PROXY_HEALTHZ_PORT = 10256
PROXY_METRICS_PORT = 10249
LOOPBACK = "127.0.0.1"
NODE_IP = network.GATEWAY
"""The bridge address: the API server and kubelets listen here, pods reach it; all else on
LOOPBACK, so nothing listens on the machine's other interfaces."""
COMPONENTS = (
    "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy",
)


def bin_dir() -> Path:
    return cache_dir() / f"kubernetes-v{KUBERNETES_VERSION}" / "bin"


def etcd_binary() -> Path:
    return cache_dir() / f"etcd-v{ETCD_VERSION}" / "bin" / "etcd"


def metrics_server_binary() -> Path:
    return cache_dir() / f"metrics-server-v{METRICS_SERVER_VERSION}" / "bin" / "metrics-server"


def coredns_binary() -> Path:
    """The CoreDNS build of cluster/kind/coredns, in a folder named by its inputs (as lib.sh's
    coredns_key names it)."""
    source = shipped("cluster", "kind", "coredns")
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update((source / name).read_bytes())
    key = digest.hexdigest()[:12]
    return cache_dir() / f"coredns-v{COREDNS_VERSION}-{key}" / "bin" / "coredns"


@dataclass(frozen=True)
class Node:
    """One node of the local cluster: its own containerd, kubelet, ports and cgroups."""

    index: int
    state: Path
    run: Path

    @property
    def name(self) -> str:
        return f"node-{self.index}"

    @property
    def kubelet_port(self) -> int:
        return 10250 + 10 * (self.index - 1)

    @property
    def healthz_port(self) -> int:
        return 10248 + 10 * (self.index - 1)

    @property
    def socket(self) -> Path:
        return self.run / "containerd.sock"

    @property
    def pod_cgroup(self) -> str:
        return f"{self.name}-pods"


@dataclass(frozen=True)
class Layout:
    """Paths of one local cluster."""

    state: Path
    run: Path

    @classmethod
    def default(cls) -> Layout:
        state = Path(os.environ.get("CHAOS_DRILL_STATE", "/var/lib/chaos-drill/local"))
        run = Path(os.environ.get("CHAOS_DRILL_RUN", "/run/chaos-drill/local"))
        return cls(state, run)

    @property
    def lock(self) -> Path:
        """Held by `up` and `down` (chaos.cluster.host_lock); beside the state, as down
        empties that."""
        return self.state.parent / f"{self.state.name}.lock"

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def front_proxy_pki(self) -> Path:
        return self.pki / "front-proxy"

    @property
    def etcd_pki(self) -> Path:
        """etcd's own CA: its serving and peer cert, and the API server's client cert, which
        is the only one etcd accepts."""
        return self.pki / "etcd"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def config(self) -> Path:
        return self.state / "config"

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def registry_hosts(self) -> Path:
        """containerd's certs.d: HOST:PORT/hosts.toml and the CA of each registry it trusts."""
        return self.state / "certs.d"

    @property
    def processes(self) -> Path:
        return self.state / "processes.json"

    def node(self, index: int) -> Node:
        return Node(index, self.state / f"node-{index}", self.run / f"node-{index}")

    @property
    def nodes(self) -> list[Node]:
        return [self.node(i) for i in range(1, NODE_COUNT + 1)]

    @property
    def api_url(self) -> str:
        return f"https://{NODE_IP}:{API_PORT}"

    @property
    def ports(self) -> dict[int, tuple[str, str]]:
        """Every fixed TCP port the cluster listens on: its address and the component owning it."""
        ports = {
            API_PORT: (NODE_IP, "kube-apiserver"), ETCD_PORT: (LOOPBACK, "etcd"),
            ETCD_PEER_PORT: (LOOPBACK, "etcd"),
            CONTROLLER_MANAGER_PORT: (LOOPBACK, "kube-controller-manager"),
            SCHEDULER_PORT: (LOOPBACK, "kube-scheduler"),
            PROXY_HEALTHZ_PORT: (LOOPBACK, "kube-proxy"),
            PROXY_METRICS_PORT: (LOOPBACK, "kube-proxy"),
        }
        for node in self.nodes:
            ports[node.kubelet_port] = (NODE_IP, f"kubelet {node.name}")
            ports[node.healthz_port] = (LOOPBACK, f"kubelet {node.name}")
        return ports

