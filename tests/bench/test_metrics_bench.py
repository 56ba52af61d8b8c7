"""Benchmark of the Prometheus exporter: /metrics scrape time while a drill's Observer watches
300 pods, and a payload that keeps its size and series as pods churn (no label growth).

Run with `make bench` (or `.venv/bin/pytest tests/bench/test_metrics_bench.py -m bench -s`).
It creates the Deployment `crowd` (300 pause pods) in namespace demo, watches it with the
Observer feeding DrillMetrics, scrapes /metrics on loopback while steady, while 60 pods are
deleted and replaced, and after; then deletes `crowd`. Figures go to
tests/bench/results/metrics.json."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
import statistics
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client import CollectorRegistry, generate_latest

from chaos.cluster import kube, workloads
from chaos.cluster.kube import Workload
from chaos.drill.loading import parse_drill
from chaos.drill.spec import Drill
from chaos.monitoring.drill_metrics import for_drill
from chaos.monitoring.metrics_server import serve
from chaos.observe.observer import Observer
from chaos.results.journal import Journal

from support import REPO, crowd_deployment, machine

pytestmark = pytest.mark.bench

RESULTS = Path(__file__).resolve().parent / "results" / "metrics.json"
POD_KILL = REPO / "manifests" / "drills" / "web-pod-kill.yaml"
PODS = 300
CHURN = 60
SCRAPES = 300
GOAL_MEDIAN_MS = 10.0
SCRAPE_PERIOD = 0.05  # during churn; Prometheus itself scrapes once a second at most here
# What Prometheus 2.42 sends with every scrape (scrape/scrape.go).
PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,"
              "application/openmetrics-text;version=0.0.1;q=0.75,"
              "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
}
CROWD = Workload("Deployment", "crowd", "demo", {"app": "crowd"})


def crowd_drill() -> Drill:
    """The shipped pod_delete example, aimed at `crowd`."""
    document = yaml.safe_load(POD_KILL.read_text())
    document["spec"]["target"]["name"] = "crowd"
    document["spec"].pop("probe")
    return parse_drill(yaml.safe_dump(document), str(POD_KILL))


@dataclass(frozen=True)
class Scrape:
    seconds: float
    body: bytes  # uncompressed
    wire_bytes: int


def scrape(url: str) -> Scrape:
    """One GET of /metrics as Prometheus 2 asks for it (OpenMetrics, gzip), timed from the
    request to the last byte."""
    request = urllib.request.Request(url, headers=PROMETHEUS_HEADERS)
    began = time.perf_counter()
    with urllib.request.urlopen(request, timeout=5) as response:
        raw = response.read()
        encoding = response.headers.get("Content-Encoding")
    seconds = time.perf_counter() - began
    body = gzip.decompress(raw) if encoding == "gzip" else raw
    return Scrape(seconds, body, len(raw))


def series(body: bytes) -> set[str]:
    """The series of an exposition: each sample line without its value."""
    lines = body.decode().splitlines()
    return {line.rsplit(" ", 1)[0] for line in lines if line and not line.startswith("#")}


def ms(scrapes: list[Scrape]) -> dict[str, Any]:
    samples = sorted(s.seconds * 1000 for s in scrapes)
    return {
        "median": round(statistics.median(samples), 3),
        "p95": round(samples[max(0, round(0.95 * len(samples)) - 1)], 3),
        "min": round(samples[0], 3),
        "max": round(samples[-1], 3),
        "n": len(samples),
    }


def wait_for_status(observer: Observer, ready: int, pods: int, timeout: float) -> None:
    """Until the Observer has seen `ready` Ready replicas and exactly `pods` live pods."""
    def reached() -> bool:
        live = [p for p in observer.tracker.pods.values()
                if not p.get("metadata", {}).get("deletionTimestamp")]
        status = observer.workload_status
        return status.get("ready") == ready and status.get("desired") == ready and \
            len(live) == pods

    deadline = time.monotonic() + timeout
    with observer.changed:
        while not reached():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"crowd not at {ready} Ready / {pods} pods in {timeout:g}s: "
                                   f"{observer.workload_status}, {len(observer.tracker.pods)}")
            observer.changed.wait(min(left, 1.0))


def delete_crowd(api: Any) -> None:
    try:
        client.AppsV1Api(api).delete_namespaced_deployment(
            "crowd", "demo", propagation_policy="Background")
    except ApiException as error:
        if error.status != 404:
            raise
    kube.wait_for_pods(api, "demo", "app=crowd", lambda pods: not pods, timeout=600)


@pytest.fixture
def crowd(web: Any) -> Iterator[float]:
    """The `crowd` Deployment, Ready; yields how long that took, and deletes it afterwards."""
    delete_crowd(web)  # a crashed earlier run may have left it
    began = time.monotonic()
    workloads.apply(web, [crowd_deployment(PODS)], print)
    try:
        workloads.wait_steady(web, "demo", "crowd", timeout=600)
        yield time.monotonic() - began
    finally:
        delete_crowd(web)


def test_scrape_time_and_payload_while_watching_300_pods(
    web: Any, crowd: float, tmp_path: Path
) -> None:
    registry = CollectorRegistry()
    metrics = for_drill(registry, crowd_drill())  # as `chaos-drill run --metrics-port` does
    journal = Journal.open(tmp_path / "journal.jsonl")
    observer = Observer(web, CROWD, journal, metrics)
    observer.start()
    try:
        metrics.running(True)
        metrics.slo(max_recovery_seconds=30, min_availability=0.99)
        wait_for_status(observer, PODS, PODS, timeout=60)
        with serve(registry, port=0) as server:
            steady = [scrape(server.url) for _ in range(SCRAPES)]
            victims = random.Random(7).sample(sorted(observer.pods().values(),
                                                     key=lambda p: p["metadata"]["name"]), CHURN)
            core = client.CoreV1Api(web)
            churn_began = time.monotonic()
            for pod in victims:
                core.delete_namespaced_pod(pod["metadata"]["name"], "demo", grace_period_seconds=0)
            churning: list[Scrape] = []
            low = PODS
            while True:  # scrape 20 times a second until the Observer has seen the crowd heal
                churning.append(scrape(server.url))
                with observer.changed:
                    low = min(low, observer.workload_status.get("ready", PODS))
                    live = [p for p in observer.tracker.pods.values()
                            if not p["metadata"].get("deletionTimestamp")]
                    if observer.workload_status.get("ready") == PODS == len(live) and low < PODS:
                        break
                    observer.changed.wait(SCRAPE_PERIOD)
                assert time.monotonic() - churn_began < 300, "crowd did not heal in 300 s"
            healed_seconds = time.monotonic() - churn_began
            wait_for_status(observer, PODS, PODS, timeout=60)
            after = [scrape(server.url) for _ in range(SCRAPES)]
        exposition = []
        for _ in range(SCRAPES):
            began = time.perf_counter()
            generate_latest(registry)
            exposition.append(time.perf_counter() - began)
        events = observer.tracker.events
    finally:
        observer.stop()
        journal.close()

    sizes = {len(s.body) for s in steady + churning + after}
    assert series(steady[0].body) == series(churning[len(churning) // 2].body) == \
        series(after[-1].body), "the series changed as pods churned"
    assert len(sizes) == 1, f"payload size changed as pods churned: {sorted(sizes)}"
    names = [p["metadata"]["name"] for p in victims]
    assert not any(name.encode() in after[-1].body for name in names), "pod names in labels"
    assert low < PODS, "the Observer never saw the crowd lose a pod"

    record = {
        "machine": machine(),
        "benchmarks": {
            "metrics_scrape_watching_300_pods": {
                "unit": "ms",
                "what": "GET /metrics on loopback as Prometheus asks (OpenMetrics, gzip), request "
                        "to last byte, served from the drill's process while its Observer "
                        "watches the pods",
                "goal_median_max": GOAL_MEDIAN_MS,
                "steady": ms(steady),
                "during_churn": ms(churning),
                "after_churn": ms(after),
                "exposition_only_ms": {
                    "median": round(statistics.median(exposition) * 1000, 3),
                    "what": "prometheus_client.generate_latest of the same registry, no HTTP",
                },
                "payload_bytes": sizes.pop(),
                "payload_gzip_bytes": statistics.median(s.wire_bytes for s in after),
                "series": len(series(after[-1].body)),
                "pods_watched": PODS,
                "pods_deleted": CHURN,
                "lowest_ready_seen": low,
                "healed_seconds": round(healed_seconds, 1),
                "watch_events_handled": events,
                "crowd_ready_seconds": round(crowd, 1),
                "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            },
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    figures = record["benchmarks"]["metrics_scrape_watching_300_pods"]
    print(f"\nscrape median {figures['steady']['median']} ms steady, "
          f"{figures['during_churn']['median']} ms during churn "
          f"(p95 {figures['during_churn']['p95']} ms, n {figures['during_churn']['n']}), "
          f"{figures['after_churn']['median']} ms after; payload {figures['payload_bytes']} B, "
          f"{figures['series']} series; written to {RESULTS.relative_to(REPO)}")
