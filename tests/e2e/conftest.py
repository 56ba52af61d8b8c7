"""Fixtures for tests against the real local cluster: one cluster per session, reused when
healthy, taken down at the end unless CHAOS_DRILL_KEEP_CLUSTER=1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from chaos import kube, workloads
from chaos.cluster.local import LocalCluster


def _say(message: str) -> None:
    print(f"[cluster] {message}", flush=True)


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster]:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("e2e tests need root for the local cluster, and CI runs as root")
        pytest.skip("e2e tests need root for the local cluster (run 'sudo make test')")
    cluster = LocalCluster()
    cluster.up(_say)
    yield cluster
    if os.environ.get("CHAOS_DRILL_KEEP_CLUSTER") != "1":
        cluster.down(_say)


@pytest.fixture
def cluster(local_cluster: LocalCluster) -> LocalCluster:
    """The local cluster, brought back up if a test took it down."""
    local_cluster.up(_say)
    return local_cluster


@pytest.fixture
def api(cluster: LocalCluster) -> Any:
    return kube.api_client(cluster.kubeconfig())


@pytest.fixture
def web(cluster: LocalCluster, api: Any) -> Any:
    """The sample workload, applied afresh (3 replicas) and steady."""
    workloads.deploy(cluster, _say, timeout=120)
    return api
