"""The kind provider: a three-node cluster (or one with --kind-workers N) in Docker through the
kind CLI, with the node image `make kind` builds here (or any other through --kind-image). It
starts dockerd when none runs, gives the nodes a small CNI of its own (ptp + host-local per
node, routes between nodes), keeps every packet on this machine, and `down` leaves nothing of
it on the host."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from kubernetes import client

from chaos import statefile
from chaos.cluster import (
    addons,
    dockerd,
    kind_checks,
    kind_cni,
    kind_config,
    kind_host,
    kind_images,
    kind_kubeconfig,
    kube,
    memory_hog,
    node_access,
    registry_hosts,
    serving_certs,
)
from chaos.cluster.base import ClusterStatus, MemoryHog, Progress
from chaos.errors import ClusterError, FaultError, SetupError
from chaos.images import sample as images
from chaos.resources import cache_dir

KIND_VERSION = "0.33.0"
KIND_TIMEOUT = 900
"""Seconds a kind call may take (creating a cluster is the slowest)."""
UP_TIMEOUT = 180.0
NODES_READY_WAIT = 60.0
"""Seconds an existing cluster whose node containers all run gets for its nodes to be Ready."""
POLL_SECONDS = 0.5
CLUSTER_LABEL = kind_host.CLUSTER_LABEL


def state_dir() -> Path:
    return Path(os.environ.get("CHAOS_DRILL_KIND_STATE", "/var/lib/chaos-drill/kind"))


def kind_binary() -> str:
    built = cache_dir() / f"kind-v{KIND_VERSION}" / "bin" / "kind"
    return str(built) if built.exists() else "kind"


def create_command(name: str, config: Path = kind_config.CONFIG,
                   image: str | None = None) -> list[str]:
    """No --wait: the nodes cannot be Ready before our CNI is in place, which comes after."""
    command = ["kind", "create", "cluster", "--name", name, "--config", str(config)]
    return command + (["--image", image] if image else [])


def delete_command(name: str) -> list[str]:
    return ["kind", "delete", "cluster", "--name", name]


def load_command(name: str, archive: Path) -> list[str]:
    return ["kind", "load", "image-archive", str(archive), "--name", name]


def kill_command(node: str, container_id: str) -> list[str]:
    """SIGKILLs a container's main process through the node container's own containerd."""
    return ["docker", "exec", node, "ctr", "--namespace", "k8s.io", "tasks", "kill",
            "--signal", "SIGKILL", container_id]


def running_here() -> bool:
    """Whether a kind cluster of ours is up on this machine (the local provider asks)."""
    return (state_dir() / "cluster").exists()


class KindCluster:
    """Brings a kind cluster up and down; every failure becomes a one-line error naming the fix."""

    name = "kind"

    def __init__(self, cluster_name: str = "chaos-drill", image: str | None = None,
                 kind_path: str | None = None, kubeconfig_path: Path | None = None,
                 workers: int | None = None) -> None:
        """KIND_PATH and KUBECONFIG_PATH drive a cluster made by someone else (pytest-kind).
        WORKERS: worker nodes of a cluster `up` creates (None: manifests/kind/cluster.yaml's)."""
        kind_config.check_workers(workers)
        self.cluster_name = cluster_name
        self.image = image
        self.workers = workers
        self.kind_path = kind_path
        self.kubeconfig_path = kubeconfig_path
        self.state = state_dir()
        self.engine = dockerd.Engine(self.state)
        self.hogs = memory_hog.Hogs()

    # -- helpers ------------------------------------------------------------------------------

    def _kind(self, *args: str, timeout: float = KIND_TIMEOUT) -> str:
        binary = self.kind_path or kind_binary()
        if shutil.which(binary) is None:
            raise SetupError("kind not found: run 'make kind' (builds kind v"
                             f"{KIND_VERSION}), or use --provider local")
        env = {**os.environ, "KIND_EXPERIMENTAL_DOCKER_NETWORK": kind_host.NETWORK,
               "PATH": "/usr/bin:" + os.environ.get("PATH", "")}
        try:
            result = subprocess.run([binary, *args], capture_output=True, text=True,
                                    timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise ClusterError(f"kind {args[0]} timed out after {timeout:.0f}s") from None
        if result.returncode != 0:
            lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
            raise ClusterError(f"kind {' '.join(args[:2])} failed: "
                               f"{(lines or ['no output'])[-1].strip()}")
        return result.stdout

    def _exists(self) -> bool:
        return dockerd.engine_up() and self.cluster_name in self._kind("get", "clusters").split()

    def _nodes(self) -> list[str]:
        out = dockerd.run("ps", "-a", "--filter", f"label={CLUSTER_LABEL}={self.cluster_name}",
                          "--format", "{{.Names}}", timeout=60)
        return sorted(out.split())

    def kubeconfig(self) -> Path:
        if self.kubeconfig_path is not None:
            return self.kubeconfig_path
        return kind_kubeconfig.cached(
            self.cluster_name, lambda: self._kind("get", "kubeconfig", "--name", self.cluster_name))

    # -- up -------------------------------------------------------------------------------------

    def up(self, progress: Progress) -> None:
        """Refuses before changing anything when it cannot work; a failure on the way removes
        what it made; a cluster of that name already there is used when healthy and refused,
        untouched, when broken."""
        self.preflight()
        began = time.monotonic()
        (self.state / "logs").mkdir(parents=True, exist_ok=True)
        statefile.write_atomic(self.state / "cluster", self.cluster_name.encode())
        try:
            image = self.prepare_host(progress)
            existing = self._exists()
            if not existing:
                self._create(image, progress)
        except BaseException:
            progress("kind cluster up failed: removing what was made")
            self.down(lambda _: None)
            raise
        if existing:
            self._check_existing(progress)
            if self.made_marker.exists():
                kind_host.route_through_plane(self._node_ips(), progress)
            progress(f"kind cluster {self.cluster_name} already up"
                     f"{kind_config.size_note(len(self._nodes()), self.workers)}")
            return
        progress(f"kind cluster {self.cluster_name} up in {time.monotonic() - began:.1f}s: "
                 f"export KUBECONFIG={self.kubeconfig()}")

    def preflight(self) -> None:
        kind_checks.preflight(self.kind_path or kind_binary(), self.image, self._exists)

    def _check_existing(self, progress: Progress) -> None:
        """A ClusterError naming what is wrong with the cluster already there; nodes whose
        containers all run (one just started again, say) get NODES_READY_WAIT to be Ready with
        their runtime answering."""
        states = dict(line.split(maxsplit=1) for line in dockerd.run(
            "ps", "-a", "--filter", f"label={CLUSTER_LABEL}={self.cluster_name}",
            "--format", "{{.Names}} {{.State}}", timeout=60).splitlines() if line.strip())
        down = sorted(name for name, state in states.items() if state != "running")
        fix = "run 'chaos-drill cluster down --provider kind', then up again"
        if down:
            raise ClusterError(f"kind cluster {self.cluster_name} exists but is broken: node "
                               f"container {down[0]} is {states[down[0]]}: {fix}")
        self._wait("every node to be Ready",
                   lambda: self._nodes_ready() and kind_images.runtimes_answer(list(states)),
                   progress,
                   timeout=NODES_READY_WAIT,
                   message=f"kind cluster {self.cluster_name} exists but is broken: not every "
                           f"node is Ready after {NODES_READY_WAIT:.0f}s: {fix}")

    def prepare_host(self, progress: Progress) -> str:
        """What any kind cluster here needs before `kind create`, chaos-drill's or pytest-kind's
        (with KIND_EXPERIMENTAL_DOCKER_NETWORK=chaos-drill): a Docker engine, the node image in
        it, our network and its egress rule. Returns the node image."""
        self.engine.ensure(progress)
        image = self._node_image(progress)
        kind_host.ensure_network(progress)
        return image

    @property
    def made_marker(self) -> Path:
        """There from just before `up` creates a cluster of this name until `down` deletes it:
        `down` deletes only such clusters, never one kind or pytest-kind made."""
        return self.state / "made" / self.cluster_name

    def _create(self, image: str, progress: Progress) -> None:
        self.registry_hosts.mkdir(parents=True, exist_ok=True)
        self.made_marker.parent.mkdir(parents=True, exist_ok=True)
        statefile.write_atomic(self.made_marker, b"")
        config = kind_config.write_cluster_config(
            self.state / "cluster.yaml", image, serving_certs=True,
            registry_hosts=self.registry_hosts, workers=self.workers)
        count = len(yaml.safe_load(config.read_text())["nodes"])
        progress(f"creating kind cluster {self.cluster_name} ({kind_config.nodes_text(count)}, "
                 f"image {image})")
        self._kind(*create_command(self.cluster_name, config, image)[1:])
        self.kubeconfig()  # kept once, before two threads read it
        with ThreadPoolExecutor(max_workers=1) as pool:
            cni = pool.submit(self.install_cni, progress)  # the two wait on different things
            self._approve_serving_certs(progress)
            cni.result()
        kind_host.route_through_plane(self._node_ips(), progress)
        kind_host.dns_without_upstream(self.kubeconfig(), progress)
        self._wait("nodes Ready", self._nodes_ready, progress)
        self.load_images([*images.build_archives(images.archive_dir()),
                          *addons.build_archives(images.archive_dir(), ("metrics-server",))],
                         progress)
        self._metrics_server(progress)

    def host_probe_refusal(self, address: str) -> str | None:
        """Why this host must not probe ADDRESS, one of this cluster's Services; None if not."""
        return kind_host.probe_refusal(address, self._node_ips, self.cluster_name)

    def _node_ips(self) -> dict[str, frozenset[str]]:
        """Each node container's IP addresses, as Docker gives them (not as the node says)."""
        form = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.GlobalIPv6Address}} {{end}}"
        return {node: serving_certs.address_set(dockerd.run(
            "inspect", "--format", form, node, timeout=60).split()) for node in self._nodes()}

    def _approve_serving_certs(self, progress: Progress) -> None:
        """Approves each node's kubelet serving CSR (checked to be for that node alone) and
        waits until every node has its certificate: until then exec, logs and metrics fail."""
        nodes = self._node_ips()
        with kube.api_client(self.kubeconfig()) as api:
            self._wait("kubelet serving certificates (approving their requests)",
                       lambda: not serving_certs.approve(api, nodes), progress)
        progress(f"kubelet serving certificates signed by the cluster CA on {len(nodes)} nodes")

    def _metrics_server(self, progress: Progress) -> None:
        """metrics-server, serving a cert from a CA of its own; not waited for (a load drill is)."""
        progress("installing metrics-server")
        pki_dir = addons.write_metrics_server_pki(self.state / "pki")
        with kube.api_client(self.kubeconfig()) as api:
            addons.install(api, pki_dir, only_metrics_server=True)

    def _node_image(self, progress: Progress) -> str:
        """The image to run: --kind-image, else ours, loaded into Docker when it changed."""
        return self.image or kind_host.load_node_image(progress)

    def install_cni(self, progress: Progress) -> None:
        """Gives every node chaos-drill's CNI (config and routes), once each has a pod range."""
        nodes = self._wait_for_pod_cidrs(progress)
        with ThreadPoolExecutor(max_workers=len(nodes) or 1) as pool:  # all nodes at once
            list(pool.map(lambda name: kind_cni.configure_node(name, nodes), nodes))
        for name, (_, cidr) in sorted(nodes.items()):
            progress(f"CNI on {name}: pods from {cidr}")

    def lacks_cni(self) -> bool:
        return kind_cni.lacks_cni(self.kubeconfig(), self._nodes())

    def _wait_for_pod_cidrs(self, progress: Progress) -> dict[str, tuple[str, str]]:
        want = len(self._nodes())
        found: dict[str, tuple[str, str]] = {}

        def all_have_cidrs() -> bool:
            nonlocal found
            found = kind_cni.node_addresses(self.kubeconfig())
            return len(found) == want

        self._wait("a pod range on every node", all_have_cidrs, progress)
        return found

    def _nodes_ready(self) -> bool:
        try:
            with kube.api_client(self.kubeconfig()) as api:
                nodes = client.CoreV1Api(api).list_node(_request_timeout=10).items
        except Exception:
            return False
        return len(nodes) == len(self._nodes()) and all(kube.node_ready(n) for n in nodes)

    def _wait(self, what: str, ready: Callable[[], bool], progress: Progress,
              missing: Callable[[], str] | None = None, timeout: float = UP_TIMEOUT,
              message: str | None = None) -> None:
        """Until READY() (said only when it is not at once), polled every POLL_SECONDS for up to
        TIMEOUT seconds; else a ClusterError: MESSAGE, or one naming WHAT (and what is MISSING,
        when given)."""
        if ready():
            return
        progress(f"waiting up to {timeout:.0f}s for {what}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            if ready():
                return
        detail = f" ({missing()})" if missing else ""
        raise ClusterError(message or f"timed out after {timeout:.0f}s waiting for {what}"
                           f"{detail}: see 'kind export logs --name {self.cluster_name}'")

    # -- down -----------------------------------------------------------------------------------

    def down(self, progress: Progress) -> None:
        """Deletes the cluster, its network and rules, and stops the dockerd we started; a
        cluster of that name that chaos-drill did not make is left running, and all with it."""
        revived = kind_host.revive_engine(self.made_marker, self.engine, progress)
        if not self.made_marker.exists() and self._exists():
            progress(f"kind cluster {self.cluster_name} was not made by chaos-drill: left "
                     f"running (delete it with 'kind delete cluster --name {self.cluster_name}')")
            return self.engine.stop(progress) if revived else None  # as it was found
        if dockerd.engine_up():
            if self._exists():
                progress(f"deleting kind cluster {self.cluster_name}")
                kind_host.delete_thawing(lambda: self._kind(*delete_command(self.cluster_name)[1:]),
                                         self.cluster_name, progress)
            kind_host.remove_network(progress)
        kind_host.remove_service_route()
        kind_host.remove_egress_rules()
        self.engine.stop(progress)
        (self.state / "cluster").unlink(missing_ok=True)
        self.made_marker.unlink(missing_ok=True)
        shutil.rmtree(self.state / "pki", ignore_errors=True)
        shutil.rmtree(self.registry_hosts, ignore_errors=True)
        left = self.leftovers()
        if left:
            raise ClusterError("cluster down left " + "; ".join(left[:5]) + ": run "
                               "'chaos-drill cluster down --provider kind' again")
        progress(f"kind cluster {self.cluster_name} down")

    def leftovers(self) -> list[str]:
        """What of ours is still on the host: containers, network, bridge, rules, dockerd."""
        return kind_host.leftovers(self._nodes, self.engine, self.cluster_name)

    # -- status, images, faults -------------------------------------------------------------------

    def status(self) -> ClusterStatus:
        exists = self._exists()
        return ClusterStatus("kind", exists, self.kubeconfig() if exists else None)

    def load_images(self, archives: Sequence[Path], progress: Progress) -> None:
        kind_images.load(self._nodes(), archives, f"kind cluster {self.cluster_name}", progress,
                         lambda a: self._kind(*load_command(self.cluster_name, a)[1:]))

    @property
    def registry_hosts(self) -> Path:
        """The folder every node mounts as its containerd's certs.d."""
        return self.state / "certs.d"

    def trust_registry(self, host: str, ca: Path, progress: Progress) -> None:
        for node in self._nodes():
            mounts = dockerd.run("inspect", "-f", "{{range .Mounts}}{{.Destination}} {{end}}",
                                 node, timeout=60).split()
            if kind_config.NODE_REGISTRY_HOSTS not in mounts:
                raise ClusterError(f"kind node {node} does not mount {self.registry_hosts}: "
                                   "run 'chaos-drill cluster down --provider kind', then up")
        folder = registry_hosts.trust(self.registry_hosts, host, ca,
                                      Path(kind_config.NODE_REGISTRY_HOSTS))
        progress(f"the kind nodes pull from {host} trusting {ca} ({folder / 'hosts.toml'})")

    def container_kill(self, node: str, container_id: str) -> None:
        try:
            dockerd.run(*kill_command(node, container_id)[1:], timeout=60)
        except ClusterError as error:
            raise FaultError(str(error)) from None

    def pod_netns_run(self, node: str, pod_uid: str, command: Sequence[str]) -> str:
        """As on the local cluster, inside the node's container: `docker exec NODE nsenter`."""
        return node_access.netns_run(node_access.in_node_container(node), pod_uid, command)

    def start_memory_hog(self, node: str, container_id: str) -> MemoryHog:
        return self.hogs.start(node_access.in_node_container(node), container_id)

    def stop_memory_hog(self, hog: MemoryHog) -> bool:
        return self.hogs.stop(node_access.in_node_container(hog.node), hog)

    def oom_kills(self, hog: MemoryHog) -> int | None:
        return self.hogs.oom_kills(node_access.in_node_container(hog.node), hog)

    def stop_node(self, name: str) -> None:
        """`docker kill` of the node's container: its kubelet, runtime and pods all die at once,
        as when a machine loses power (`docker stop` would shut it down over up to 10 s while
        its pods still served, and the drill would count that time as the outage's)."""
        if name not in self._nodes():
            raise FaultError(f"no node container {name!r} in kind cluster {self.cluster_name}")
        dockerd.run("kill", name, timeout=120)

    def start_node(self, name: str, progress: Progress) -> None:
        """`docker start` again; the node's network namespace is new, so routes go back in."""
        dockerd.run("start", name, timeout=120)
        kind_cni.add_routes(self._nodes(), kind_cni.node_addresses(self.kubeconfig()))
        progress(f"node {name} started again")
