"""The local cluster's network: one bridge holding the pod range, the service range routed to it,
and a guard so nothing from the bridge leaves through another interface."""

from __future__ import annotations

import subprocess
from pathlib import Path

from chaos import statefile
from chaos.cluster import sysctls
from chaos.cluster.base import Progress
from chaos.statefile import Malformed

BRIDGE = "cdrill0"
POD_CIDR = "10.244.0.0/16"
GATEWAY = "10.244.0.1"
SERVICE_CIDR = "10.96.0.0/12"
API_SERVICE_IP = "10.96.0.1"
DNS_SERVICE_IP = "10.96.0.10"
"""kube-dns, the ClusterIP every kubelet gives its pods as their nameserver."""
CLUSTER_DOMAIN = "cluster.local"
GUARD_CHAIN = "CHAOSDRILL-GUARD"
SYSCTLS = {
    "net/ipv4/ip_forward": "1",
    "net/bridge/bridge-nf-call-iptables": "1",
}
KUBELET_SYSCTLS = ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic",
                   "kernel/panic_on_oops", "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes")
"""Host-wide settings kubelet changes at start (its protectKernelDefaults is off): saved with
ours, put back on down."""
SAVED_SYSCTLS = "sysctls.json"
"""In the state directory: the values of SYSCTLS and KUBELET_SYSCTLS from before `up`."""


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=60)


def node_range(index: int) -> tuple[str, str]:
    """Node INDEX (1-based) hands out pod IPs from 10.244.INDEX.2-254."""
    return f"10.244.{index}.2", f"10.244.{index}.254"


def set_up(state: Path, progress: Progress) -> None:
    """Creates the bridge, the service route and the forward guard; saves sysctls it changes."""
    if not bridge_exists():
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
    _run("ip", "addr", "replace", f"{GATEWAY}/16", "dev", BRIDGE)
    _run("ip", "link", "set", BRIDGE, "up")
    _run("ip", "route", "replace", SERVICE_CIDR, "dev", BRIDGE)
    save_sysctls(state / SAVED_SYSCTLS, progress)
    for key, value in SYSCTLS.items():
        (sysctls.PROC_SYS / key).write_text(value)
    _add_guard()


def tear_down(state: Path, progress: Progress) -> None:
    """Removes the guard, the pods' interfaces, the bridge (and with it its routes) and restores
    saved sysctls."""
    _remove_guard()
    if bridge_exists():
        for port in bridge_ports():  # a pod's network namespace something else still holds
            _run("ip", "link", "delete", port, check=False)  # would keep its pair otherwise
        _run("ip", "link", "delete", BRIDGE)
    restore_sysctls(state / SAVED_SYSCTLS, progress)


def bridge_exists(name: str = BRIDGE) -> bool:
    return _run("ip", "link", "show", name, check=False).returncode == 0


def bridge_ports(name: str = BRIDGE) -> list[str]:
    """The interfaces on bridge NAME: the host ends of the veth pairs (pods' on ours)."""
    listing = _run("ip", "-o", "link", "show", "master", name, check=False).stdout
    return [line.split(":")[1].strip().partition("@")[0]
            for line in listing.splitlines() if line.count(":") >= 2]


RESTORED_SYSCTLS = (*SYSCTLS, *KUBELET_SYSCTLS)


def save_sysctls(saved: Path, progress: Progress) -> None:
    """Saves the originals of ours and kubelet's before any is changed; values an earlier `up`
    saved stay, as they are older."""
    old = statefile.read_json(saved, statefile.json_object)
    if isinstance(old, Malformed):
        progress(old.warning("saving the values of now instead"))
    earlier = old if isinstance(old, dict) else {}
    statefile.write_json(saved, {**sysctls.current(RESTORED_SYSCTLS), **earlier})


