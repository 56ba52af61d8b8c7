"""The Docker engine under the kind provider: starts Debian's dockerd when none runs (recorded by
PID, with the runc wrapper this host needs), and on stop puts the host back: Docker's iptables
chains and rules, the FORWARD policy, the sysctls Docker and the nodes' systemd changed."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from chaos.cluster import mounts, processes
from chaos.cluster.base import Progress
from chaos.cluster.network import KUBELET_SYSCTLS
from chaos.errors import ClusterError, SetupError
from chaos.resources import shipped

DOCKER_TIMEOUT = 600
"""Seconds a docker call may take (loading the node image is the slowest)."""
RUNC_WRAPPER = shipped("cluster", "kind", "runc-wrapper")
RUNTIME = "chaosdrill-runc"
EXEC_ROOT = Path("/run/docker")
"""dockerd's runtime state (sockets, netns); removed after the dockerd we started stops."""
VOLUMES = Path("/var/lib/docker/volumes")
HOST_SYSCTLS = (
    "fs/file-max", "fs/nr_open", "fs/inotify/max_user_watches", "fs/inotify/max_user_instances",
    "kernel/pid_max", *KUBELET_SYSCTLS,
    "net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding", "net/ipv6/conf/default/forwarding",
    "net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
    "net/netfilter/nf_conntrack_max",
)
"""Host-wide settings that dockerd, kubelet or a node's systemd may write (they are not
namespaced): saved before dockerd starts, restored after it stops."""
DOCKER_CHAIN_PREFIX = "DOCKER"


def docker() -> str:
    """Debian's client matches Debian's daemon; a newer one in /usr/local/bin may not."""
    return "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"


