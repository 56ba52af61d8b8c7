"""The Docker engine under the kind provider: starts Debian's dockerd when none runs (recorded by
PID, with the runc wrapper this host needs), and on stop puts the host back: Docker's iptables
chains and rules, and when chaos-drill started the engine, the FORWARD policy and the sysctls
Docker and the nodes' systemd changed."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chaos import statefile
from chaos.cluster import mounts, processes, sysctls
from chaos.cluster.base import Progress
from chaos.cluster.network import KUBELET_SYSCTLS
from chaos.errors import ClusterError, SetupError
from chaos.resources import shipped
from chaos.statefile import Malformed

DOCKER_TIMEOUT = 600
"""Seconds a docker call may take (loading the node image is the slowest)."""
RUNC_WRAPPER = shipped("cluster", "kind", "runc-wrapper")
RUNTIME = "chaosdrill-runc"
EXEC_ROOT = Path("/run/docker")
"""dockerd's runtime state (sockets, netns); removed after the dockerd we started stops."""
VOLUMES = Path("/var/lib/docker/volumes")
CONTAINERS = Path("/var/lib/docker/containers")
PIDFILES = (Path("/var/run/docker.pid"), EXEC_ROOT / "containerd" / "containerd.pid")
"""dockerd's and its containerd's: with either naming a PID /proc lists, dockerd will not start
(or waits on a containerd that is gone)."""
HOST_SYSCTLS = (
    "fs/file-max", "fs/nr_open", "fs/inotify/max_user_watches", "fs/inotify/max_user_instances",
    "kernel/pid_max", *KUBELET_SYSCTLS,
    "net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding", "net/ipv6/conf/default/forwarding",
    "net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
    "net/netfilter/nf_conntrack_max",
)
"""Host-wide settings that dockerd, kubelet or a node's systemd may write (they are not
namespaced): saved before dockerd starts, restored after it stops."""
POLICY_TOOLS = ("iptables", "ip6tables")
FORWARD_POLICIES = ("ACCEPT", "DROP")
ENGINE = "engine"
ENGINE_STARTED = "started by chaos-drill"
"""host.json's ENGINE entry once chaos-drill starts dockerd: only then are the sysctls and
FORWARD policies it saved put back (another engine's settings are its owner's)."""
LIB_MODULES = "lib-modules"
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
        """Records whether /lib/modules existed (once), then starts dockerd unless an engine
        answers; the host's settings are saved, with that fact, just before it starts."""
        self.state.mkdir(parents=True, exist_ok=True)
        saved = self._read_saved(progress, "saving the host's settings of now instead")
        if LIB_MODULES not in saved:
            saved[LIB_MODULES] = "present" if Path("/lib/modules").exists() else "absent"
            statefile.write_json(self.saved, saved)
        create_lib_modules()
        if engine_up():
            owner = "ours" if self.started() else "not started by chaos-drill"
            progress(f"using the running Docker engine ({owner})")
            return
        # values saved by an earlier up that did not come down are older: they stay
        statefile.write_json(self.saved, {**save_host(), **saved, ENGINE: ENGINE_STARTED})
        for pidfile in PIDFILES:
            clear_stale_pidfile(pidfile)
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
        recorded = processes.read(self.record)
        if isinstance(recorded, Malformed):
            progress(recorded.warning("a dockerd chaos-drill started is left running, if one "
                                      "runs ('docker info' tells)"))
            self.record.unlink()
        process = recorded[0] if isinstance(recorded, list) and recorded else None
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
        saved = self._read_saved(progress, "the host settings it held are left as they are")
        if saved:
            ours = saved.get(ENGINE) == ENGINE_STARTED or process is not None
            changed = restore_host(saved, ours, self.saved, progress)
            if changed:
                progress("restored host settings: " + ", ".join(changed))
        self.saved.unlink(missing_ok=True)

    def _read_saved(self, progress: Progress, otherwise: str) -> dict[str, Any]:
        """host.json's entries; none when it is missing, or unreadable (said in one line)."""
        found = statefile.read_json(self.saved, statefile.json_object)
        if isinstance(found, Malformed):
            progress(found.warning(otherwise))
        return found if isinstance(found, dict) else {}


def clear_stale_pidfile(path: Path) -> None:
    """Removes PATH when the PID it names is gone or a zombie (killed, not yet reaped by its
    parent), which /proc still lists."""
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return
    if processes.start_time_of(pid) is None:
        path.unlink(missing_ok=True)


