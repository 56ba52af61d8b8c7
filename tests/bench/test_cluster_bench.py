"""Benchmarks of the local cluster: warm no-op `make setup`, `cluster up` to all nodes Ready,
memory at rest with the sample workload, and pod delete to replacement Ready.

Run with `make bench` (or `.venv/bin/pytest tests/bench/test_cluster_bench.py -m bench -s`).
Each benchmark prints its figures and merges them into tests/bench/results/cluster.json, so a
run of one benchmark keeps the others' last figures."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from benchsupport import cluster_pids, memory_sample
from kubernetes import client

from chaos.cluster import kube, processes
from chaos.cluster.local import LocalCluster

from support import REPO, Figures, ready_pods

pytestmark = pytest.mark.bench

RESULTS = Path(__file__).resolve().parent / "results" / "cluster.json"
SELECTOR = "app=web"
UP_CYCLES = 5
DELETE_ROUNDS = 10
SETUP_RUNS = 3
MEMORY_SAMPLES = 5


@pytest.fixture(scope="module")
def figures() -> Iterator[Figures]:
    found = Figures()
    yield found
    found.save(RESULTS)


def table(entries: dict[str, dict[str, Any]]) -> str:
    rows = [("benchmark", "median", "min", "max", "n")]
    for name, entry in entries.items():
        unit = entry["unit"]
        rows.append((name, f"{entry['median']} {unit}", f"{entry['min']} {unit}",
                     f"{entry['max']} {unit}", str(len(entry["samples"]))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n" + "\n".join(lines)


# -- warm no-op make setup ----------------------------------------------------------------------


def make_setup() -> tuple[float, str]:
    began = time.perf_counter()
    result = subprocess.run(["make", "-s", "setup"], cwd=REPO, capture_output=True, text=True,
                            timeout=1800)
    elapsed = time.perf_counter() - began
    assert result.returncode == 0, result.stderr[-2000:]
    return elapsed, result.stdout + result.stderr


def test_warm_make_setup_is_a_quick_no_op(figures: Figures) -> None:
    make_setup()  # brings a stale .venv up to date, so the timed runs below are true no-ops
    samples = []
    for _ in range(SETUP_RUNS):
        elapsed, output = make_setup()
        assert output.count("already built") == 2, output
        assert "Debian packages present" in output, output
        assert "building" not in output and "virtualenv" not in output, output
        samples.append(elapsed)
    figures.add("make_setup_warm_noop", "s", samples)


# -- cluster up ---------------------------------------------------------------------------------


def ready_node_names(cluster: LocalCluster) -> list[str]:
    with kube.api_client(cluster.kubeconfig()) as api:
        nodes = client.CoreV1Api(api).list_node().items
    return sorted(n.metadata.name for n in nodes if kube.node_ready(n))


def test_cluster_up_to_all_nodes_ready(local_cluster: LocalCluster, figures: Figures) -> None:
    samples = []
    for _ in range(UP_CYCLES):
        local_cluster.down(lambda _: None)
        began = time.perf_counter()
        local_cluster.up(lambda _: None)
        samples.append(time.perf_counter() - began)
        assert ready_node_names(local_cluster) == [n.name for n in local_cluster.lay.nodes]
    figures.add("cluster_up_to_nodes_ready", "s", samples, goal_max=20.0,
                compare="kind 12-17 s to a healthy API server (kubernetes-sigs/kind#2893)")


# -- memory at rest -----------------------------------------------------------------------------


def test_memory_at_rest_with_the_web_workload(web: Any, cluster: LocalCluster,
                                              figures: Figures) -> None:
    ready = [p for p in client.CoreV1Api(web).list_namespaced_pod(
        "demo", label_selector=SELECTOR).items if kube.pod_ready(p)]
    assert len(ready) == 3
    rss, pss, groups = [], [], []
    for _ in range(MEMORY_SAMPLES):
        total_rss, total_pss, by_group = memory_sample(cluster)
        rss.append(total_rss / 1024)
        pss.append(total_pss / 1024)
        groups.append(by_group)
        time.sleep(1.0)  # spaced samples of a steady cluster, not a wait for a condition
    assert min(rss) > 0
    last = groups[-1]
    for recorded in processes.load(cluster.lay.processes):
        assert recorded.name in last, f"{recorded.name} was not measured"
    assert any(name.startswith("pods ") for name in last), "no pod process was measured"
    breakdown = {name: round(kib / 1024, 1) for name, kib in sorted(last.items())}
    figures.add("memory_rss_at_rest", "MiB", rss, processes=len(cluster_pids(cluster)),
                rss_by_component_mib=breakdown)
    figures.add("memory_pss_at_rest", "MiB", pss,
                note="PSS counts shared pages once; RSS sums count them per process")
    print("\nRSS by component (MiB): " + ", ".join(f"{k} {v}" for k, v in breakdown.items()))


# -- pod delete to replacement Ready ------------------------------------------------------------


def test_pod_delete_to_replacement_ready(web: Any, figures: Figures) -> None:
    core = client.CoreV1Api(web)
    samples = []
    for round_number in range(DELETE_ROUNDS):
        pods = ready_pods(core.list_namespaced_pod("demo", label_selector=SELECTOR).items)
        assert len(pods) == 3
        victim = sorted(pods, key=lambda p: p.metadata.name)[round_number % len(pods)]
        before = {p.metadata.uid for p in pods}

        def replaced(current: list[Any], victim_uid: str = victim.metadata.uid) -> bool:
            uids = {p.metadata.uid for p in ready_pods(current)}
            return len(uids) == 3 and victim_uid not in uids

        began = time.perf_counter()
        core.delete_namespaced_pod(victim.metadata.name, "demo", grace_period_seconds=0)
        after = kube.wait_for_pods(web, "demo", SELECTOR, replaced, timeout=60)
        samples.append(time.perf_counter() - began)
        new = {p.metadata.uid for p in ready_pods(after)} - before
        assert len(new) == 1, "exactly one new pod should replace the deleted one"
    figures.add("pod_delete_to_replacement_ready", "s", samples)
