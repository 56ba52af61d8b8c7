"""What the kind provider checks before it changes anything: root, no local cluster, kind, the
node image and metrics-server built, a Docker engine (or dockerd to start), and for a new cluster
a free API port and node subnet; each a SetupError in one line naming the fix."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

from chaos.cluster import dockerd, kind_config, kind_host, processes
from chaos.cluster.layout import API_PORT, metrics_server_binary
from chaos.errors import SetupError
from chaos.resources import METRICS_SERVER_VERSION
from chaos.statefile import Malformed


def local_cluster_up() -> bool:
    from chaos.cluster.layout import Layout

    recorded = processes.read(Layout.default().processes)
    if isinstance(recorded, Malformed):  # its processes are still in their cgroups
        return bool(processes.cgroup_pids())
    return any(processes.is_alive(p) for p in recorded)


def preflight(kind: str, image: str | None, exists: Callable[[], bool]) -> None:
    """Root, no local cluster, kind and a Docker engine (or dockerd to start), and for a new
    cluster a free API port and node subnet: each a SetupError naming the fix."""
    if os.geteuid() != 0:
        raise SetupError("the kind provider here needs root (it starts dockerd and sets "
                         "iptables rules): run it with sudo")
    if local_cluster_up():
        raise SetupError("the local cluster is up: run 'chaos-drill cluster down' first "
                         "(the local and kind providers cannot run at once)")
    if shutil.which(kind) is None:
        raise SetupError("kind not found: run 'make kind', or use --provider local")
    if not image:
        # checked before dockerd starts, so a refusal leaves nothing
        kind_host.built_node_image()
    if not metrics_server_binary().exists():
        raise SetupError(f"metrics-server v{METRICS_SERVER_VERSION} is not built "
                         f"({metrics_server_binary()} missing): run 'make kind'")
    engine = dockerd.engine_up()
    if not engine:
        dockerd.check_installed()
    elif exists():
        return  # the port and subnet are its own
    processes.ensure_port_free(
        API_PORT, kind_config.API_ADDRESS, f"port {API_PORT} (for the kind API server) is "
        f"already in use on {kind_config.API_ADDRESS}: stop what listens there "
        f"('ss -ltnp sport = :{API_PORT}' shows it)")
    kind_host.check_subnet_free()