def child_pids(parent: int) -> list[int]:
    """PIDs whose parent is PARENT (dockerd's own containerd)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = processes.stat_fields(int(stat.parent.name))
        if fields is not None and int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def save_host() -> dict[str, str]:
    """The host settings dockerd and the nodes may change: sysctls and FORWARD policies."""
    saved = {f"sysctl:{key}": value for key, value in sysctls.current(HOST_SYSCTLS).items()}
    for tool in POLICY_TOOLS:
        saved[f"policy:{tool}"] = forward_policy(tool)
    return saved


def restore_host(saved: Mapping[str, object], ours: bool, source: Path,
                 say: Progress) -> list[str]:
    """Puts back every saved setting that differs now and may be put back: /lib/modules always
    (chaos-drill made it), sysctls and FORWARD policies only when OURS (chaos-drill started the
    engine that changed them), and only known names and values: anything else is skipped with
    one line. Returns what it changed."""
    sysctl_values: dict[str, object] = {}
    policies: dict[str, object] = {}
    for key, value in saved.items():
        kind, _, name = key.partition(":")
        if kind == "sysctl" and name:
            sysctl_values[name] = value
        elif kind == "policy" and name:
            policies[name] = value
        elif key not in (ENGINE, LIB_MODULES):
            say(f"not restoring {key!r} from {source}: not a setting chaos-drill changes")
    changed = []
    if ours:
        changed += sysctls.restore(sysctl_values, HOST_SYSCTLS, source, say)
        changed += _restore_policies(policies, source, say)
    elif sysctl_values or policies:
        say("the host's sysctls and FORWARD policies are left as they are: the Docker engine "
            "was not started by chaos-drill")
    return changed + _restore_lib_modules(saved.get(LIB_MODULES), source, say)


def policy_skip_reason(tool: str, policy: object) -> str | None:
    """Why a saved FORWARD policy must not be set back, or None when it may."""
    if tool not in POLICY_TOOLS:
        return f"not one of {', '.join(POLICY_TOOLS)}"
    if policy not in FORWARD_POLICIES:
        return f"{policy!r} is not a FORWARD policy"
    return None


def _restore_policies(policies: Mapping[str, object], source: Path, say: Progress) -> list[str]:
    changed = []
    for tool, policy in policies.items():
        reason = policy_skip_reason(tool, policy)
        if reason is not None:
            say(f"not restoring 'policy:{tool}' from {source}: {reason}")
        elif forward_policy(tool) != policy:
            subprocess.run([tool, "-w", "-P", "FORWARD", str(policy)], check=True, timeout=30)
            changed.append(f"{tool} FORWARD policy {policy}")
    return changed


def _restore_lib_modules(state: object, source: Path, say: Progress) -> list[str]:
    if state not in (None, "present", "absent"):
        say(f"not restoring {LIB_MODULES!r} from {source}: {state!r} is not present or absent")
    elif state == "absent" and Path("/lib/modules").is_dir():
        try:
            Path("/lib/modules").rmdir()
            return ["/lib/modules removed"]
        except OSError:
            pass
    return []


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


def stored_containers(root: Path = CONTAINERS) -> list[dict[str, Any]]:
    """What an engine keeps on disk of each container (its config.v2.json), read while no
    engine runs; an unreadable one is skipped."""
    found = []
    for config in sorted(root.glob("*/config.v2.json")):
        try:
            data = json.loads(config.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            found.append(data)
    return found


def stored_with_label(label: str, value: str, root: Path = CONTAINERS) -> list[str]:
    """The names of the containers on disk whose LABEL is VALUE."""
    return [str(c.get("Name", "?")).lstrip("/") for c in stored_containers(root)
            if ((c.get("Config") or {}).get("Labels") or {}).get(label) == value]


def leftover_volumes(root: Path = VOLUMES, containers: Path = CONTAINERS) -> list[str]:
    """Docker volumes on disk that no container on disk mounts (kind gives each node an
    anonymous one for /var, gone with the node; another's stopped container keeps its own)."""
    if not root.is_dir():
        return []
    used = {mount.get("Name") for c in stored_containers(containers)
            for mount in (c.get("MountPoints") or {}).values() if isinstance(mount, dict)}
    return [p.name for p in sorted(root.iterdir()) if p.is_dir() and p.name not in used]
