"""Bad input for `cluster up --provider kind`: each is refused with one line naming the fix,
exit 2, before anything is changed, so the host is left as it was (no dockerd, network, bridge,
rule or state of ours); so is a kind cluster while the local one runs. A broken cluster already
there is in test_kind_cluster.py."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.cluster import dockerd, kind, kind_config, kind_host
from chaos.cluster.kind import KindCluster
from chaos.cluster.layout import API_PORT
from chaos.cluster.local import LocalCluster
from chaos.errors import SetupError
from chaos.images.node import NODE_IMAGE
from chaos.resources import KUBERNETES_VERSION, METRICS_SERVER_VERSION

from support import cli, one_error

pytestmark = [pytest.mark.e2e, pytest.mark.kind, pytest.mark.timeout(300)]

UP = ("cluster", "up", "--provider", "kind")


def say(message: str) -> None:
    print(f"[kind errors] {message}", flush=True)


@pytest.fixture
def no_cluster(cluster_lock: None) -> Iterator[KindCluster]:
    """Neither provider up and no Docker engine running; afterwards, nothing of ours either."""
    LocalCluster().down(say)
    if kind.running_here():
        KindCluster().down(say)
    assert not dockerd.engine_up(), "a Docker engine chaos-drill did not start runs here"
    modules = Path("/lib/modules").exists()
    provider = KindCluster()
    yield provider
    assert not kind.running_here(), "a refused up must leave no state"
    assert not (provider.state / "host.json").exists()
    assert not dockerd.engine_up(), "a refused up must not start dockerd"
    assert provider.leftovers() == []
    assert Path("/lib/modules").exists() == modules


def test_no_docker_engine_and_no_dockerd(no_cluster: KindCluster) -> None:
    env = {**os.environ, "PATH": "/usr/local/bin:/usr/bin:/bin"}  # no /usr/sbin/dockerd
    assert one_error(cli(*UP, env=env)) == (
        "no Docker engine is running and dockerd is not installed: run 'make kind' (installs "
        "Debian's docker.io)")


def test_api_port_taken(no_cluster: KindCluster) -> None:
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the last cluster's TIME_WAITs
        taken.bind((kind_config.API_ADDRESS, API_PORT))
        taken.listen()
        message = one_error(cli(*UP))
    assert message == (f"port {API_PORT} (for the kind API server) is already in use on "
                       f"127.0.0.1: stop what listens there ('ss -ltnp sport = :{API_PORT}' "
                       "shows it)")


def test_node_subnet_taken(no_cluster: KindCluster) -> None:
    """A host bridge in the nodes' subnet (as another Docker network's or a VPN's would be;
    this kernel has no dummy interfaces)."""
    link = "cdrill-test0"
    subprocess.run(["ip", "link", "add", link, "type", "bridge"], check=True, timeout=30)
    try:
        subprocess.run(["ip", "addr", "add", "172.30.0.129/25", "dev", link], check=True,
                       timeout=30)
        subprocess.run(["ip", "link", "set", link, "up"], check=True, timeout=30)
        message = one_error(cli(*UP))
    finally:
        subprocess.run(["ip", "link", "del", link], check=True, timeout=30)
    assert re.fullmatch(r"the kind nodes' subnet 172\.30\.0\.0/24 is taken on this host "
                        rf"\(172\.30\.0\.128/25 dev {link} .*\): set CHAOS_DRILL_KIND_SUBNET "
                        r"to a free one", message), message


def test_node_image_not_built(no_cluster: KindCluster, tmp_path: Path) -> None:
    """A cache holding kind but no node image: refused before dockerd starts."""
    cache = tmp_path / "cache"
    binary = cache / f"kind-v{kind.KIND_VERSION}" / "bin" / "kind"
    binary.parent.mkdir(parents=True)
    binary.symlink_to(kind.kind_binary())
    message = one_error(cli(*UP, env={**os.environ, "CHAOS_DRILL_CACHE": str(cache)}))
    assert message == (f"node image {NODE_IMAGE} is not built "
                       f"({cache}/kind-node-v{KUBERNETES_VERSION} missing): run 'make "
                       "kind', or pass --kind-image IMAGE")


def test_metrics_server_not_built(no_cluster: KindCluster, tmp_path: Path) -> None:
    """A cache holding kind and the node image but no metrics-server: refused before dockerd
    starts (every kind cluster chaos-drill brings up gets metrics-server)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    for built in (kind.kind_binary().rsplit("/bin/", 1)[0], str(kind_host.node_image_dir())):
        (cache / Path(built).name).symlink_to(built)
    message = one_error(cli(*UP, env={**os.environ, "CHAOS_DRILL_CACHE": str(cache)}))
    assert message == (f"metrics-server v{METRICS_SERVER_VERSION} is not built ({cache}/"
                       f"metrics-server-v{METRICS_SERVER_VERSION}/bin/metrics-server missing): "
                       "run 'make kind'")


def test_kind_refuses_while_the_local_cluster_runs(no_cluster: KindCluster) -> None:
    local = LocalCluster()
    local.up(say)
    try:
        with pytest.raises(SetupError, match=r"^the local cluster is up: run 'chaos-drill "
                                             r"cluster down' first \(the local and kind"):
            no_cluster.up(say)
        assert not kind.running_here()
    finally:
        local.down(say)
