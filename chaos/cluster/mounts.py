"""Finds and removes the mounts the cluster left under its directories (rootfs, shm, netns,
volumes), deepest first."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path


def mounts_under(roots: Sequence[Path]) -> list[str]:
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split(" ")[4].replace("\\040", " ")
        if any(point == str(r) or point.startswith(f"{r}/") for r in roots):
            found.append(point)
    return found


def unmount_under(roots: Sequence[Path]) -> None:
    for _ in range(3):
        points = mounts_under(roots)
        if not points:
            return
        for point in sorted(points, key=lambda p: -p.count("/")):
            subprocess.run(["umount", "-l", point], capture_output=True, timeout=30)
