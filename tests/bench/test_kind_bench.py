"""kind against the local cluster, side by side in one run on one machine: `cluster up` to all
nodes Ready (interleaved cycles, and the ratio), a 10-round pod_delete drill's recovery median,
node_stop recovery, and memory at rest with the sample workload.

Run with `make bench` (or `.venv/bin/pytest tests/bench/test_kind_bench.py -m bench -s`; needs
`make kind`). Figures merge into tests/bench/results/kind.json."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from benchsupport import memory_of, memory_sample

from chaos.cluster import dockerd, kind, kind_host, processes
from chaos.cluster.base import ClusterProvider
from chaos.cluster.kind import KindCluster
from chaos.cluster.local import LocalCluster
from chaos.drill.loading import load_drill
from chaos.run.runner import DrillRun, RunOptions

from support import FAULTS, Figures, fresh_sample_workload, write_drill

pytestmark = pytest.mark.bench

RESULTS = Path(__file__).resolve().parent / "results" / "kind.json"
UP_CYCLES = 3
DELETE_ROUNDS = 10
NODE_STOP_ROUNDS = 2
MEMORY_SAMPLES = 5


def say(message: str) -> None:
    print(f"[bench kind] {message}", flush=True)


@pytest.fixture(scope="module")
def figures(cluster_lock: None) -> Iterator[Figures]:
    """The module's figures; the kind cluster is down at its end, whatever happened."""
    if not kind_host.node_image_dir().joinpath("image-id").exists():
        pytest.fail(f"{kind_host.node_image_dir()} missing: run 'make kind' first")
    found = Figures()
    try:
        yield found
    finally:
        if kind.running_here():
            KindCluster().down(say)
        found.save(RESULTS)


def timed_up(provider: ClusterProvider) -> float:
    began = time.perf_counter()
    provider.up(say)
    return time.perf_counter() - began


def test_cluster_up_side_by_side(figures: Figures) -> None:
    """Cycles alternate local and kind, so both meet the same load on the machine."""
    local, kind_cluster = LocalCluster(), KindCluster()
    if kind.running_here():
        kind_cluster.down(say)
    local_s, kind_s = [], []
    for _ in range(UP_CYCLES):
        local.down(say)
        local_s.append(timed_up(local))
        local.down(say)
        kind_s.append(timed_up(kind_cluster))
        kind_cluster.down(say)
    figures.add("local_cluster_up_to_nodes_ready", "s", local_s, nodes=2)
    figures.add("kind_cluster_up_to_nodes_ready", "s", kind_s, nodes=3,
                note="starts dockerd, creates the network, 3 node containers, CNI, loads images")
    ratio = statistics.median(kind_s) / statistics.median(local_s)
    figures.add("kind_to_local_up_ratio", "x", [ratio], note="median kind / median local")
    print(f"\nkind up / local up: {ratio:.2f}x")


def recoveries(provider: ClusterProvider, fault: str, rounds: int, tmp_path: Path) -> list[float]:
    """The recovery_seconds of a ROUNDS-round drill of FAULT, every incident recovered."""
    path = write_drill(tmp_path, FAULTS[fault], probe=None, rounds=rounds, intervalSeconds=1,
                       slo={"maxRecoverySeconds": 300})
    out = tmp_path / f"out-{fault}"
    summary = DrillRun(load_drill(path), provider, RunOptions(out_dir=out), say).run()
    times = [i.recovery_seconds for i in summary.incidents]
    assert len(times) >= rounds and all(t is not None for t in times), summary.incidents
    return [t for t in times if t is not None]


def kind_pids(provider: KindCluster) -> dict[int, str]:
    """Every process of the kind cluster, named: dockerd and its containerd, Docker's shims, and
    whatever runs in each node container's cgroup (systemd, kubelet, containerd, pods)."""
    named: dict[int, str] = {}
    engine = provider.engine.started()
    if engine is not None and processes.is_alive(engine):
        named[engine.pid] = "dockerd"
        for child in dockerd.child_pids(engine.pid):
            named[child] = "containerd (Docker's)"
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if words and words[0].endswith(b"containerd-shim-runc-v2") and b"moby" in words:
            named.setdefault(int(cmdline.parent.name), "shims (Docker's)")
    for node in provider._nodes():
        container = dockerd.run("inspect", "--format", "{{.Id}}", node, timeout=60).strip()
        for hierarchy in processes.cgroup_hierarchies():
            for procs in (hierarchy / "docker" / container).rglob("cgroup.procs"):
                for pid in procs.read_text().split():
                    named.setdefault(int(pid), f"node {node}")
    return named


def kind_memory(provider: KindCluster) -> tuple[int, int, dict[str, int]]:
    return memory_of(kind_pids(provider))


def memory_figures(figures: Figures, name: str, sample: Any) -> None:
    rss, pss, groups = [], [], []
    for _ in range(MEMORY_SAMPLES):
        total_rss, total_pss, by_group = sample()
        rss.append(total_rss / 1024)
        pss.append(total_pss / 1024)
        groups.append(by_group)
        time.sleep(1.0)  # spaced samples of a steady cluster, not a wait for a condition
    assert min(rss) > 0
    breakdown = {group: round(kib / 1024, 1) for group, kib in sorted(groups[-1].items())}
    figures.add(f"{name}_memory_rss_at_rest", "MiB", rss, rss_by_group_mib=breakdown)
    figures.add(f"{name}_memory_pss_at_rest", "MiB", pss)
    print(f"\n{name} RSS by group (MiB): "
          + ", ".join(f"{k} {v}" for k, v in breakdown.items()))


def test_local_at_rest_and_recovering(cluster: LocalCluster, figures: Figures,
                                      tmp_path: Path) -> None:
    fresh_sample_workload(cluster, say, timeout=180)
    memory_figures(figures, "local", lambda: memory_sample(cluster))
    figures.add("local_pod_delete_recovery", "s",
                recoveries(cluster, "pod_delete", DELETE_ROUNDS, tmp_path))
    figures.add("local_node_stop_recovery", "s",
                recoveries(cluster, "node_stop", NODE_STOP_ROUNDS, tmp_path))


def test_kind_at_rest_and_recovering(figures: Figures, tmp_path: Path) -> None:
    LocalCluster().down(say)
    provider = KindCluster()
    provider.up(say)
    fresh_sample_workload(provider, say, timeout=180)
    memory_figures(figures, "kind", lambda: kind_memory(provider))
    assert any(g.startswith("node ") for g in figures.entries["kind_memory_rss_at_rest"]
               ["rss_by_group_mib"]), "no node container was measured"
    figures.add("kind_pod_delete_recovery", "s",
                recoveries(provider, "pod_delete", DELETE_ROUNDS, tmp_path))
    figures.add("kind_node_stop_recovery", "s",
                recoveries(provider, "node_stop", NODE_STOP_ROUNDS, tmp_path))
    provider.down(say)
