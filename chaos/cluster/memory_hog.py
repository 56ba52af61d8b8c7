"""oom_kill's memory hog: a root process on a node, in a container's memory cgroup and PID
namespace, that allocates until the kernel's OOM killer kills the container's main process.

Needs the cgroup v1 memory controller, where the OOM killer kills one process of the cgroup,
not the whole container. `nsenter --pid` puts the hog in the container's PID namespace, so it
dies when the main process (that namespace's init) does; it raises the main process's
oom_score_adj to 1000, moves itself into the container's memory cgroup and fills the limit in
pieces (`tail` buffering /dev/zero), none holding more than a sixteenth of it, so the kernel
picks the main process, not a piece. The runtime sees the cgroup's OOM event and the kubelet
reports the container OOMKilled. Before allocating, the hog prints its
PID and start time as the node's /proc shows them: together they name that one process, so it
can be killed by PID, and no other, should it outlive its container.
"""

from __future__ import annotations

import selectors
import shlex
import subprocess
import time

from chaos.cluster.base import MemoryHog
from chaos.cluster.node_access import NodeAccess, running_tasks
from chaos.errors import FaultError

UNLIMITED_BYTES = 1 << 62
"""memory.limit_in_bytes of a cgroup without a limit is just under 2**63."""
START_TIMEOUT = 10.0
"""Seconds the hog has to report its PID."""
STOP_TIMEOUT = 10.0
"""Seconds a SIGKILLed hog has to go."""
SHARE = 16
PIECES = 20
"""The hog asks for PIECES/SHARE of the limit in pieces, none holding more than 1/SHARE: the
OOM killer scores a process by its resident pages plus oom_score_adj thousandths of the limit,
so at 1000 the main process outscores any piece by far (one process holding the whole limit
could outscore it: its shared libraries count too, and the thousandths are rounded down)."""
HOLD_SECONDS = 3600
"""How long a piece holds its share at most, should nothing kill it."""


def task_pid(tasks: str, container_id: str) -> int:
    """The main PID of CONTAINER_ID in `ctr tasks ls` output (TASK PID STATUS)."""
    running = running_tasks(tasks)
    if container_id in running:
        return running[container_id]
    raise FaultError(f"container {container_id[:12]} has no running task: is the pod Running?")


def memory_cgroup(proc_cgroup: str) -> str:
    """The memory controller's cgroup in /proc/PID/cgroup text ('N:memory:/path', cgroup v1)."""
    for line in proc_cgroup.splitlines():
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if "memory" in controllers.split(","):
            return path
    raise FaultError("the node has no cgroup v1 memory controller: oom_kill needs one (on "
                     "cgroup v2, use container_kill)")


def check_limit(text: str, container: str) -> int:
    """The cgroup's memory.limit_in_bytes; FaultError when it has none (the hog would fill
    the node)."""
    limit = int(text.strip())
    if limit >= UNLIMITED_BYTES:
        raise FaultError(f"container {container} has no memory limit in its cgroup: set "
                         "resources.limits.memory, or use container_kill")
    return limit


def hog_command(main_pid: int, cgroup_dir: str, limit_bytes: int) -> list[str]:
    """The hog: it raises the main process's oom_score_adj to 1000, joins the cgroup, prints
    'PID START' (cut's parent is this shell, and the node's /proc gives the node's numbers),
    then starts PIECES pieces that each buffer 1/SHARE of the limit in a `tail` and hold it
    (`sleep` keeps the pipe open). A step that fails stops it before it allocates anything,
    with a line on stderr. `setsid` makes it the leader of its own process group, its pieces
    the members, so stopping it stops them all."""
    procs = shlex.quote(f"{cgroup_dir}/cgroup.procs")
    piece = max(limit_bytes // SHARE, 4096)
    script = "\n".join((
        f"echo 1000 > /proc/{main_pid}/oom_score_adj || exit 1",
        f"echo 0 > {procs} || exit 1",
        "pid=$(cut -d ' ' -f 4 /proc/self/stat)",
        "echo \"$pid $(cut -d ' ' -f 22 /proc/$pid/stat)\"",
        "exec > /dev/null 2>&1",
        f"for i in $(seq {PIECES}); do",
        f"  {{ head -c {piece} /dev/zero; exec sleep {HOLD_SECONDS}; }} | tail &",
        "done",
        "wait"))
    return ["nsenter", "--target", str(main_pid), "--pid", "--", "setsid", "sh", "-c", script]


def oom_kill_count(log: str, container_id: str) -> int:
    """The kernel's OOM kills of processes in container CONTAINER_ID's memory cgroup, in LOG
    (`dmesg`): one `oom-kill:` line each, whose task_memcg names the container's ID (its last
    part: the ID itself, or cri-containerd-ID.scope under systemd)."""
    return sum(1 for line in log.splitlines() if "oom-kill:" in line
               and any(field.startswith("task_memcg=") and container_id in field.rsplit("/")[-1]
                       for field in line.split("oom-kill:", 1)[1].split(",")))


def parse_report(line: str) -> tuple[int, int] | None:
    """(PID, start time) from the hog's first line; None when it printed something else."""
    fields = line.split()
    if len(fields) != 2 or not all(field.isdigit() for field in fields):
        return None
    return int(fields[0]), int(fields[1])


def parse_stat(text: str) -> tuple[str, int] | None:
    """(state, start time) from /proc/PID/stat text; None for no process."""
    if ")" not in text:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[19])


