"""What the local cluster checks before it changes anything: root, the host's tools and the
builds, no kind cluster of ours, its address ranges free, and its ports free; each a SetupError
in one line naming the fix."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from chaos.cluster import addons, network, processes, routes
from chaos.cluster import layout as L
from chaos.cluster.layout import Layout
from chaos.errors import SetupError
from chaos.images import sample as images
from chaos.resources import ETCD_VERSION, KUBERNETES_VERSION

HOST_TOOLS = {
    "containerd": "containerd", "runc": "runc", "ctr": "containerd",
    "iptables": "iptables", "ip": "iproute2", "conntrack": "conntrack",
}


def preflight_root() -> None:
    if os.geteuid() != 0:
        raise SetupError("the local cluster needs root (it runs containerd, kubelet and "
                         "iptables): run it with sudo, or use --provider kind|kubeconfig")


def preflight_tools() -> None:
    for tool, package in HOST_TOOLS.items():
        if shutil.which(tool) is None:
            raise SetupError(f"{tool} not found: run 'make setup' (installs Debian's {package})")
    for plugin in ("bridge", "host-local", "loopback"):
        if not Path("/usr/lib/cni", plugin).exists():
            raise SetupError(f"CNI plugin {plugin} not found in /usr/lib/cni: run 'make setup' "
                             "(installs Debian's containernetworking-plugins)")
    if not images.BUSYBOX.exists():
        raise SetupError("/bin/busybox not found: run 'make setup' (installs busybox-static)")
    if not L.etcd_binary().exists():
        raise SetupError(f"etcd v{ETCD_VERSION} is not built ({L.etcd_binary()} missing): "
                         "run 'make setup'")
    for component in L.COMPONENTS:
        if not (L.bin_dir() / component).exists():
            raise SetupError(f"Kubernetes v{KUBERNETES_VERSION} is not built ({component} "
                             f"missing in {L.bin_dir()}): run 'make setup'")
    for image in addons.addon_images():
        if not image.binary.exists():
            raise SetupError(f"{image.name} is not built ({image.binary} missing): run "
                             "'make setup'")


def preflight_no_kind() -> None:
    from chaos.cluster import kind

    if kind.running_here():
        raise SetupError("a kind cluster of chaos-drill is up: run 'chaos-drill cluster down "
                         "--provider kind' first (the local and kind providers cannot run at once)")


RANGES = {network.SERVICE_CIDR: "service range", network.POD_CIDR: "pod range"}
"""What the cluster adds to the host: the service range's route and the pod range on its bridge
(the bridge's own address, 10.244.0.1/16, and every node's pods are in it)."""


def preflight_ranges() -> None:
    """A SetupError naming the route or address and the fix when this host already holds part
    of a range the cluster adds, outside its own bridge (left from an earlier run, which up
    cleans away)."""
    clash = routes.host_clash(tuple(RANGES), own=network.BRIDGE)
    if clash:
        raise SetupError(f"the local cluster's {RANGES[clash.wanted]} {clash.wanted} is taken "
                         f"on this host ({clash.held}): remove it ('sudo {clash.remove}'), or "
                         "use --provider kind (the local cluster's ranges are fixed)")


def preflight_ports(lay: Layout) -> None:
    for port, (address, owner) in sorted(lay.ports.items()):
        processes.ensure_port_free(port, address, f"port {port} (for {owner}) is already in use "
                                   f"on {address}: stop what listens there ('ss -ltnp sport = "
                                   f":{port}' shows it)")
