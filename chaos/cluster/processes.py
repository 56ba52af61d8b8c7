"""Starts, records and stops processes by PID (the local cluster's, each in a cgroup of ours, and
the monitoring Prometheus), and checks that the ports they will listen on are free."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from chaos import statefile
from chaos.errors import ComponentDied, SetupError
from chaos.statefile import Malformed

CGROUP_BASE = Path("/sys/fs/cgroup")
CGROUP_PARENT = "chaosdrill"
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
"""Processes this Python process started, kept so their exit codes stay readable."""


@dataclass(frozen=True)
class Process:
    """One started process: its name, PID, kernel start time (guards against PID reuse), log."""

    name: str
    pid: int
    start_time: int
    log: str
    command: tuple[str, ...]


def cgroup_hierarchies() -> list[Path]:
    """Every mounted cgroup v1 hierarchy (cpu, memory, pids, ...)."""
    found: list[Path] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        if after.split(" ")[0] == "cgroup":
            mount = Path(before.split(" ")[4])
            if mount.parent == CGROUP_BASE:
                found.append(mount)
    return found


def make_cgroup(relative: str) -> None:
    """Creates CGROUP_PARENT/relative in every hierarchy, seeding cpuset from its parent."""
    for hierarchy in cgroup_hierarchies():
        path = hierarchy
        for part in (CGROUP_PARENT, *relative.strip("/").split("/")):
            path = path / part
            if not path.exists():
                path.mkdir()
                _seed_cpuset(path)


def _seed_cpuset(path: Path) -> None:
    for name in ("cpuset.cpus", "cpuset.mems"):
        own = path / name
        if own.exists() and not own.read_text().strip():
            own.write_text((path.parent / name).read_text())


def cgroup_pids(prefixes: Sequence[str] = ("",)) -> set[int]:
    """PIDs of every process in our cgroups, or only in those under the given sub-paths."""
    pids: set[int] = set()
    for hierarchy in cgroup_hierarchies():
        for prefix in prefixes:
            root = hierarchy / CGROUP_PARENT / prefix
            if root.exists():
                for procs in root.rglob("cgroup.procs"):
                    pids.update(int(p) for p in procs.read_text().split())
    return pids


def remove_cgroups() -> None:
    """Removes every cgroup under CGROUP_PARENT, deepest first (they must be empty)."""
    for hierarchy in cgroup_hierarchies():
        root = hierarchy / CGROUP_PARENT
        if root.exists():
            dirs = sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
            for path in [*dirs, root]:
                try:
                    path.rmdir()
                except OSError:
                    pass


def _joiner(relative: str) -> Callable[[], None]:
    def join() -> None:
        for hierarchy in cgroup_hierarchies():
            procs = hierarchy / CGROUP_PARENT / relative / "cgroup.procs"
            if procs.exists():
                procs.write_text(str(os.getpid()))

    return join


def stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command's name (state, parent PID, ...), or None when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def start_time_of(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when it is gone."""
    fields = stat_fields(pid)
    if fields is None or fields[0] == "Z":
        return None
    return int(fields[19])


def is_alive(process: Process) -> bool:
    return start_time_of(process.pid) == process.start_time


def start(name: str, command: Sequence[str], log: Path, cgroup: str | None = None) -> Process:
    """Starts COMMAND in its own session (so Ctrl-C on the terminal does not reach it), output
    to LOG, inside CGROUP_PARENT/cgroup when given."""
    log.parent.mkdir(parents=True, exist_ok=True)
    if cgroup:
        make_cgroup(cgroup)
    with log.open("ab") as out:
        child = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_joiner(cgroup) if cgroup else None,
        )
    started = start_time_of(child.pid) or 0
    _CHILDREN[child.pid] = child
    return Process(name, child.pid, started, str(log), tuple(command))