class Hogs:
    """Starts hogs and stops them; keeps each one's launcher (nsenter, or `docker exec`) to
    reap it when the hog is gone."""

    def __init__(self) -> None:
        self.launchers: dict[tuple[str, int], subprocess.Popen[str]] = {}

    def start(self, access: NodeAccess, container_id: str) -> MemoryHog:
        main = task_pid(access.run(*access.ctr, "tasks", "ls"), container_id)
        cgroup = memory_cgroup(access.run("cat", f"/proc/{main}/cgroup"))
        directory = f"/sys/fs/cgroup/memory{cgroup}"
        limit = check_limit(access.run("cat", f"{directory}/memory.limit_in_bytes"),
                            container_id[:12])
        launcher = subprocess.Popen([*access.prefix, *hog_command(main, directory, limit)],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        line = _first_line(launcher, START_TIMEOUT)
        reported = parse_report(line)
        if reported is None:
            launcher.kill()
            _, err = launcher.communicate(timeout=STOP_TIMEOUT)
            raise FaultError(f"could not start the memory hog in container {container_id[:12]} "
                             f"on node {access.node}: {(err or line).strip() or 'no output'}")
        pid, start = reported
        self.launchers[(access.node, pid)] = launcher
        return MemoryHog(access.node, pid, start, container_id, limit)

    def oom_kills(self, access: NodeAccess, hog: MemoryHog) -> int | None:
        """The OOM kills in HOG's container, by the kernel log as the node reads it (the kind
        nodes share this machine's kernel); None when it cannot be read. Its memory cgroup's
        own count goes with the container, and cgroup v1 counts no kill in the pod's."""
        log = access.run("sh", "-c", "dmesg 2>/dev/null || echo unreadable")
        if log.strip() == "unreadable":
            return None
        return oom_kill_count(log, hog.container_id)

    def alive(self, access: NodeAccess, hog: MemoryHog) -> bool:
        """That very process runs (same PID and start time, not a zombie)."""
        found = parse_stat(access.run("sh", "-c", f"cat /proc/{hog.pid}/stat 2>/dev/null || :"))
        return found is not None and found[1] == hog.start and found[0] != "Z"

    def stop(self, access: NodeAccess, hog: MemoryHog) -> bool:
        """SIGKILLs HOG and its pieces if it still runs (True), waits until it is gone, and
        reaps its launcher."""
        killed = self.alive(access, hog)
        if killed:
            # the whole group: the hog and its pieces; the kernel signals every member at once
            access.run("sh", "-c", f"kill -9 -{hog.pid} 2>/dev/null || :")  # dash: no "--"
            deadline = time.monotonic() + STOP_TIMEOUT
            while self.alive(access, hog):
                if time.monotonic() > deadline:
                    raise FaultError(f"memory hog pid {hog.pid} on node {hog.node} survived "
                                     f"SIGKILL for {STOP_TIMEOUT:.0f}s")
                time.sleep(0.05)
        launcher = self.launchers.pop((hog.node, hog.pid), None)
        if launcher is not None:
            launcher.communicate(timeout=STOP_TIMEOUT)
        return killed


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The first line PROCESS writes, or '' when it exits first; FaultError after TIMEOUT."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            process.kill()
            process.communicate(timeout=STOP_TIMEOUT)
            raise FaultError(f"the memory hog did not start within {timeout:.0f}s")
    return process.stdout.readline()

