"""The kubeconfig provider: any existing cluster (AKS, GKE, EKS, k3d) by kubeconfig and context.
chaos-drill does not own such a cluster, so up only checks it and down changes nothing."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from kubernetes import client

from chaos.cluster import kube
from chaos.cluster.base import ClusterStatus, Progress
from chaos.errors import ClusterError


class KubeconfigCluster:
    name = "kubeconfig"

    def __init__(self, path: str | None = None, context: str | None = None) -> None:
        default = os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config"))
        self.path = Path(path or default.split(os.pathsep)[0])
        self.context = context

    def kubeconfig(self) -> Path:
        return self.path

    def _version(self) -> str:
        api = kube.api_client(self.path, self.context)
        host = api.configuration.host
        try:
            info = client.VersionApi(api).get_code(_request_timeout=5)
        except Exception as error:
            reason = str(error).splitlines()[0][:120]
            raise ClusterError(f"no cluster reachable at {host} ({reason}): check --kubeconfig "
                               "and --context, or run 'chaos-drill cluster up'") from None
        return str(info.git_version)

    def up(self, progress: Progress) -> None:
        progress(f"using the existing cluster in {self.path}: Kubernetes {self._version()}")

    def down(self, progress: Progress) -> None:
        progress("the kubeconfig provider does not own its cluster: nothing stopped")

    def status(self) -> ClusterStatus:
        try:
            self._version()
        except ClusterError:
            return ClusterStatus("kubeconfig", False, None)
        return ClusterStatus("kubeconfig", True, self.path)

    def load_images(self, archives: Sequence[Path], progress: Progress) -> None:
        names = ", ".join(a.name for a in archives)
        progress(f"cannot load {names} without a registry: push them with 'chaos-drill images "
                 "push REGISTRY' and pass --image-registry REGISTRY, or use --provider "
                 "local|kind")
