"""The kind cluster config chaos-drill runs: manifests/kind/cluster.yaml with our subnets, no
default CNI and quick node failure handling; pytest-kind users write it with
write_cluster_config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from chaos.cluster.layout import API_PORT
from chaos.errors import UsageError
from chaos.images.node import NODE_IMAGE
from chaos.resources import ETCD_VERSION, shipped

CONFIG = shipped("manifests", "kind", "cluster.yaml")
POD_SUBNET = "10.250.0.0/16"
SERVICE_SUBNET = "10.251.0.0/16"
"""Apart from the local cluster's 10.244.0.0/16 and 10.96.0.0/12, and from kind's defaults."""
API_ADDRESS = "127.0.0.1"
"""Where kind publishes the API server on the host (loopback only)."""
NODE_REGISTRY_HOSTS = "/etc/containerd/certs.d"
"""Where each node's containerd reads registries' hosts.toml, mounted from the host."""
ONE_CONTROL_PLANE = {"leader-elect": "false"}
"""One control-plane node: no lease to wait for (its first try comes before RBAC allows it, the
next 2 s later)."""
CONTROLLER_QPS = {"kube-api-qps": "100", "kube-api-burst": "200"}
"""Each controller fetches its own token as it starts: at the default 20 qps the certificate
signer and the pod range allocator start about 5 s after the controller manager does."""
MAX_WORKERS = 4
REGISTRY_PATCH = ('[plugins."io.containerd.grpc.v1.cri".registry]\n'
                  f'  config_path = "{NODE_REGISTRY_HOSTS}"\n')


def cluster_config(base: dict[str, Any], local_image: bool, serving_certs: bool = False,
                   registry_hosts: Path | None = None,
                   workers: int | None = None) -> dict[str, Any]:
    """BASE (manifests/kind/cluster.yaml) with our subnets, no default CNI, and the local
    cluster's quick node failure handling (a stopped node is NotReady after 16 s, its pods are
    evicted 20 s later, and its controller manager and scheduler start at once, as the local
    cluster's do); with the local node image, kubeadm runs the etcd it preloads (our build,
    not registry.k8s.io's). Maps for extraArgs: kind writes kubeadm v1beta3 for Kubernetes 1.34.
    SERVING_CERTS: the kubelets ask the cluster CA for their serving certs (serverTLSBootstrap)
    instead of signing their own, so metrics-server can verify them; someone must approve the
    requests (`up` does: chaos/cluster/serving_certs.py). REGISTRY_HOSTS: a host folder every
    node mounts as its containerd's certs.d (registries and their CAs, read at each pull).
    WORKERS: that many worker nodes beside the control plane instead of BASE's."""
    config = dict(base)
    if workers is not None:
        planes = [n for n in base["nodes"] if n.get("role") == "control-plane"]
        worker = next((n for n in base["nodes"] if n.get("role") == "worker"), {"role": "worker"})
        config["nodes"] = [*planes, *[dict(worker) for _ in range(workers)]]
    config["networking"] = {**base.get("networking", {}), "disableDefaultCNI": True,
                            "podSubnet": POD_SUBNET, "serviceSubnet": SERVICE_SUBNET,
                            "apiServerAddress": API_ADDRESS, "apiServerPort": API_PORT}
    patch: dict[str, Any] = {
        "kind": "ClusterConfiguration",  # any kubeadm API version kind writes
        "apiServer": {"extraArgs": {"default-not-ready-toleration-seconds": "20",
                                    "default-unreachable-toleration-seconds": "20"}},
        "controllerManager": {"extraArgs": {"node-monitor-period": "2s",
                                            "node-monitor-grace-period": "16s",
                                            **ONE_CONTROL_PLANE, **CONTROLLER_QPS}},
        "scheduler": {"extraArgs": dict(ONE_CONTROL_PLANE)},
    }
    if local_image:
        patch["etcd"] = {"local": {"imageRepository": "chaosdrill.local",
                                   "imageTag": f"v{ETCD_VERSION}"}}
    patches = [yaml.safe_dump(patch)]
    if serving_certs:
        patches.append(yaml.safe_dump({"kind": "KubeletConfiguration",
                                       "serverTLSBootstrap": True}))
    config["kubeadmConfigPatches"] = [*base.get("kubeadmConfigPatches", []), *patches]
    if registry_hosts is not None:
        config["containerdConfigPatches"] = [*base.get("containerdConfigPatches", []),
                                             REGISTRY_PATCH]
        mount = {"hostPath": str(registry_hosts), "containerPath": NODE_REGISTRY_HOSTS,
                 "readOnly": True}
        config["nodes"] = [{**node, "extraMounts": [*node.get("extraMounts", []), mount]}
                           for node in config["nodes"]]
    return config


def write_cluster_config(path: Path, image: str | None = None, serving_certs: bool = False,
                         registry_hosts: Path | None = None, workers: int | None = None) -> Path:
    """Writes to PATH the kind config chaos-drill runs: manifests/kind/cluster.yaml through
    cluster_config, for IMAGE (None: the node image `make kind` builds). pytest-kind users pass
    it to `KindCluster.create(config_file=...)` (without serving certs: nothing approves them
    there)."""
    base = yaml.safe_load(CONFIG.read_text())
    path.write_text(yaml.safe_dump(cluster_config(base, image in (None, NODE_IMAGE),
                                                  serving_certs, registry_hosts, workers)))
    return path


def check_workers(workers: int | None) -> None:
    """A UsageError for a --kind-workers out of range."""
    if workers is not None and not 0 <= workers <= MAX_WORKERS:
        raise UsageError(f"--kind-workers {workers}: use 0 to {MAX_WORKERS} (0: one node that "
                         "runs everything)")


def nodes_text(count: int) -> str:
    return f"{count} node{'' if count == 1 else 's'}"


def size_note(nodes: int, workers: int | None) -> str:
    """What `up` adds when the cluster it reuses has another size than --kind-workers asks."""
    if workers is None or nodes == workers + 1:
        return ""
    return (f" with {nodes_text(nodes)}, not the {workers + 1} that --kind-workers {workers} "
            "asks for (run 'chaos-drill cluster down --provider kind' first to get those)")
