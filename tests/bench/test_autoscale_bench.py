"""Autoscaling on the local cluster: the load drill's load start → scale decided → new pods Ready
with the settings chosen for drills and with the Kubernetes defaults, interleaved in one run;
and what the add-ons (CoreDNS, metrics-server) cost at rest and on `cluster up`.

Run with `make bench` (or `.venv/bin/pytest tests/bench/test_autoscale_bench.py -m bench -s`).
Figures merge into tests/bench/results/autoscale.json."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from benchsupport import cluster_pids, memory_of
from kubernetes import client

from chaos.cluster import kube, tuning, workloads
from chaos.cluster.local import LocalCluster
from chaos.drill.loading import load_drill
from chaos.run.runner import DrillRun, RunOptions

from support import Figures, wait_addons_ready, write_drill

pytestmark = pytest.mark.bench

RESULTS = Path(__file__).resolve().parent / "results" / "autoscale.json"
ROUNDS = 3
LOAD: dict[str, Any] = {"type": "load", "durationSeconds": 40, "concurrency": 3}
SETTINGS = {"chosen": tuning.CHOSEN, "kubernetes_defaults": tuning.KUBERNETES_DEFAULTS}
UP_CYCLES = 3
MEMORY_SAMPLES = 5


def say(message: str) -> None:
    print(f"[bench autoscale] {message}", flush=True)


@pytest.fixture(scope="module")
def figures() -> Iterator[Figures]:
    found = Figures()
    yield found
    found.save(RESULTS)


@pytest.fixture
def restore_tuning(local_cluster: LocalCluster) -> Iterator[None]:
    """Afterwards the cluster runs with the chosen settings again, as every other test expects."""
    saved = {name: os.environ.get(name) for name in tuning.environment(tuning.CHOSEN)}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    local_cluster.down(say)
    local_cluster.up(say)


def up_with(cluster: LocalCluster, settings: tuning.Tuning) -> float:
    """Restarts the cluster with SETTINGS; the seconds `up` took."""
    cluster.down(lambda _: None)
    os.environ.update(tuning.environment(settings))
    began = time.perf_counter()
    cluster.up(lambda _: None)
    return time.perf_counter() - began


def wait_for_hpa_at_rest(api: Any, timeout: float = 180.0) -> None:
    """Until web's HPA has a CPU figure below its target: every drill starts from the same
    place, not from a metrics pipeline still warming up."""
    hpas = client.AutoscalingV2Api(api)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hpa = hpas.read_namespaced_horizontal_pod_autoscaler("web", "demo")
        target = hpa.spec.metrics[0].resource.target.average_utilization
        for metric in hpa.status.current_metrics or []:
            used = metric.resource.current.average_utilization if metric.resource else None
            if used is not None and used < target and hpa.status.current_replicas == 3:
                return
        time.sleep(1.0)
    raise AssertionError(f"web's HPA had no CPU figure below target within {timeout:.0f}s")


def load_drill_once(cluster: LocalCluster, tmp_path: Path, name: str) -> dict[str, float]:
    workloads.deploy(cluster, lambda _: None, timeout=120)
    with kube.api_client(cluster.kubeconfig()) as api:
        workloads.set_autoscaling(api, True, lambda _: None)
        wait_for_hpa_at_rest(api)
    path = write_drill(tmp_path, LOAD, slo={"maxScaleOutSeconds": 180,
                                            "maxScaleInSeconds": 300})
    summary = DrillRun(load_drill(path), cluster, RunOptions(out_dir=tmp_path / name),
                       lambda _: None).run()
    (incident,) = summary.incidents
    assert incident.ordered and "ready" in incident.phases, incident.phases
    phases = dict(incident.phases)
    return {"decided": phases["scale_decided"] - phases["injected"],
            "ready": phases["ready"] - phases["injected"],
            "scale_in": incident.scale_in_seconds or float("nan"),
            "peak": float(incident.peak_replicas or 0)}


def test_load_scale_out_chosen_against_kubernetes_defaults(
        local_cluster: LocalCluster, restore_tuning: None, tmp_path: Path,
        figures: Figures) -> None:
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in SETTINGS}
    for round_number in range(ROUNDS):
        for name, settings in SETTINGS.items():
            up_with(local_cluster, settings)
            found = load_drill_once(local_cluster, tmp_path, f"{name}-{round_number}")
            say(f"{name} round {round_number + 1}: {found}")
            runs[name].append(found)
    for name, settings in SETTINGS.items():
        knobs = {"hpa_sync_seconds": settings.hpa_sync_seconds,
                 "metric_resolution_seconds": settings.metric_resolution_seconds}
        figures.add(f"load_to_scale_decided_{name}", "s", [r["decided"] for r in runs[name]],
                    **knobs)
        figures.add(f"load_to_new_pods_ready_{name}", "s", [r["ready"] for r in runs[name]],
                    peak_replicas=[r["peak"] for r in runs[name]], **knobs)
        figures.add(f"load_end_to_scaled_in_{name}", "s", [r["scale_in"] for r in runs[name]],
                    **knobs)
    chosen = statistics.median(r["ready"] for r in runs["chosen"])
    defaults = statistics.median(r["ready"] for r in runs["kubernetes_defaults"])
    say(f"new pods Ready: chosen {chosen:.2f} s, defaults {defaults:.2f} s, "
        f"ratio {defaults / chosen:.2f}")


def addon_pids(cluster: LocalCluster) -> dict[int, str]:
    """The processes of the add-ons' pods, by the container's command."""
    named = {}
    for pid, group in cluster_pids(cluster).items():
        if not group.startswith("pods "):
            continue
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        for addon in ("coredns", "metrics-server"):
            if command.endswith(addon):
                named[pid] = addon
    return named


def test_addon_cost_at_rest_and_on_cluster_up(local_cluster: LocalCluster,
                                              figures: Figures) -> None:
    total, addons_wait = [], []
    for _ in range(UP_CYCLES):
        local_cluster.down(lambda _: None)
        began = time.perf_counter()
        local_cluster.up(lambda _: None)
        ended = time.perf_counter()
        with kube.api_client(local_cluster.kubeconfig()) as api:
            wait_addons_ready(api)
        total.append(ended - began)
        addons_wait.append(time.perf_counter() - ended)
    figures.add("cluster_up_with_addons", "s", total, goal_max=10.0)
    figures.add("addons_ready_after_up", "s", addons_wait,
                note="from `cluster up`'s return (nodes Ready, kube-proxy's rules) to CoreDNS "
                     "and the metrics API ready; `up` installs them and does not wait")
    rss = []
    by_addon: dict[str, int] = {}
    for _ in range(MEMORY_SAMPLES):
        named = addon_pids(local_cluster)
        assert sorted(set(named.values())) == ["coredns", "metrics-server"], named
        kib, _pss, by_addon = memory_of(named)
        rss.append(kib / 1024)
        time.sleep(1.0)  # spaced samples of a steady cluster, not a wait for a condition
    figures.add("addons_rss_at_rest", "MiB", rss,
                rss_by_addon_mib={k: round(v / 1024, 1) for k, v in by_addon.items()})