def run(*args: str, timeout: float = DOCKER_TIMEOUT, stdin: bytes | None = None,
        check: bool = True) -> str:
    """Runs `docker ARGS`; a ClusterError with docker's last line when it fails."""
    if shutil.which(docker()) is None:
        raise SetupError("docker not found: run 'make kind' (installs Debian's docker.io)")
    try:
        result = subprocess.run([docker(), *args], capture_output=True, timeout=timeout,
                                input=stdin)
    except subprocess.TimeoutExpired:
        raise ClusterError(f"docker {args[0]} timed out after {timeout:.0f}s") from None
    if check and result.returncode != 0:
        last = (result.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise ClusterError(f"docker {' '.join(args[:2])} failed: {last}")
    return result.stdout.decode(errors="replace")


def check_installed() -> str:
    """dockerd's path, or a SetupError naming the fix (and docker's client too)."""
    dockerd = shutil.which("dockerd")
    if dockerd is None or shutil.which(docker()) is None:
        raise SetupError("no Docker engine is running and dockerd is not installed: run "
                         "'make kind' (installs Debian's docker.io)")
    return dockerd


def engine_up() -> bool:
    if shutil.which(docker()) is None:
        return False
    result = subprocess.run([docker(), "info", "--format", "{{.ServerVersion}}"],
                            capture_output=True, timeout=30)
    return result.returncode == 0


class Engine:
    """The dockerd this provider started, if any; STATE keeps its record and the host's
    settings from before it."""

    def __init__(self, state: Path) -> None:
        self.state = state

    @property
    def record(self) -> Path:
        return self.state / "dockerd.json"

    @property
    def saved(self) -> Path:
        return self.state / "host.json"

    def started(self) -> processes.Process | None:
        recorded = processes.load(self.record)
        return recorded[0] if recorded else None

    def ensure(self, progress: Progress) -> None:
        """Saves the host's settings (once), then starts dockerd unless an engine answers."""
        self.state.mkdir(parents=True, exist_ok=True)
        if not self.saved.exists():
            self.saved.write_text(json.dumps(save_host()))
        create_lib_modules()
        if engine_up():
            owner = "ours" if self.started() else "not started by chaos-drill"
            progress(f"using the running Docker engine ({owner})")
            return
        command = [check_installed(), "--add-runtime", f"{RUNTIME}={RUNC_WRAPPER}",
                   "--default-runtime", RUNTIME, "--bridge=none"]
        process = processes.start("dockerd", command, self.state / "logs" / "dockerd.log")
        processes.save(self.record, [process])
        progress(f"started dockerd (pid {process.pid}, log {process.log})")
        deadline = time.monotonic() + 60
        while not engine_up():
            if not processes.is_alive(process):
                raise ClusterError(f"dockerd exited: see {process.log}; last lines: "
                                   + processes.tail(process.log, 2).replace("\n", " | "))
            if time.monotonic() > deadline:
                raise ClusterError(f"dockerd did not answer within 60s: see {process.log}")
            time.sleep(0.2)

    def stop(self, progress: Progress) -> None:
        """Stops the dockerd we started (by its PID) and puts the host back as it was."""
        process = self.started()
        if process is not None:
            children = child_pids(process.pid)
            progress(f"stopping dockerd (pid {process.pid})")
            processes.stop(process, timeout=30)
            for pid in children:
                child = processes.Process("dockerd child", pid,
                                          processes.start_time_of(pid) or -1, "", ())
                processes.stop(child, timeout=10)
            self.record.unlink()
            remove_docker_rules()
            if EXEC_ROOT.exists() and not mounts.mounts_under((EXEC_ROOT,)):
                shutil.rmtree(EXEC_ROOT, ignore_errors=True)
        if self.saved.exists():
            changed = restore_host(json.loads(self.saved.read_text()))
            if changed:
                progress("restored host settings: " + ", ".join(changed))
            self.saved.unlink()


def child_pids(parent: int) -> list[int]:
    """PIDs whose parent is PARENT (dockerd's own containerd)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def save_host() -> dict[str, str]:
    """The host settings dockerd and the nodes may change: sysctls, FORWARD policies, whether
    /lib/modules existed."""
    saved = {f"sysctl:{key}": Path("/proc/sys", key).read_text().strip()
             for key in HOST_SYSCTLS if Path("/proc/sys", key).exists()}
    for tool in ("iptables", "ip6tables"):
        saved[f"policy:{tool}"] = forward_policy(tool)
    saved["lib-modules"] = "present" if Path("/lib/modules").exists() else "absent"
    return saved


def restore_host(saved: dict[str, str]) -> list[str]:
    """Puts back every saved setting that differs now; returns what it changed."""
    changed = []
    for key, value in saved.items():
        kind, _, name = key.partition(":")
        if kind == "sysctl":
            path = Path("/proc/sys", name)
            if path.exists() and path.read_text().strip() != value:
                path.write_text(value)
                changed.append(name.replace("/", "."))
        elif kind == "policy" and forward_policy(name) != value:
            subprocess.run([name, "-w", "-P", "FORWARD", value], check=True, timeout=30)
            changed.append(f"{name} FORWARD policy {value}")
    if saved.get("lib-modules") == "absent" and Path("/lib/modules").is_dir():
        try:
            Path("/lib/modules").rmdir()
            changed.append("/lib/modules removed")
        except OSError:
            pass
    return changed


def create_lib_modules() -> None:
    """kind mounts /lib/modules into each node; this host has none."""
    Path("/lib/modules").mkdir(exist_ok=True)


def forward_policy(tool: str) -> str:
    listing = subprocess.run([tool, "-w", "-S", "FORWARD"], capture_output=True, text=True,
                             timeout=30).stdout.splitlines()
    return next((line.split()[2] for line in listing if line.startswith("-P FORWARD")), "ACCEPT")


def docker_rules(listing: Sequence[str]) -> tuple[list[list[str]], list[str]]:
    """From `iptables -t TABLE -S` output: the rules to delete (those jumping to a DOCKER
    chain, outside one) and the DOCKER chains to flush and delete."""
    chains = [line.split()[1] for line in listing
              if line.startswith(f"-N {DOCKER_CHAIN_PREFIX}")]
    rules = []
    for line in listing:
        parts = line.split()
        if parts[:1] == ["-A"] and parts[1] not in chains and "-j" in parts:
            if parts[parts.index("-j") + 1] in chains:
                rules.append(parts[1:])
    return rules, chains


def remove_docker_rules() -> None:
    """Deletes Docker's chains and the rules jumping to them, in every table Docker uses."""
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat"):
            listing = subprocess.run([tool, "-w", "-t", table, "-S"], capture_output=True,
                                     text=True, timeout=30).stdout.splitlines()
            rules, chains = docker_rules(listing)
            for rule in rules:
                subprocess.run([tool, "-w", "-t", table, "-D", *rule], capture_output=True,
                               timeout=30)
            for flag in ("-F", "-X"):
                for chain in chains:
                    subprocess.run([tool, "-w", "-t", table, flag, chain], capture_output=True,
                                   timeout=30)


def leftover_rules(marks: Sequence[str]) -> list[str]:
    """iptables and ip6tables lines naming any of MARKS."""
    found = []
    for tool in ("iptables", "ip6tables"):
        text = subprocess.run([f"{tool}-save"], capture_output=True, text=True,
                              timeout=30).stdout
        found += [f"{tool}: {line}" for line in text.splitlines()
                  if any(mark in line for mark in marks)]
    return found


def leftover_volumes() -> list[str]:
    """Docker volumes on disk (kind gives each node an anonymous one for /var)."""
    if not VOLUMES.is_dir():
        return []
    return [p.name for p in VOLUMES.iterdir() if p.is_dir()]
