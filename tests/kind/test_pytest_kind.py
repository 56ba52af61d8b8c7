"""pytest-kind, as users use it: examples/kind-smoke runs in its own pytest process against a
kind cluster pytest-kind makes from our node image (the CNI given by chaos-drill's plugin), and
drills it with the `chaos_drill` fixture. The host is prepared as `cluster up --provider kind`
does (dockerd, the node image, our network and its egress rule) and put back after."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.cluster import dockerd, kind
from chaos.cluster.kind import KindCluster
from chaos.cluster.kind_host import NETWORK, node_image_dir
from chaos.cluster.local import LocalCluster
from chaos.images.node import NODE_IMAGE
from chaos.resources import KUBERNETES_VERSION, cache_dir

from support import REPO, leaked, watch_leaks

pytestmark = [pytest.mark.e2e, pytest.mark.kind, pytest.mark.timeout(900)]

EXAMPLE = REPO / "examples" / "kind-smoke"
NAME = "pytest-kind"
KUBECTL = cache_dir() / f"kubernetes-tools-v{KUBERNETES_VERSION}" / "bin" / "kubectl"


def say(message: str) -> None:
    print(f"[pytest-kind] {message}", flush=True)


@pytest.fixture
def kind_host(cluster_lock: None) -> Iterator[KindCluster]:
    """The host ready for pytest-kind (no cluster yet); everything removed afterwards."""
    if not node_image_dir().joinpath("image-id").exists():
        pytest.fail(f"{node_image_dir()} missing: run 'make kind' first")
    LocalCluster().down(say)
    if kind.running_here():
        KindCluster().down(say)
    provider = KindCluster(NAME)
    provider.state.mkdir(parents=True, exist_ok=True)
    (provider.state / "cluster").write_text(NAME)  # the local provider refuses meanwhile
    watch_leaks("-I")
    try:
        provider.prepare_host(say)
        yield provider
    finally:
        watch_leaks("-D")
        provider.down(say)


def test_the_example_smoke_test_passes_through_pytest_kind(kind_host: KindCluster,
                                                           tmp_path: Path) -> None:
    command = [sys.executable, "-m", "pytest", str(EXAMPLE), "-p", "no:cacheprovider", "-rP",
               "--cluster-name", NAME, "--kind-bin", kind.kind_binary(),
               "--kind-image", NODE_IMAGE, "--kind-kubectl-bin", str(KUBECTL)]
    env = {**os.environ, "KIND_EXPERIMENTAL_DOCKER_NETWORK": NETWORK,
           "PATH": "/usr/bin:" + os.environ.get("PATH", "")}  # Debian's docker client for kind
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=720)
    say(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout
    assert "from pod demo/chaosdrill-prober-" in result.stdout, \
        "the example probes from the cluster"
    assert "availability " in result.stdout
    assert f"chaos-drill: CNI on {NAME}-control-plane: pods from 10.250." in result.stdout, \
        "the plugin gives the new cluster its CNI"
    assert (tmp_path / ".pytest-kind" / NAME).is_dir(), "pytest-kind ran in the user's folder"
    clusters = subprocess.run([kind.kind_binary(), "get", "clusters"], capture_output=True,
                              text=True, timeout=60, env=env).stdout.split()
    assert NAME not in clusters, "pytest-kind deletes its cluster at the end"
    assert not dockerd.run("ps", "-aq", "--filter", f"label={kind.CLUSTER_LABEL}={NAME}",
                           timeout=60).strip()
    assert leaked() == 0, "packets from the kind nodes or pods left the machine"
