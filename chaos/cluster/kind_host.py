"""What the host needs before `kind create`, and what `down` takes back: the node image loaded
into Docker, the nodes' Docker network with a bridge name we know, the iptables rule that
keeps their packets on this machine, and the route that sends the cluster's Service range to
its control-plane node; and CoreDNS with no upstream, so nothing is asked out; and what of all
that is still there after `down`."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shlex
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from kubernetes import client

from chaos.cluster import dockerd, kube, network, processes, routes
from chaos.cluster.base import Progress
from chaos.cluster.kind_config import SERVICE_SUBNET
from chaos.errors import ClusterError, SetupError
from chaos.images.node import NODE_IMAGE
from chaos.resources import KUBERNETES_VERSION, cache_dir

NETWORK = "chaos-drill"
BRIDGE = "cdrill-kind"
"""The Docker network the nodes join (created here, so its bridge has a name we know)."""
NETWORK_SUBNET = "172.30.0.0/24"
"""The nodes' addresses; CHAOS_DRILL_KIND_SUBNET chooses another where this one is taken."""
EGRESS_COMMENT = "chaos-drill: nothing leaves the machine"
CLUSTER_LABEL = "io.x-k8s.kind.cluster"
"""The label kind puts on a cluster's node containers, valued with the cluster's name."""


def network_subnet() -> str:
    return os.environ.get("CHAOS_DRILL_KIND_SUBNET", NETWORK_SUBNET)


def node_image_dir() -> Path:
    return cache_dir() / f"kind-node-v{KUBERNETES_VERSION}"


def built_node_image() -> Path:
    """The folder of the node image `make kind` built; a SetupError naming the fix if none."""
    built = node_image_dir()
    if not (built / "image-id").exists():
        raise SetupError(f"node image {NODE_IMAGE} is not built ({built} missing): run "
                         "'make kind', or pass --kind-image IMAGE")
    return built


def load_node_image(progress: Progress) -> str:
    """Our node image, loaded into Docker when it changed; returns its reference."""
    built = built_node_image()
    want = (built / "image-id").read_text().strip()
    have = dockerd.run("image", "inspect", "--format", "{{.Id}}", NODE_IMAGE,
                       check=False, timeout=60).strip()
    if have != want:
        progress(f"loading {NODE_IMAGE} into Docker (from {built})")
        names = [p.name for p in built.iterdir() if not p.name.startswith(".")
                 and p.name != "image-id"]
        tar = subprocess.Popen(["tar", "-C", str(built), "-c", *names],
                               stdout=subprocess.PIPE)
        try:
            load = subprocess.run([dockerd.docker(), "load"], stdin=tar.stdout,
                                  capture_output=True, timeout=dockerd.DOCKER_TIMEOUT)
        finally:
            tar.wait(timeout=60)
        if load.returncode != 0:
            raise ClusterError("docker load of the node image failed: "
                               + load.stderr.decode(errors="replace").strip())
    return NODE_IMAGE


def egress_rule(bridge: str, out: str) -> list[str]:
    """Rejects what the nodes send through the default route's interface."""
    return ["-i", bridge, "-o", out, "-m", "comment", "--comment", EGRESS_COMMENT,
            "-j", "REJECT"]


def check_subnet_free() -> None:
    """A SetupError naming the fix when a route or address on this host overlaps the nodes'
    subnet (our own bridge, left from an earlier run, aside)."""
    clash = routes.host_clash((network_subnet(),), own=BRIDGE)
    if clash:
        raise SetupError(f"the kind nodes' subnet {network_subnet()} is taken on this host "
                         f"({clash.held}): set CHAOS_DRILL_KIND_SUBNET to a free one")
    clash = routes.host_clash((SERVICE_SUBNET,), own=BRIDGE)
    if clash:
        raise SetupError(f"the kind cluster's Service range {SERVICE_SUBNET} is taken on this "
                         f"host ({clash.held}): remove it with '{clash.remove}'")


def service_gateway() -> str | None:
    """The node our bridge's route to the Service range goes through, if there is that route."""
    out = subprocess.run(["ip", "-j", "route", "show", SERVICE_SUBNET, "dev", BRIDGE],
                         capture_output=True, text=True, timeout=30).stdout
    found = [r.get("gateway") for r in json.loads(out or "[]") if r.get("gateway")]
    return str(found[0]) if found else None


