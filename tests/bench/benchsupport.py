"""Helpers the benchmarks share (tests/bench/ is on sys.path while they run): process memory,
percentiles and the crowd of pause pods. Named without test_, so no test module imports another."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaos.cluster import kube, processes
from chaos.cluster.local import LocalCluster

CROWD_REPLICAS = 300
"""Pods of Deployment crowd (support.crowd_deployment) in the benchmarks that need many."""


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(samples)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def kib(pid: int, key: str, path: str = "status") -> int:
    """A kB figure from /proc/PID/PATH (0 when the process is gone or has no such line)."""
    try:
        text = Path(f"/proc/{pid}/{path}").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return 0


def cluster_pids(cluster: LocalCluster) -> dict[int, str]:
    """Every process of the cluster, named: the recorded components by name, the rest by cgroup
    (a node's runtime cgroup holds containerd's shims, its pod cgroup the pods)."""
    named = {p.pid: p.name for p in processes.load(cluster.lay.processes)
             if processes.is_alive(p)}
    for node in cluster.lay.nodes:
        for pid in processes.cgroup_pids((node.name,)):
            named.setdefault(pid, f"containerd shims {node.name}")
        for pid in processes.cgroup_pids((node.pod_cgroup,)):
            named.setdefault(pid, f"pods {node.name}")
    for pid in processes.cgroup_pids():
        named.setdefault(pid, "other")
    return named


def memory_sample(cluster: LocalCluster) -> tuple[int, int, dict[str, int]]:
    """Sum of RSS and of PSS (kB) over the cluster's processes, and RSS per group."""
    return memory_of(cluster_pids(cluster))


def memory_of(named: dict[int, str]) -> tuple[int, int, dict[str, int]]:
    """Sum of RSS and of PSS (kB) over the NAMED processes, and RSS per name."""
    rss_total = pss_total = 0
    by_group: dict[str, int] = {}
    for pid, name in named.items():
        rss = kib(pid, "VmRSS")
        rss_total += rss
        pss_total += kib(pid, "Pss", "smaps_rollup")
        by_group[name] = by_group.get(name, 0) + rss
    return rss_total, pss_total, by_group


def wait_crowd_gone(api: Any) -> None:
    """Waits (at most ten minutes) until no pod of Deployment crowd is left."""
    kube.wait_for_pods(api, "demo", "app=crowd", lambda pods: not pods, timeout=600)
