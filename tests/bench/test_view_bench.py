"""Benchmark of the live web view: with the 300 pods of Deployment crowd churning, the time from
a pod watch event arriving at `chaos-drill watch --web` to the page's DOM showing it, measured in
the browser, and the watch process's memory and CPU with five pages connected.

Run with `make bench` (or `.venv/bin/pytest tests/bench/test_view_bench.py -m bench -s`). Figures
merge into tests/bench/results/view.json. The page measures itself when opened with `?measure`:
each pod in a state carries its last event's arrival (wall clock, ms), and the page records
Date.now() minus that once the state is drawn. Server and browser share this machine's clock."""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from benchsupport import CROWD_REPLICAS, kib, percentile, wait_crowd_gone
from kubernetes import client

from chaos.cluster import workloads

from browser import CHROMIUM, Chromium, needs_chromium
from support import Figures, crowd_deployment, free_port, start_cli

pytestmark = [pytest.mark.bench, needs_chromium]

RESULTS = Path(__file__).resolve().parent / "results" / "view.json"
PAGES = 5
CHURN_SECONDS = 60
DELETES_PER_SECOND = 2
"""Pods deleted each second: each brings a DELETED, an ADDED and several MODIFIED events. At 5
a second the 2-core machine spends itself starting containers (load average over 100)."""
CPU_TICKS = os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def figures() -> Iterator[Figures]:
    found = Figures()
    yield found
    found.save(RESULTS)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CPU_TICKS  # utime + stime


def open_pages(url: str, count: int) -> list[Chromium]:
    """COUNT browsers on URL, each with its own connection to the event stream."""
    pages: list[Chromium] = []
    try:
        for _ in range(count):
            pages.append(Chromium(url, width=1920, height=1080))
        for page in pages:
            page.wait_for(f"document.querySelectorAll('.tile').length >= {CROWD_REPLICAS}",
                          timeout=120, what=f"{CROWD_REPLICAS} tiles")
    except BaseException:
        for page in pages:
            page.close()
        raise
    return pages


def churn(api: Any, seconds: float) -> int:
    """Deletes DELETES_PER_SECOND random crowd pods every second for SECONDS; returns how many."""
    core = client.CoreV1Api(api)
    rng = random.Random(7)
    deleted = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        tick = time.monotonic()
        listing = core.list_namespaced_pod("demo", label_selector="app=crowd",
                                           _preload_content=False)
        pods = [p["metadata"]["name"] for p in json.loads(listing.data)["items"]
                if not p["metadata"].get("deletionTimestamp")]
        for name in rng.sample(pods, min(DELETES_PER_SECOND, len(pods))):
            try:
                core.delete_namespaced_pod(name, "demo", grace_period_seconds=0)
                deleted += 1
            except client.ApiException as error:
                if error.status != 404:
                    raise
        time.sleep(max(0.0, 1 - (time.monotonic() - tick)))  # the churn's pace, not a wait
    return deleted


@dataclass
class Phase:
    """What one churn with some pages connected measured."""

    lags: list[dict[str, list[float]]]
    rss_kib: list[int]
    peak_kib: int
    cpu_cores: float
    deleted: int
    load: float


def measure(api: Any, watch_pid: int, url: str, pages: int, seconds: float) -> Phase:
    """PAGES browsers on URL while crowd churns for SECONDS."""
    before = kib(watch_pid, "VmRSS")
    opened = open_pages(url, pages)
    try:
        connected = kib(watch_pid, "VmRSS")
        cpu_before, wall_before = cpu_seconds(watch_pid), time.monotonic()
        deleted = churn(api, seconds)
        cpu = (cpu_seconds(watch_pid) - cpu_before) / (time.monotonic() - wall_before)
        after, peak = kib(watch_pid, "VmRSS"), kib(watch_pid, "VmHWM")
        lags = [page.evaluate("window.chaosDrillLag") for page in opened]
    finally:
        for page in opened:
            page.close()
    assert all(lag["ms"] for lag in lags), "a page measured nothing"
    return Phase(lags, [before, connected, after], peak, cpu, deleted, os.getloadavg()[0])


def test_page_lag_and_server_cost_with_300_pods_churning(web: Any, figures: Figures) -> None:
    """One page measures the lag; then five pages load the server, whose cost is measured."""
    assert CHROMIUM is not None
    apps = client.AppsV1Api(web)
    apps.create_namespaced_deployment("demo", crowd_deployment(CROWD_REPLICAS))
    port = free_port()
    watch, output = start_cli("watch", "--namespace", "demo", "--selector", "app=crowd",
                              "--web", str(port))
    url = f"http://127.0.0.1:{port}/?measure"
    try:
        workloads.wait_steady(web, "demo", "crowd", timeout=600)
        output.wait_for(f"127.0.0.1:{port}", timeout=60)
        one = measure(web, watch.pid, url, 1, CHURN_SECONDS)
        five = measure(web, watch.pid, url, PAGES, CHURN_SECONDS / 2)
    finally:
        if watch.poll() is None:
            watch.send_signal(signal.SIGINT)
        output.finish(timeout=60)
        apps.delete_namespaced_deployment("crowd", "demo")
        wait_crowd_gone(web)
    lag, server = one.lags[0]["ms"], one.lags[0]["server"]
    figures.add("view_event_to_dom_ms_300_pods_churning", "ms", lag, goal_p99_max=200,
                p50=round(percentile(lag, 0.5), 1), p99=round(percentile(lag, 0.99), 1),
                server_share_p50=round(percentile(server, 0.5), 1),
                server_share_p99=round(percentile(server, 0.99), 1),
                pods=CROWD_REPLICAS, churn_seconds=CHURN_SECONDS, pods_deleted=one.deleted,
                load_average_1m=round(one.load, 1),
                p99_with_5_pages=[round(percentile(p["ms"], 0.99), 1) for p in five.lags],
                what="pod watch event read off the socket by `chaos-drill watch --web` to the "
                     "page's DOM holding it (Date.now() after draw minus the arrival the state "
                     "carries), one headless Chromium page; server_share is the part until the "
                     "server wrote the state; p99_with_5_pages: the same with 5 pages on this "
                     "2-core machine, which also runs the cluster")
    figures.add("view_server_with_5_pages", "MiB", [k / 1024 for k in five.rss_kib],
                peak_mib=round(five.peak_kib / 1024, 1), cpu_cores=round(five.cpu_cores, 3),
                cpu_cores_with_1_page=round(one.cpu_cores, 3),
                churn_seconds=CHURN_SECONDS / 2, pods_deleted=five.deleted,
                what="VmRSS of the watch process: before the pages, with 5 pages connected, "
                     "after the churn (samples in that order); peak is VmHWM; CPU is "
                     "(utime+stime)/wall during the churn, in cores")
    print(f"\nlag p50 {statistics.median(lag):.0f} ms, p99 {percentile(lag, 0.99):.0f} ms; "
          f"server with 5 pages {five.rss_kib[-1] / 1024:.0f} MiB, "
          f"{five.cpu_cores * 100:.0f} % of a core")
