"""The local provider: a real two-node Kubernetes on this machine from upstream binaries, etcd,
containerd and CNI, every process started, recorded and stopped by PID."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from kubernetes import client

from chaos.cluster import (
    addons,
    configs,
    host_lock,
    kube,
    kubelet_dir,
    memory_hog,
    mounts,
    network,
    node_access,
    processes,
    registry_hosts,
    runtime,
    tuning,
)
from chaos.cluster import layout as L
from chaos.cluster import local_checks as checks
from chaos.cluster.base import ClusterStatus, ComponentStatus, MemoryHog, Progress
from chaos.cluster.layout import Layout, Node
from chaos.cluster.processes import Process
from chaos.errors import ClusterError
from chaos.images import sample as images
from chaos.statefile import Malformed

UP_TIMEOUT = 120.0
RESTARTABLE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
               "kube-proxy")


class LocalCluster:
    """Brings the local cluster up and down; `up` returns once every node is Ready."""

    name = "local"

    def __init__(self, lay: Layout | None = None) -> None:
        self.lay = lay or Layout.default()
        self.started: list[Process] = []
        self.hogs = memory_hog.Hogs()

    def kubeconfig(self) -> Path:
        return self.lay.kubeconfig

    # -- up ---------------------------------------------------------------------------------

    def up(self, progress: Progress) -> None:
        checks.preflight_root()
        with host_lock.holding(self.lay.lock, progress):
            self._up(progress)

    def _up(self, progress: Progress) -> None:
        checks.preflight_tools()
        checks.preflight_no_kind()
        tuning.current()  # a bad CHAOS_DRILL_* setting stops here, before anything starts
        checks.preflight_ranges()
        if self.healthy():
            progress(f"local cluster already up (kubeconfig {self.lay.kubeconfig})")
            return
        if (processes.read(self.lay.processes) != [] or network.bridge_exists()
                or processes.cgroup_pids()):
            progress("cleaning up the remains of an earlier local cluster")
            self._down(progress)
        checks.preflight_ports(self.lay)
        try:
            self._start_all(progress)
        except BaseException:
            progress("start failed: stopping what was started")
            self._down(lambda _: None)
            raise

    def _start_all(self, progress: Progress) -> None:
        lay = self.lay
        self.started = []  # another command may have taken down what this object started
        began = time.monotonic()
        progress("writing certificates and configs")
        configs.write_all(lay)
        archives = images.build_archives(images.archive_dir())
        archives += addons.build_archives(images.archive_dir())
        network.set_up(lay.state, progress)
        self._start("etcd", configs.etcd_command(lay), "etcd")
        for node in lay.nodes:
            self._start_runtime(node, progress)
        etcd = _client_context(lay.etcd_pki, configs.ETCD_CLIENT)
        self._wait("etcd healthy", lambda: _http_ok(f"{configs.ETCD_URL}/health", etcd),
                   progress)
        self._start("kube-apiserver", configs.apiserver_command(lay), "control-plane")
        # the images go into the nodes while the control plane starts
        with ThreadPoolExecutor(max_workers=len(lay.nodes)) as pool:
            imports = [pool.submit(runtime.import_missing, node.socket, node.name, archives,
                                   lambda _: None) for node in lay.nodes]
            self._wait("kube-apiserver ready", lambda: self._api_ok("/readyz"), progress)
            for done in imports:
                done.result()
        kubelet_dir.note_made(lay.state)
        first, *others = lay.nodes  # one kubelet at a time: kubelet_dir says why
        listening = partial(kubelet_dir.listening_since, time.time())
        self._start_kubelet(first)
        self._start("kube-controller-manager", configs.controller_manager_command(lay),
                    "control-plane")
        self._start("kube-scheduler", configs.scheduler_command(lay), "control-plane")
        progress("installing add-ons: CoreDNS (kube-dns), metrics-server")
        with kube.api_client(lay.kubeconfig) as api:
            addons.install(api, lay.pki)
        for before, node in zip(lay.nodes, others, strict=False):
            self._wait(f"kubelet {before.name} listening", listening, progress)
            listening = partial(kubelet_dir.listening_since, time.time())
            self._start_kubelet(node)
        self._start("kube-proxy", configs.kube_proxy_command(lay), "kube-proxy")
        self._wait("nodes Ready", self._nodes_ready, progress)
        self._wait("kube-proxy rules", _proxy_synced, progress)
        # not the add-ons: a drill waits for the DNS before its probe, a load drill for metrics
        progress(f"local cluster up in {time.monotonic() - began:.1f}s: "
                 f"export KUBECONFIG={lay.kubeconfig}")

    def _start_runtime(self, node: Node, progress: Progress) -> None:
        node.run.mkdir(parents=True, exist_ok=True)
        self._start(f"containerd {node.name}", configs.containerd_command(node),
                    f"{node.name}/runtime")
        self._wait(f"containerd {node.name}", node.socket.exists, progress)

    def _start_kubelet(self, node: Node) -> None:
        processes.make_cgroup(node.pod_cgroup)
        self._start(f"kubelet {node.name}", configs.kubelet_command(node), f"{node.name}/kubelet")

    def start_node(self, name: str, progress: Progress) -> None:
        """Starts again the runtime and kubelet of a node stopped by stop_node; those still
        running are left alone (a restore may find the node never stopped, or started again)."""
        node = self._node(name)
        self.started = self._recorded()
        running = {p.name for p in self.started if processes.is_alive(p)}
        if f"containerd {node.name}" not in running:
            self._start_runtime(node, progress)
        if f"kubelet {node.name}" not in running:
            self._start_kubelet(node)

    def stop_node(self, name: str) -> None:
        """Stops a node's kubelet and containerd and kills its pods, as if the machine died."""
        node = self._node(name)
        recorded = self._recorded()
        for process in recorded:
            if process.name.endswith(f" {node.name}"):
                processes.stop(process, timeout=0.5)
        processes.kill_cgroup_processes(prefixes=(node.name, node.pod_cgroup))
        mounts.unmount_under((node.run,))
        remaining = [p for p in recorded if not p.name.endswith(f" {node.name}")]
        processes.save(self.lay.processes, remaining)

    def restart_component(self, name: str, progress: Progress) -> None:
        """Stops one control-plane process and starts it again (e.g. kube-apiserver), with the
        arguments it was started with (its settings, CHAOS_DRILL_* among them) but only ever
        its own binary, whatever the record says."""
        recorded = self._recorded()
        process = next((p for p in recorded if p.name == name), None)
        if process is None or name not in RESTARTABLE:
            raise ClusterError(f"no component {name!r} is running: see 'chaos-drill cluster "
                               "status'")
        binary = str(L.etcd_binary() if name == "etcd" else L.bin_dir() / name)
        if process.command[:1] != (binary,):
            program = process.command[0] if process.command else "no program"
            raise ClusterError(f"{self.lay.processes} records {name} as {program}, not "
                               f"{binary}: run 'sudo chaos-drill cluster down', then up")
        processes.stop(process)
        self.started = [p for p in recorded if p.name != name]
        cgroup = {"etcd": "etcd", "kube-proxy": "kube-proxy"}.get(name, "control-plane")
        self._start(name, list(process.command), cgroup)
        if name == "kube-apiserver":
            self._wait("kube-apiserver ready", lambda: self._api_ok("/readyz"), progress)

    def _recorded(self) -> list[Process]:
        """The recorded processes, or a ClusterError naming the fix when the record is
        unreadable (then nothing can be stopped or started by it)."""
        found = processes.read(self.lay.processes)
        if isinstance(found, Malformed):
            raise ClusterError(found.warning("run 'sudo chaos-drill cluster down', then up"))
        return found

    def _node(self, name: str) -> Node:
        for node in self.lay.nodes:
            if node.name == name:
                return node
        raise ClusterError(f"no node {name!r} in the local cluster: nodes are "
                           + ", ".join(n.name for n in self.lay.nodes))

    def _start(self, name: str, command: list[str], cgroup: str) -> None:
        log = self.lay.logs / f"{name.replace(' ', '-')}.log"
        self.started.append(processes.start(name, command, log, cgroup))
        processes.save(self.lay.processes, self.started)

    def _wait(self, what: str, ready: Callable[[], bool], progress: Progress,
              why: Callable[[], str] | None = None) -> None:
        progress(f"waiting for {what}")
        deadline = time.monotonic() + UP_TIMEOUT
        while time.monotonic() < deadline:
            for process in self.started:
                processes.check_alive(process)
            if ready():
                return
            time.sleep(0.2)
        detail = f" ({why()})" if why else ""
        raise ClusterError(f"timed out after {UP_TIMEOUT:.0f}s waiting for {what}{detail}: "
                           f"see the logs in {self.lay.logs}")

    def _api_ok(self, path: str) -> bool:
        return _https_ok(self.lay, path)

    def _nodes_ready(self) -> bool:
        try:
            with kube.api_client(self.lay.kubeconfig) as api:
                nodes = client.CoreV1Api(api).list_node().items
        except Exception:
            return False
        ready = [n for n in nodes if kube.node_ready(n)]
        return len(ready) == len(self.lay.nodes)

    def healthy(self) -> bool:
        recorded = processes.load(self.lay.processes)
        if not recorded or not all(processes.is_alive(p) for p in recorded):
            return False
        return self._api_ok("/readyz") and self._nodes_ready()

    # -- down -------------------------------------------------------------------------------

    def down(self, progress: Progress) -> None:
        """Stops every process and removes every mount, interface, route, rule and cgroup."""
        checks.preflight_root()
        with host_lock.holding(self.lay.lock, progress):
            self._down(progress)

    def _down(self, progress: Progress) -> None:
        self._stop_processes(progress)
        self._cleanup_proxy_rules()
        mounts.unmount_under((self.lay.run, self.lay.state))
        network.remove_kubernetes_chains()
        network.tear_down(self.lay.state, progress)
        kubelet_dir.remove_made(self.lay.state)
        processes.remove_cgroups()
        shutil.rmtree(self.lay.run, ignore_errors=True)
        for child in self.lay.state.glob("*") if self.lay.state.exists() else []:
            if child.name != "logs":
                _remove(child)
        self.started = []
        left = self.leftovers()
        if left:
            raise ClusterError("cluster down left " + "; ".join(left[:5]) + ": run "
                               "'chaos-drill cluster down' again and report it if it stays")
        progress("local cluster down")

    def _stop_processes(self, progress: Progress) -> None:
        """Every process of the cluster: by the record, or when it cannot be read, by our
        cgroups, saying so in one line."""
        recorded = processes.read(self.lay.processes)
        if isinstance(recorded, Malformed):
            progress(recorded.warning("stopping what runs in chaos-drill's cgroups instead"))
            self._stop_by_cgroup(progress)
        else:
            self._stop_recorded(recorded, progress)

    def _stop_recorded(self, recorded: Sequence[Process], progress: Progress) -> None:
        """Each recorded process by its PID, users before what they use; pods with their
        runtime; then whatever our cgroups still hold (started but not yet recorded)."""
        order = ("kube-proxy", "kubelet", "containerd", "kube-scheduler",
                 "kube-controller-manager", "kube-apiserver", "etcd")
        for prefix in order:
            for process in recorded:
                if process.name.split(" ")[0] == prefix:
                    progress(f"stopping {process.name} (pid {process.pid})")
                    processes.stop(process)
            if prefix == "containerd":
                processes.kill_cgroup_processes()
        processes.kill_cgroup_processes()

    def _stop_by_cgroup(self, progress: Progress) -> None:
        """Without a record: the same order, by the cgroups each component was started in
        (every process in them is ours; none is ever looked for by name)."""
        nodes = self.lay.nodes
        order = (("kube-proxy",), tuple(f"{n.name}/kubelet" for n in nodes),
                 tuple(f"{n.name}/runtime" for n in nodes), ("control-plane",), ("etcd",))
        for cgroups in order:
            found = processes.stop_cgroups(cgroups)
            if found:
                progress(f"stopped pid {', '.join(map(str, sorted(found)))} in cgroup "
                         + ", ".join(f"{processes.CGROUP_PARENT}/{c}" for c in cgroups))
            if cgroups[0].endswith("/runtime"):
                processes.kill_cgroup_processes()

    def leftovers(self) -> list[str]:
        """What of the cluster still exists: processes, mounts, interfaces, routes, rules."""
        left = [f"process {p.name} (pid {p.pid})" for p in processes.load(self.lay.processes)
                if processes.is_alive(p)]
        left += [f"process pid {pid} in our cgroups" for pid in processes.cgroup_pids()]
        left += [f"mount {m}" for m in mounts.mounts_under((self.lay.run, self.lay.state))]
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                               timeout=30).stdout
        left += [f"interface {line.split(':')[1].strip()}" for line in links.splitlines()
                 if network.BRIDGE in line or ("veth" in line and " master " not in line)]
        routes = subprocess.run(["ip", "route"], capture_output=True, text=True,
                                timeout=30).stdout
        left += [f"route {r}" for r in routes.splitlines()
                 if r.startswith(("10.244.", "10.96.")) or network.BRIDGE in r]
        left += network.leftover_rules()
        return left

    def _cleanup_proxy_rules(self) -> None:
        proxy = L.bin_dir() / "kube-proxy"
        if proxy.exists():
            subprocess.run([str(proxy), "--cleanup", "--v=0"], capture_output=True, timeout=60)

    # -- status and runtime access ---------------------------------------------------------------

    def status(self) -> ClusterStatus:
        recorded = processes.read(self.lay.processes)
        if isinstance(recorded, Malformed):
            unreadable = ComponentStatus(self.lay.processes.name, False, recorded.warning(
                "run 'sudo chaos-drill cluster down', then up"))
            return ClusterStatus("local", False, None, (unreadable,))
        parts = tuple(
            ComponentStatus(p.name, processes.is_alive(p),
                            f"pid {p.pid}" if processes.is_alive(p) else
                            f"exited; last log lines:\n{processes.tail(p.log)}")
            for p in recorded
        )
        up = bool(recorded) and all(c.running for c in parts) and self._api_ok("/readyz")
        return ClusterStatus("local", up, self.lay.kubeconfig if up else None, parts)

    def load_images(self, archives: Sequence[Path], progress: Progress) -> None:
        for node in self.lay.nodes:
            runtime.import_missing(node.socket, node.name, archives, progress)

    def trust_registry(self, host: str, ca: Path, progress: Progress) -> None:
        folder = registry_hosts.trust_local(self.lay, host, ca)
        progress(f"the nodes pull from {host} trusting {ca} ({folder / 'hosts.toml'})")

    def container_kill(self, node: str, container_id: str) -> None:
        runtime.kill_container(self._node(node).socket, container_id)

    def pod_netns_run(self, node: str, pod_uid: str, command: Sequence[str]) -> str:
        return node_access.netns_run(node_access.on_host(node, self._node(node).socket), pod_uid,
                                     command)

    def start_memory_hog(self, node: str, container_id: str) -> MemoryHog:
        return self.hogs.start(node_access.on_host(node, self._node(node).socket), container_id)

    def stop_memory_hog(self, hog: MemoryHog) -> bool:
        return self.hogs.stop(node_access.on_host(hog.node, self._node(hog.node).socket), hog)

    def oom_kills(self, hog: MemoryHog) -> int | None:
        return self.hogs.oom_kills(node_access.on_host(hog.node, self._node(hog.node).socket), hog)


def _proxy_synced() -> bool:
    return _http_ok(f"http://{L.LOOPBACK}:{L.PROXY_HEALTHZ_PORT}/healthz")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _https_ok(lay: Layout, path: str) -> bool:
    if not (lay.pki / "admin.crt").exists():
        return False
    return _http_ok(f"{lay.api_url}{path}", _client_context(lay.pki, "admin"))


def _client_context(directory: Path, cert: str) -> ssl.SSLContext:
    """TLS trusting DIRECTORY's CA, presenting its client cert CERT."""
    context = ssl.create_default_context(cafile=str(directory / "ca.crt"))
    context.load_cert_chain(str(directory / f"{cert}.crt"), str(directory / f"{cert}.key"))
    return context
