"""Small helpers shared by the e2e and bench tests (tests/ is on sys.path through conftest.py)."""

from __future__ import annotations

import math
import socket
from pathlib import Path

from chaos.monitor import Sample, Series


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def has_finite_value(samples: list[Sample]) -> bool:
    """An instant query's result holds at least one number (not NaN, not ±Inf)."""
    return any(math.isfinite(sample.value) for sample in samples)


def has_finite_point(series: list[Series]) -> bool:
    """A range query's result holds at least one number: a graph would draw something."""
    return any(math.isfinite(value) for one in series for _, value in one.points)


def pids_with_argument(argument: str) -> list[int]:
    """Processes (not zombies) whose command line holds `argument` exactly."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            arguments = (proc / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if argument.encode() in arguments:
            found.append(int(proc.name))
    return found