def route_services(node_ip: str) -> None:
    """Sends the Service range to NODE_IP over our bridge: kube-proxy there translates a
    Service's address to a pod's, and masquerades what comes from outside the pod range, so
    this host reaches Services as the local cluster's host does (and a probe runs from here)."""
    done = subprocess.run(["ip", "route", "replace", SERVICE_SUBNET, "via", node_ip, "dev",
                           BRIDGE], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise ClusterError(f"could not route {SERVICE_SUBNET} through {node_ip}: "
                           + done.stderr.strip())


def route_through_plane(node_ips: Mapping[str, frozenset[str]], progress: Progress) -> None:
    """Routes the Service range through the control-plane node of NODE_IPS (node faults never
    pick it), unless the route goes through another kind cluster's node already."""
    ours = ipaddress.ip_network(network_subnet())
    ips = {node: sorted(ip for ip in found if ip and ipaddress.ip_address(ip) in ours)
           for node, found in node_ips.items()}
    plane = next((n for n in sorted(ips) if n.endswith("-control-plane") and ips[n]), None)
    held = service_gateway()
    if plane is None:
        progress(f"no control-plane node on network {NETWORK}: drills here probe from a pod")
        return
    if held not in (None, *(ip for found in ips.values() for ip in found)):
        progress(f"Services ({SERVICE_SUBNET}) stay routed to {held}, another kind cluster's "
                 "node: drills here probe from a pod")
        return
    route_services(ips[plane][0])
    progress(f"Services ({SERVICE_SUBNET}) routed through {plane} ({ips[plane][0]}): drills "
             "probe from this host")


def probe_refusal(address: str, node_ips: Callable[[], Mapping[str, frozenset[str]]],
                  cluster: str) -> str | None:
    """Why this host must not probe ADDRESS, a Service of kind cluster CLUSTER (whose nodes
    have NODE_IPS(), asked only when there is a route): its route there goes to another
    cluster's node. None when it may."""
    held = service_gateway()
    if held is None or ipaddress.ip_address(address) not in ipaddress.ip_network(
            SERVICE_SUBNET) or any(held in found for found in node_ips().values()):
        return None
    return (f"this host's route to {SERVICE_SUBNET} goes to {held}, a node of another kind "
            f"cluster, not of {cluster}")


def remove_service_route() -> None:
    if service_gateway() is not None:
        subprocess.run(["ip", "route", "del", SERVICE_SUBNET, "dev", BRIDGE],
                       capture_output=True, timeout=30)


def default_interface() -> str:
    routes = subprocess.run(["ip", "route", "show", "default"], capture_output=True, text=True,
                            timeout=30).stdout.split()
    return routes[routes.index("dev") + 1] if "dev" in routes else ""


def network_exists() -> bool:
    return NETWORK in dockerd.run("network", "ls", "--format", "{{.Name}}", timeout=60).split()


def ensure_network(progress: Progress) -> None:
    """The nodes' Docker network, IPv4 only, with a bridge name we know, and a rule so that
    nothing from it leaves through the default route."""
    if not network_exists():
        progress(f"creating Docker network {NETWORK} (bridge {BRIDGE})")
        dockerd.run("network", "create", "--driver", "bridge", "--subnet", network_subnet(),
                    "-o", f"com.docker.network.bridge.name={BRIDGE}",
                    "-o", "com.docker.network.bridge.enable_ip_masquerade=false",
                    NETWORK, timeout=60)
    out = default_interface()
    if out:
        rule = egress_rule(BRIDGE, out)
        check = subprocess.run(["iptables", "-w", "-C", "DOCKER-USER", *rule],
                               capture_output=True, timeout=30)
        if check.returncode != 0:
            added = subprocess.run(["iptables", "-w", "-I", "DOCKER-USER", *rule],
                                   capture_output=True, text=True, timeout=30)
            if added.returncode != 0:
                raise ClusterError("could not block egress from the kind nodes: iptables: "
                                   + added.stderr.strip())
        progress(f"blocking egress from {BRIDGE} through {out}")


def remove_network(progress: Progress) -> None:
    """The nodes' Docker network, when there (the engine must be up); first, when no container
    is on it, the interfaces still on its bridge: a killed node's network namespace can outlive
    its processes (held by its sockets) and would otherwise keep sending through them."""
    if not network_exists():
        return
    attached = dockerd.run("network", "inspect", "-f", "{{len .Containers}}", NETWORK,
                           timeout=60).strip()
    if attached == "0":
        for port in network.bridge_ports(BRIDGE):
            progress(f"deleting {port}, left on {BRIDGE} by a node that is gone")
            subprocess.run(["ip", "link", "del", port], capture_output=True, timeout=30)
    progress(f"removing Docker network {NETWORK}")
    dockerd.run("network", "rm", NETWORK, timeout=60)


def remove_egress_rules() -> None:
    listing = subprocess.run(["iptables", "-w", "-S", "DOCKER-USER"], capture_output=True,
                             text=True, timeout=30).stdout.splitlines()
    for line in listing:
        if EGRESS_COMMENT in line:
            subprocess.run(["iptables", "-w", "-D", *shlex.split(line)[1:]],
                           capture_output=True, timeout=30)


def corefile_without_upstream(corefile: str) -> str:
    """kubeadm's Corefile without its `forward` block: cluster names only, nothing asked out."""
    kept, depth = [], 0
    for line in corefile.splitlines():
        if depth == 0 and line.strip().startswith("forward "):
            depth = line.count("{") - line.count("}")
            continue
        if depth > 0:
            depth += line.count("{") - line.count("}")
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def dns_without_upstream(kubeconfig: Path, progress: Progress) -> None:
    """CoreDNS answering cluster names only: its Corefile without `forward`, pods restarted,
    their readiness probed every second (kubeadm's 10 s would hold a drill's wait for the
    cluster DNS that long)."""
    with kube.api_client(kubeconfig) as api:
        core = client.CoreV1Api(api)
        config = core.read_namespaced_config_map("coredns", "kube-system",
                                                 _request_timeout=30)
        corefile = corefile_without_upstream(config.data["Corefile"])
        core.patch_namespaced_config_map("coredns", "kube-system",
                                         {"data": {"Corefile": corefile}},
                                         _request_timeout=30)
        stamp = {"spec": {"template": {"metadata": {"annotations": {
            "chaosdrill.dev/corefile": hashlib.sha256(corefile.encode()).hexdigest()[:12],
        }}, "spec": {"containers": [{"name": "coredns", "readinessProbe": {"periodSeconds": 1}}]}}}}
        client.AppsV1Api(api).patch_namespaced_deployment("coredns", "kube-system", stamp,
                                                          _request_timeout=30)
    progress("CoreDNS answers cluster names only (no upstream)")


CGROUP_ROOT = Path("/sys/fs/cgroup")


def thaw(container_ids: list[str], root: Path = CGROUP_ROOT) -> list[Path]:
    """Thaws every frozen cgroup under the given node containers' (cgroup v1 freezer and v2),
    top down: a runc in a node that died while its container's cgroup was frozen leaves a
    process no signal reaches, and Docker then cannot stop the node. Returns those thawed."""
    thawed = []
    for cid in container_ids:
        for base, name, running in ((root / "freezer" / "docker" / cid, "freezer.state",
                                     "THAWED"),
                                    (root / "docker" / cid, "cgroup.freeze", "0")):
            states = sorted(base.rglob(name), key=lambda p: len(p.parts)) if base.is_dir() else []
            for state in states:
                if state.read_text().strip() != running:
                    state.write_text(running)
                    thawed.append(state.parent)
    return thawed


def delete_thawing(delete: Callable[[], object], cluster: str, progress: Progress) -> None:
    """DELETE (kind delete cluster); when it fails and a node of CLUSTER holds frozen cgroups,
    thaws them and deletes again, once."""
    try:
        delete()
    except ClusterError:
        ids = dockerd.run("ps", "-aq", "--no-trunc", "--filter",
                          f"label={CLUSTER_LABEL}={cluster}", timeout=60).split()
        thawed = thaw(ids)
        if not thawed:
            raise
        progress(f"thawed {len(thawed)} frozen cgroup(s) in the nodes; deleting again")
        delete()


def leftovers(nodes: Callable[[], list[str]], engine: dockerd.Engine,
              cluster: str) -> list[str]:
    """What of a kind cluster of ours is still on the host: its node containers (NODES lists
    them; on disk, labelled CLUSTER, when no engine runs), our network, bridge and rules, the
    dockerd ENGINE started."""
    left = []
    running = dockerd.engine_up()
    if running:
        left += [f"container {n}" for n in nodes()]
        left += [f"network {NETWORK}"] if network_exists() else []
    bridge = network.bridge_exists(BRIDGE)
    left += [f"interface {BRIDGE}"] if bridge else []
    gateway = service_gateway() if bridge else None
    left += [f"route {SERVICE_SUBNET} via {gateway}"] if gateway else []
    marks = [EGRESS_COMMENT, BRIDGE]
    if not running:  # with no engine running, none of its rules or volumes may stay
        marks.append("DOCKER")
        left += [f"container {n} (stopped with the engine)" for n in stored(cluster)]
        left += [f"Docker volume {v}" for v in dockerd.leftover_volumes()]
    left += dockerd.leftover_rules(marks)
    process = engine.started()
    if process is not None and processes.is_alive(process):
        left.append(f"dockerd (pid {process.pid})")
    return left


def dead_engine_left(made: Path) -> list[str]:
    """With no Docker engine answering, what of a cluster of ours only the engine can delete:
    the cluster MADE says chaos-drill created, its bridge, its nodes' volumes (all left when
    dockerd and the nodes were killed, as by a reboot or a killed session). Empty when an
    engine answers."""
    if dockerd.engine_up():
        return []
    left = [f"cluster {made.name}"] if made.exists() or stored(made.name) else []
    left += [f"interface {BRIDGE}"] if network.bridge_exists(BRIDGE) else []
    volumes = dockerd.leftover_volumes()
    return left + ([f"{len(volumes)} Docker volume(s)"] if volumes else [])


def stored(cluster: str) -> list[str]:
    """The node containers of CLUSTER a stopped engine keeps on disk."""
    return dockerd.stored_with_label(CLUSTER_LABEL, cluster)


def revive_engine(made: Path, engine: dockerd.Engine, progress: Progress) -> bool:
    """Starts dockerd again when it is gone but left a cluster of ours, so `down` deletes the
    cluster, its network and volumes as usual; True when it did."""
    left = dead_engine_left(made)
    if not left:
        return False
    progress("the Docker engine is not running but left " + ", ".join(left) + ": starting it "
             "to delete them")
    engine.ensure(progress)
    return True