def restore_sysctls(saved: Path, progress: Progress) -> None:
    """Puts back the saved sysctls of ours and kubelet's, and nothing else, then forgets them."""
    found = statefile.read_json(saved, statefile.json_object)
    if isinstance(found, Malformed):
        progress(found.warning("the sysctls it held are left as they are: "
                               + ", ".join(k.replace("/", ".") for k in RESTORED_SYSCTLS)))
    elif found is not None:
        sysctls.restore(found, RESTORED_SYSCTLS, saved, progress)
    saved.unlink(missing_ok=True)


GUARD_TABLE = ("iptables", "-w", "-t", "mangle")
"""The guard lives in mangle's FORWARD, which runs before filter's and which kube-proxy never
touches, so no ACCEPT of kube-proxy's can come before it."""


def _guard(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run(*GUARD_TABLE, *args, check=check)


def _add_guard() -> None:
    """Drops forwarded packets that enter on the bridge and would leave by another interface."""
    if _guard("-L", GUARD_CHAIN, "-n", check=False).returncode != 0:
        _guard("-N", GUARD_CHAIN)
    _guard("-F", GUARD_CHAIN)
    _guard("-A", GUARD_CHAIN, "-i", BRIDGE, "!", "-o", BRIDGE, "-j", "DROP")
    _guard("-A", GUARD_CHAIN, "-d", POD_CIDR, "!", "-o", BRIDGE, "-j", "DROP")
    _guard("-A", GUARD_CHAIN, "-d", SERVICE_CIDR, "!", "-o", BRIDGE, "-j", "DROP")
    if _guard("-C", "FORWARD", "-j", GUARD_CHAIN, check=False).returncode != 0:
        _guard("-I", "FORWARD", "-j", GUARD_CHAIN)


def _remove_guard() -> None:
    while _guard("-D", "FORWARD", "-j", GUARD_CHAIN, check=False).returncode == 0:
        pass
    _guard("-F", GUARD_CHAIN, check=False)
    _guard("-X", GUARD_CHAIN, check=False)


def leftover_rules() -> list[str]:
    """iptables and ip6tables rules or chains that Kubernetes or we created (KUBE-, CNI-, ours)."""
    found: list[str] = []
    for tool in ("iptables", "ip6tables"):
        result = _run(f"{tool}-save", check=False)
        for line in result.stdout.splitlines():
            if any(mark in line for mark in ("KUBE-", "CNI-", GUARD_CHAIN)):
                found.append(f"{tool}: {line}")
    return found


def remove_kubernetes_chains() -> None:
    """Deletes KUBE-* chains (and the rules jumping to them) that kubelet and kube-proxy leave."""
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle"):
            _remove_chains(tool, table)


def _remove_chains(tool: str, table: str) -> None:
    listing = _run(tool, "-w", "-t", table, "-S", check=False).stdout.splitlines()
    chains = [line.split()[1] for line in listing if line.startswith("-N KUBE-")]
    for line in listing:
        parts = line.split()
        if parts[:1] == ["-A"] and "-j" in parts and parts[parts.index("-j") + 1] in chains:
            if parts[1] not in chains:
                _run(tool, "-w", "-t", table, "-D", *parts[1:], check=False)
    for chain in chains:
        _run(tool, "-w", "-t", table, "-F", chain, check=False)
    for chain in chains:
        _run(tool, "-w", "-t", table, "-X", chain, check=False)


def cni_config(index: int, state: Path) -> dict[str, object]:
    """The CNI network of node INDEX: the shared bridge, its own IP range and IPAM store."""
    start, end = node_range(index)
    ipam = {
        "type": "host-local",
        "ranges": [[{"subnet": POD_CIDR, "rangeStart": start, "rangeEnd": end,
                     "gateway": GATEWAY}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": str(state / "ipam"),
    }
    bridge = {
        "type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
        "hairpinMode": True, "ipam": ipam,
    }
    return {"cniVersion": "0.4.0", "name": "chaosdrill", "plugins": [bridge]}
