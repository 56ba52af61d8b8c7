"""The in-cluster provider: the operator's own pod, reaching the API server through the
`kubernetes` Service with its ServiceAccount's token. It has no node runtime and no node
control, so container_kill and node_stop are refused in-cluster with one line."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

from chaos.cluster.base import ClusterStatus, Progress
from chaos.errors import ClusterError

ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def running_in_cluster(account: Path = ACCOUNT) -> bool:
    """True in a pod with a ServiceAccount token and no KUBECONFIG of its own."""
    return ("KUBERNETES_SERVICE_HOST" in os.environ and "KUBECONFIG" not in os.environ
            and (account / "token").exists())


def kubeconfig_document(host: str, port: str, account: Path = ACCOUNT) -> dict[str, object]:
    """A kubeconfig naming the pod's CA and token file, so every client reads them alike."""
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "in-cluster",
        "clusters": [{"name": "in-cluster", "cluster": {
            "server": server, "certificate-authority": str(account / "ca.crt")}}],
        "users": [{"name": "operator", "user": {"tokenFile": str(account / "token")}}],
        "contexts": [{"name": "in-cluster",
                      "context": {"cluster": "in-cluster", "user": "operator"}}],
    }


class InClusterProvider:
    """The cluster the operator's pod runs in; it neither starts nor stops it."""

    name = "in-cluster"

    def __init__(self, account: Path = ACCOUNT) -> None:
        self.account = account
        self._path: Path | None = None

    def kubeconfig(self) -> Path:
        if self._path is None:
            host = os.environ.get("KUBERNETES_SERVICE_HOST")
            if not host:
                raise ClusterError("not running in a pod (no KUBERNETES_SERVICE_HOST): use "
                                   "--kubeconfig")
            port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
            path = Path(tempfile.gettempdir()) / "chaos-drill-in-cluster.kubeconfig"
            path.write_text(yaml.safe_dump(kubeconfig_document(host, port, self.account)))
            self._path = path
        return self._path

    def up(self, progress: Progress) -> None:
        progress("running inside the cluster: nothing to start")

    def down(self, progress: Progress) -> None:
        progress("running inside the cluster: nothing stopped")

    def status(self) -> ClusterStatus:
        return ClusterStatus(self.name, True, self.kubeconfig())

    def load_images(self, archives: Sequence[Path], progress: Progress) -> None:
        progress("cannot load images from inside the cluster: use --provider local|kind")