def stop(process: Process, timeout: float = 10.0) -> None:
    """SIGTERM, wait up to TIMEOUT, then SIGKILL; only if the PID is still that process."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if not is_alive(process):
            return
        os.kill(process.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and is_alive(process):
            _reap(process.pid)
            time.sleep(0.05)
    _reap(process.pid)
    _CHILDREN.pop(process.pid, None)


def exit_code(process: Process) -> int | None:
    """None while PROCESS runs; once it has exited, its exit code (-1 if another process
    started it, which cannot read it)."""
    child = _CHILDREN.get(process.pid)
    if child is not None:
        return child.poll()
    return None if is_alive(process) else -1


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop_cgroups(relatives: Sequence[str], timeout: float = 10.0) -> set[int]:
    """SIGTERM to every process in our cgroups under RELATIVES, up to TIMEOUT for them to go,
    then SIGKILL: how the local cluster stops what it can no longer name by its record. Only
    cgroups of ours hold them, so nothing else is touched. Returns the PIDs it found."""
    found = cgroup_pids(relatives)
    for pid in found:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while cgroup_pids(relatives) and time.monotonic() < deadline:
        for pid in found:
            _reap(pid)
        time.sleep(0.05)
    kill_cgroup_processes(prefixes=relatives)
    return found


def kill_cgroup_processes(timeout: float = 10.0, prefixes: Sequence[str] = ("",)) -> None:
    """SIGKILLs every process left in our cgroups (pods, shims) until none remain."""
    deadline = time.monotonic() + timeout
    while (pids := cgroup_pids(prefixes)) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _reap(pid)
        time.sleep(0.1)


IP_FREEBIND = 15
"""Linux's IP_FREEBIND (not in Python's socket module): bind the bridge address before the
bridge exists."""


def port_free(host: str, port: int) -> bool:
    """Whether a server may listen on HOST:PORT (a wildcard listener there also blocks it)."""
    try:
        ensure_port_free(port, host, "taken")
    except SetupError:
        return False
    return True


def ensure_port_free(port: int, host: str, taken: str) -> None:
    """A SetupError saying TAKEN when something listens on HOST:PORT (bound with SO_REUSEADDR,
    as the servers we start bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise SetupError(taken) from None
            raise SetupError(f"cannot listen on {host}:{port}: {error.strerror}") from None


def tail(log: str | Path, lines: int = 8) -> str:
    try:
        text = Path(log).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def check_alive(process: Process) -> None:
    """Raises ComponentDied, with the component's last log lines, when it has exited."""
    if not is_alive(process):
        raise ComponentDied(
            f"{process.name} exited (log {process.log}); last lines:\n{tail(process.log)}"
        )


def save(path: Path, processes: Sequence[Process]) -> None:
    """Records PROCESSES in PATH, replaced whole (a crash leaves the old record or the new)."""
    statefile.write_json(path, [asdict(p) for p in processes])


def read(path: Path) -> list[Process] | Malformed:
    """The processes PATH records ([] when there is no record), or Malformed when it cannot be
    read: the caller says so and finds its processes another way."""
    found = statefile.read_json(path, _parse_records)
    return [] if found is None else found


def load(path: Path) -> list[Process]:
    """The processes PATH records; none when there is no record or it cannot be read (callers
    that must act on an unreadable one use `read`)."""
    found = read(path)
    return [] if isinstance(found, Malformed) else found


FIELDS = {f.name for f in fields(Process)}


def _parse_records(content: Any) -> list[Process]:
    if not isinstance(content, list):
        raise TypeError(f"a list of processes expected, not {type(content).__name__}")
    return [_parse_record(record) for record in content]


def _parse_record(record: Any) -> Process:
    """One record, every field of the right type, or a ValueError naming what is wrong."""
    if not isinstance(record, dict) or set(record) != FIELDS:
        raise ValueError(f"a process record needs exactly {', '.join(sorted(FIELDS))}")
    name, pid, start_time, log, command = (record[f] for f in
                                           ("name", "pid", "start_time", "log", "command"))
    if not (isinstance(name, str) and isinstance(log, str) and isinstance(command, list)
            and all(isinstance(word, str) for word in command)):
        raise ValueError(f"process record {name!r} has a field of the wrong type")
    if type(pid) is not int or pid < 2 or type(start_time) is not int:
        raise ValueError(f"process record {name!r} has no valid pid and start time")
    return Process(name, pid, start_time, log, tuple(command))
