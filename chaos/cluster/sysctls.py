"""Host sysctls a cluster changes: their values saved before, put back after, and only theirs: a
saved name that is not one the caller changes (an absolute path, say), or a value that is not a
number, is skipped with one line while the rest is restored."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

from chaos.cluster.base import Progress

PROC_SYS = Path("/proc/sys")
"""Looked up at each call, so tests point it at a folder of their own."""
VALUE = re.compile(r"-?\d+(?:[ \t]+-?\d+)*")
"""What every sysctl chaos-drill saves holds: one number, or a few separated by blanks."""


def current(names: Iterable[str]) -> dict[str, str]:
    """The values of NAMES this kernel has."""
    return {name: (PROC_SYS / name).read_text().strip() for name in names
            if (PROC_SYS / name).exists()}


def skip_reason(name: str, value: object, known: Collection[str]) -> str | None:
    """Why the saved NAME=VALUE must not be written back, or None when it may."""
    if name not in known:
        return "not a setting chaos-drill changes"
    if not isinstance(value, str) or not VALUE.fullmatch(value):
        return f"{value!r} is not a sysctl value"
    return None


def restore(saved: Mapping[str, object], known: Collection[str], source: Path,
            say: Progress) -> list[str]:
    """Writes back each saved value that differs now, of KNOWN names only; returns those it
    changed (dotted, as `sysctl` names them)."""
    changed = []
    for name, value in saved.items():
        reason = skip_reason(name, value, known)
        if reason is not None:
            say(f"not restoring {name!r} from {source}: {reason}")
            continue
        path = PROC_SYS / name
        if path.exists() and path.read_text().strip() != value:
            path.write_text(str(value))
            changed.append(name.replace("/", "."))
    return changed
