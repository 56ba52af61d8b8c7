"""How the faults that act below the API run commands on a node, for the local and kind providers
alike: on the host for a local node (its processes are the host's), through `docker exec NODE`
for a kind node; the node's containerd through its `ctr`; and a command in a pod's network
namespace (nsenter on the PID of one of the pod's processes, as that node's /proc numbers it)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chaos.cluster import dockerd
from chaos.errors import FaultError

NODE_TIMEOUT = 30.0
"""Seconds a command on the node may take."""
POD_UID_LABEL = "io.kubernetes.pod.uid"
"""The label the kubelet puts on every container of a pod, its sandbox's too."""


@dataclass(frozen=True)
class NodeAccess:
    """How to run commands on one node: PREFIX before each (nothing for the local cluster,
    whose nodes' processes are the host's; `docker exec NODE` for kind) and the `ctr` call
    that reaches that node's containerd."""

    node: str
    prefix: tuple[str, ...]
    ctr: tuple[str, ...]

    def call(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """ARGV run on the node, whatever it exits with; FaultError when it times out."""
        try:
            return subprocess.run([*self.prefix, *argv], capture_output=True, text=True,
                                  timeout=NODE_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise FaultError(f"{argv[0]} on node {self.node} timed out after "
                             f"{NODE_TIMEOUT:.0f}s") from None

    def run(self, *argv: str) -> str:
        """ARGV's output; FaultError naming it and its last line of stderr when it fails."""
        done = self.call(*argv)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise FaultError(f"{' '.join(argv[:3])} on node {self.node} failed: {last}")
        return done.stdout


def on_host(node: str, socket: Path) -> NodeAccess:
    """A node of the local cluster: its processes are the host's, its containerd at SOCKET."""
    return NodeAccess(node, (), ("ctr", "--address", str(socket), "--namespace", "k8s.io"))


def in_node_container(node: str) -> NodeAccess:
    """A kind node: commands run in its container, where its containerd and /proc are."""
    return NodeAccess(node, (dockerd.docker(), "exec", node), ("ctr", "--namespace", "k8s.io"))


def running_tasks(tasks: str) -> dict[str, int]:
    """Each RUNNING task's container ID and main PID, from `ctr tasks ls` output (TASK PID
    STATUS, a header first)."""
    found = {}
    for line in tasks.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "RUNNING" and fields[1].isdigit():
            found[fields[0]] = int(fields[1])
    return found


def pod_containers_command(access: NodeAccess, pod_uid: str) -> list[str]:
    """The `ctr` call listing the IDs of the pod POD_UID's containers, its sandbox's too."""
    return [*access.ctr, "containers", "ls", "-q", f'labels."{POD_UID_LABEL}"=={pod_uid}']


def pick_pod_pid(container_ids: Sequence[str], tasks: str, pod_uid: str, node: str) -> int:
    """The PID of the first running task of CONTAINER_IDS in `ctr tasks ls` output TASKS (the
    sandbox's when the pod's containers are between restarts: all share its network namespace);
    FaultError when none runs."""
    running = running_tasks(tasks)
    for container_id in container_ids:
        if container_id in running:
            return running[container_id]
    raise FaultError(f"pod {pod_uid} has no running process on node {node}: was it deleted?")


def pod_pid(access: NodeAccess, pod_uid: str) -> int:
    """The PID, as the node's /proc numbers it, of a running process of the pod POD_UID."""
    ids = access.run(*pod_containers_command(access, pod_uid)).split()
    return pick_pod_pid(ids, access.run(*access.ctr, "tasks", "ls"), pod_uid, access.node)


def netns_command(pid: int, command: Sequence[str]) -> list[str]:
    """COMMAND in the network namespace of process PID, run on its node."""
    return ["nsenter", "-t", str(pid), "-n", *command]


def netns_run(access: NodeAccess, pod_uid: str, command: Sequence[str]) -> str:
    """Runs COMMAND (iptables, ip) in the network namespace of the pod POD_UID on ACCESS's
    node; its output. FaultError when it fails or the pod has no running process there."""
    done = access.call(*netns_command(pod_pid(access, pod_uid), command))
    if done.returncode != 0:
        said = "; ".join(line for line in done.stderr.strip().splitlines() if line.strip())
        raise FaultError(f"{named(command)} in the network namespace of pod {pod_uid} on node "
                         f"{access.node} failed: {said or 'no output'}")
    return done.stdout


def named(command: Sequence[str]) -> str:
    """COMMAND as an error names it, on one line: a script by its program alone (the script
    names the step that failed on stderr)."""
    if any("\n" in word for word in command):
        return f"a {command[0]} script"
    return " ".join(command)
