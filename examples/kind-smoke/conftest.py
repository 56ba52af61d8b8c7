"""A user's CI smoke test set-up: pytest-kind makes a kind cluster with chaos-drill's kind config
(its own pod and Service subnets, no default CNI: chaos-drill's pytest plugin gives the cluster
its CNI as soon as it is made), the app is loaded and deployed, and the tests drill it with the
`chaos_drill` fixture. Run it with `pytest examples/kind-smoke`; options as pytest-kind's
(`--kind-bin`, `--kind-image`, `--kind-kubectl-bin`, `--cluster-name`, `--keep-cluster`)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_kind import KindCluster

from chaos.cluster.kind_config import write_cluster_config
from chaos.images import sample as images
from chaos.resources import shipped

APP = shipped("manifests", "workloads", "web.yaml")
"""The app under test: chaos-drill's sample `web` (3 replicas, opted in to drills), as the
installed package ships it."""


@pytest.fixture(scope="session")
def kind_cluster(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[KindCluster]:
    """pytest-kind's `kind_cluster`, made from a kind config (its own fixture takes none)."""
    option = request.config.getoption
    image = option("kind_image")
    cluster = KindCluster(option("cluster_name"), image=image,
                          kind_path=Path(option("kind_bin")) if option("kind_bin") else None,
                          kubectl_path=(Path(option("kind_kubectl_bin"))
                                        if option("kind_kubectl_bin") else None))
    config = write_cluster_config(tmp_path_factory.mktemp("kind") / "cluster.yaml", image)
    cluster.create(config_file=config)
    yield cluster
    if not option("keep_cluster"):
        cluster.delete()


@pytest.fixture(scope="session")
def web(kind_cluster: KindCluster) -> KindCluster:
    """The app loaded into the cluster, deployed and rolled out."""
    for archive in images.build_archives(images.archive_dir()):
        subprocess.run([str(kind_cluster.kind_path), "load", "image-archive", str(archive),
                        "--name", kind_cluster.name], check=True, timeout=300)
    kind_cluster.kubectl("apply", "-f", str(APP), timeout=60)
    kind_cluster.kubectl("rollout", "status", "-n", "demo", "deployment/web", "--timeout=180s",
                         timeout=200)
    return kind_cluster
