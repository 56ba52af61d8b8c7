"""Real drills on the local cluster with a real Prometheus scraping their exporter: the counters
match summary.json, the recovery and scale histograms count the recoveries, the autoscaler's
gauges follow the load, every dashboard query returns data, and the overview renders. Also
`chaos-drill run --metrics-port` serving its final values through the grace period.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from prometheus_client import CollectorRegistry

from chaos.cluster import kube, workloads
from chaos.cluster.local import LocalCluster
from chaos.drill.fault_types import LOAD_PHASES, NAMES
from chaos.drill.faults.load import LOAD_LABEL
from chaos.drill.loading import parse_drill
from chaos.drill.spec import Drill
from chaos.monitoring import render
from chaos.monitoring.dashboards import (
    dashboard_files,
    grafana_to_promql,
    load_dashboard,
    metric_names,
    panel_queries,
    variable_queries,
)
from chaos.monitoring.drill_metrics import for_drill
from chaos.monitoring.metrics_server import MetricsServer, serve
from chaos.monitoring.process import PrometheusProcess, start_prometheus, stop_prometheus
from chaos.monitoring.query import query, query_range, wait_for
from chaos.results.journal import read_journal
from chaos.results.summary import build_summary
from chaos.run.runner import DrillRun, RunOptions

from support import (
    REPO,
    free_port,
    has_finite_point,
    has_finite_value,
    needs_prometheus,
    pids_with_argument,
)

# The test that first asks for `drilled` runs all the drills (about four minutes with the
# load drill's minute and a half), beyond the default 300 s.
pytestmark = [pytest.mark.e2e, needs_prometheus, pytest.mark.timeout(600)]

DRILLS = REPO / "manifests" / "drills"
# The load drill (about a minute and a half: a 40 s load, then the scale-in) goes first, with
# web's HPA, which is then removed so the other drills see web as they always do.
ROUNDS = {"load": 1, "pod_delete": 3, "container_kill": 2}
DRILL_FILES = {"load": "web-load.yaml", "pod_delete": "web-pod-kill.yaml",
               "container_kill": "web-container-kill.yaml"}
WEB = '{namespace="demo", workload="web"}'
DEADLINE_SECONDS = 60.0


@dataclass
class Drilled:
    """The drills, run once for the module, and what they wrote. A drill that failed is in
    FAILED with its cause, not in SUMMARIES: a test reading it fails with that cause, while the
    tests reading the drills that completed still pass."""

    summaries: dict[str, dict[str, Any]]
    began: float
    ended: float
    failed: dict[str, str] = field(default_factory=dict)
    scrape_failed: str | None = None
    """Why Prometheus holds no scrape taken after the drills ended, if it does not."""
    out: Path | None = None
    """The folder holding each drill's results, by fault."""

    def need(self, *faults: str, scraped: bool = True) -> None:
        """Fails the test with the cause when the drill of any of FAULTS (every drill when none
        is named) failed, or, if SCRAPED, the final scrape is missing."""
        for fault in faults or tuple(ROUNDS):
            if fault in self.failed:
                pytest.fail(f"the {fault} drill of this module failed: {self.failed[fault]}")
        if scraped and self.scrape_failed is not None:
            pytest.fail(f"the drills of this module ran, but Prometheus has no scrape of their "
                        f"final values: {self.scrape_failed}")

    def summary(self, fault: str) -> dict[str, Any]:
        """FAULT's summary.json (its drill completed; Prometheus may not have the end)."""
        self.need(fault, scraped=False)
        return self.summaries[fault]

    def incidents(self, fault: str) -> list[dict[str, Any]]:
        """FAULT's incidents, for comparing with what Prometheus scraped."""
        self.need(fault)
        incidents: list[dict[str, Any]] = self.summaries[fault]["incidents"]
        return incidents

    def recovered(self, fault: str) -> list[float]:
        return [i["recovery_seconds"] for i in self.incidents(fault)
                if i["recovery_seconds"] is not None]


def cause(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def is_timeout(error: BaseException) -> bool:
    """pytest-timeout's failure, which must end the test rather than be kept as a cause."""
    return isinstance(error, pytest.fail.Exception) and str(error).startswith("Timeout")


@dataclass
class Stack:
    """The exporter and the Prometheus scraping it, for the whole module."""

    registry: CollectorRegistry
    exporter: MetricsServer
    prometheus: PrometheusProcess
    drilled: list[Drilled] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.prometheus.url


def drill_document(fault: str) -> Drill:
    """The shipped example drill of this fault, with this test's rounds and short intervals."""
    path = DRILLS / DRILL_FILES[fault]
    document = yaml.safe_load(path.read_text())
    document["spec"].update(rounds=ROUNDS[fault], intervalSeconds=2)
    # A few seconds of probing make a small denominator: one restart can cost 6 % of requests.
    document["spec"]["slo"]["minAvailability"] = 0.5
    if fault == "load":  # room for a machine shared by other work
        document["spec"]["slo"].update(maxScaleOutSeconds=90, maxScaleInSeconds=120)
    return parse_drill(yaml.safe_dump(document), str(path))


def value(url: str, promql: str) -> float:
    samples = query(url, promql)
    assert len(samples) == 1, f"{promql} gives {samples}"
    return samples[0].value


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    registry = CollectorRegistry()
    state_dir = tmp_path_factory.mktemp("prometheus")
    with serve(registry, port=0) as exporter:
        prometheus = start_prometheus(state_dir, port=free_port(), exporter_port=exporter.port)
        try:
            yield Stack(registry, exporter, prometheus)
        finally:
            assert stop_prometheus(state_dir) is True
    assert pids_with_argument(f"--storage.tsdb.path={state_dir / 'data'}") == []


def run_drill_of(stack: Stack, cluster: LocalCluster, api: Any, out: Path, fault: str,
                 first: bool) -> dict[str, Any]:
    """One drill into the module's registry, as a `chaos-drill run --metrics-port` would; its
    summary."""
    drill = drill_document(fault)
    metrics = for_drill(stack.registry, drill)
    if first:  # Prometheus sees the zeros first, so rates see every increase
        zeros = f"chaosdrill_faults_injected_total{WEB}"
        wait_for(stack.url, zeros, lambda found: len(found) == len(NAMES), DEADLINE_SECONDS)
    options = RunOptions(out_dir=out / fault, metrics=metrics)
    autoscaled = fault == "load"
    if autoscaled:
        workloads.set_autoscaling(api, True, print)
    try:
        DrillRun(drill, cluster, options, print).run()
    finally:
        if autoscaled:
            workloads.set_autoscaling(api, False, print)
    summary: dict[str, Any] = json.loads((out / fault / "summary.json").read_text())
    return summary


def run_drills(stack: Stack, cluster: LocalCluster, api: Any, out: Path) -> Drilled:
    """Runs every drill into one registry, as `chaos-drill run`s of one exporter would; one that
    fails is kept with its cause, and the others still run."""
    drilled = Drilled({}, time.time(), 0.0, out=out)
    for fault in ROUNDS:
        try:
            drilled.summaries[fault] = run_drill_of(stack, cluster, api, out, fault,
                                                    first=fault == next(iter(ROUNDS)))
        except (Exception, pytest.fail.Exception) as error:
            if is_timeout(error):
                raise
            print(f"the {fault} drill failed: {cause(error)}", flush=True)
            drilled.failed[fault] = cause(error)
    drilled.ended = time.time()
    # A scrape that began after the drills ended holds their final values.
    try:
        wait_for(stack.url, f"timestamp(chaosdrill_drill_running{WEB})",
                 lambda found: bool(found) and found[0].value > drilled.ended + 1,
                 DEADLINE_SECONDS)
    except Exception as error:
        drilled.scrape_failed = cause(error)
    return drilled


@pytest.fixture
def drilled(stack: Stack, cluster_lock: None, request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Drilled:
    """The drills' results; the first test to ask runs them on a fresh `web`. Later tests only
    query Prometheus, so they skip the per-test `web` fixture; naming `cluster_lock` here makes
    the session take the machine's lock before its first test. When `web` itself fails, that
    test errors with it and the later ones fail naming it, without trying again."""
    if not stack.drilled:
        try:
            api = request.getfixturevalue("web")
            cluster: LocalCluster = request.getfixturevalue("cluster")
        except (Exception, pytest.fail.Exception) as error:
            if not is_timeout(error):
                failed = {fault: f"the cluster or web was not ready: {cause(error)}"
                          for fault in ROUNDS}
                stack.drilled.append(Drilled({}, time.time(), time.time(), failed))
            raise
        stack.drilled.append(run_drills(stack, cluster, api, tmp_path_factory.mktemp("drills")))
    return stack.drilled[0]


@pytest.mark.parametrize("fault", list(ROUNDS))
def test_the_drill_did_what_its_document_says(drilled: Drilled, fault: str) -> None:
    summary = drilled.summary(fault)
    assert summary["passed"], summary["slo_checks"]
    assert Counter(i["fault"] for i in summary["incidents"]) == {fault: ROUNDS[fault]}


def test_load_scaled_web_out_and_in_as_the_autoscalers_own_record_says(drilled: Drilled) -> None:
    """The load drill's phases in order, its peak the HPA's own desiredReplicas, its
    scale_decided at the HPA's SuccessfulRescale Event, scaled_in after the load, no Job left."""
    drilled.need("load", scraped=False)
    assert drilled.out is not None
    records = read_journal(drilled.out / "load" / "journal.jsonl")
    summary = build_summary(records)
    (incident,) = summary.incidents
    assert list(incident.phases) == list(LOAD_PHASES), incident.phases
    assert incident.ordered, incident.phases
    assert incident.peak_replicas is not None and incident.peak_replicas > 3
    assert incident.recovery_seconds is not None and incident.scale_in_seconds is not None
    desired = [r.get("desired") for r in records if r.event == "autoscaler"]
    assert max(desired) > 3 and incident.peak_replicas == max(desired), desired
    rescales = [r for r in records if r.event == "k8s_event"
                and r.get("reason") == "SuccessfulRescale"]
    assert rescales, "the HPA's SuccessfulRescale event was not recorded"
    injected = next(r.mono for r in records if r.event == "fault_injected")
    decided = next(r for r in records if r.event == "phase" and r.get("phase") == "scale_decided")
    assert decided.get("api_time"), "scale_decided carries the HPA's lastScaleTime"
    first_up = min(r.mono for r in rescales if r.mono >= injected)
    assert abs(first_up - decided.mono) < 5, (first_up, decided.mono)
    scaled_in = next(r.mono for r in records if r.event == "phase"
                     and r.get("phase") == "scaled_in")
    load_seconds = drill_document("load").fault.duration_seconds
    assert load_seconds and scaled_in - injected >= load_seconds
    jobs = client.BatchV1Api(kube.api_client(LocalCluster().kubeconfig())).list_namespaced_job(
        "demo", label_selector=LOAD_LABEL).items
    assert [j.metadata.name for j in jobs if not j.metadata.deletion_timestamp] == []


@pytest.mark.parametrize("fault", list(ROUNDS))
def test_faults_injected_match_the_summary(stack: Stack, drilled: Drilled, fault: str) -> None:
    promql = f'chaosdrill_faults_injected_total{{fault="{fault}", namespace="demo"}}'
    assert value(stack.url, promql) == len(drilled.incidents(fault))


@pytest.mark.parametrize("fault", list(ROUNDS))
def test_incidents_by_result_match_the_summary(stack: Stack, drilled: Drilled,
                                               fault: str) -> None:
    recovered, total = len(drilled.recovered(fault)), len(drilled.incidents(fault))
    by_result = {
        sample.labels["result"]: sample.value
        for sample in query(stack.url, f'chaosdrill_incidents_total{{fault="{fault}"}}')
    }
    assert by_result == {"recovered": recovered, "unrecovered": total - recovered}


@pytest.mark.parametrize("fault", list(ROUNDS))
def test_recovery_histogram_counts_the_recoveries(stack: Stack, drilled: Drilled,
                                                  fault: str) -> None:
    recovered = drilled.recovered(fault)
    labels = f'{{fault="{fault}", namespace="demo", workload="web"}}'
    assert value(stack.url, f"chaosdrill_recovery_seconds_count{labels}") == len(recovered)
    # summary.json keeps milliseconds; the histogram the full float
    total = value(stack.url, f"chaosdrill_recovery_seconds_sum{labels}")
    assert total == pytest.approx(sum(recovered), abs=0.001 * len(recovered))
    inf = value(stack.url, f'chaosdrill_recovery_seconds_bucket{{le="+Inf", fault="{fault}"}}')
    assert inf == len(recovered)


def test_scale_histograms_match_the_load_summary(stack: Stack, drilled: Drilled) -> None:
    (incident,) = drilled.incidents("load")
    out, back = incident["recovery_seconds"], incident["scale_in_seconds"]
    assert out is not None and back is not None, incident
    labels = '{fault="load", namespace="demo", workload="web"}'
    for name, seconds in (("scale_out", out), ("scale_in", back)):
        assert value(stack.url, f"chaosdrill_{name}_seconds_count{labels}") == 1
        # summary.json keeps milliseconds; the histogram the full float
        assert value(stack.url, f"chaosdrill_{name}_seconds_sum{labels}") == pytest.approx(
            seconds, abs=0.001)
    assert value(stack.url, f"chaosdrill_slo_max_scale_out_seconds{WEB}") == 90
    assert value(stack.url, f"chaosdrill_slo_max_scale_in_seconds{WEB}") == 120


def test_autoscaler_gauges_peak_with_the_load_and_end_back_at_three(stack: Stack,
                                                               drilled: Drilled) -> None:
    (incident,) = drilled.incidents("load")
    window = f"{math.ceil(time.time() - drilled.began) + 5}s"
    peak = value(stack.url, f"max_over_time(chaosdrill_hpa_desired_replicas{WEB}[{window}])")
    assert peak == incident["peak_replicas"] > 3
    assert value(stack.url, f"chaosdrill_hpa_desired_replicas{WEB}") == 3
    # the pods are back to 3 before the HPA's next sync counts them: the drill waits for it, so
    # the gauge does not end on a stale surge value
    assert value(stack.url, f"chaosdrill_hpa_current_replicas{WEB}") == 3


def test_probe_counters_match_the_summaries(stack: Stack, drilled: Drilled) -> None:
    drilled.need()
    requests = sum(s["availability"]["requests"] for s in drilled.summaries.values())
    failures = sum(s["availability"]["failures"] for s in drilled.summaries.values())
    assert requests > 0
    by_result = {
        sample.labels["result"]: sample.value
        for sample in query(stack.url, f"chaosdrill_probe_requests_total{WEB}")
    }
    assert by_result == {"ok": requests - failures, "error": failures}
    last = drilled.summaries["container_kill"]["availability"]["ratio"]
    assert value(stack.url, f"chaosdrill_availability_ratio{WEB}") == pytest.approx(last)


def test_workload_gauges_end_healed_and_idle(stack: Stack, drilled: Drilled) -> None:
    drilled.need()
    assert value(stack.url, f"chaosdrill_workload_desired_replicas{WEB}") == 3
    assert value(stack.url, f"chaosdrill_workload_ready_replicas{WEB}") == 3
    assert value(stack.url, f"chaosdrill_drill_running{WEB}") == 0
    # every container_kill restarts one container in place; pod_delete replaces pods instead
    kills = len(drilled.incidents("container_kill"))
    assert value(stack.url, f"chaosdrill_container_restarts_total{WEB}") == kills
    stamp = value(stack.url, 'chaosdrill_last_fault_timestamp_seconds{fault="pod_delete"}')
    assert drilled.began < stamp < drilled.ended


def _empty_queries(stack: Stack, drilled: Drilled, dashboard: str) -> list[str]:
    """The queries of a dashboard that Grafana would show as empty over the drill."""
    start, end = drilled.began - 5, drilled.ended + 5
    found = load_dashboard(dashboard)
    empty = []
    for target in panel_queries(found):
        promql = grafana_to_promql(target.expr)
        if target.instant:
            has_data = has_finite_value(query(stack.url, promql, at=end))
        else:
            has_data = has_finite_point(query_range(stack.url, promql, start, end, 1.0))
        if not has_data:
            empty.append(f"{target.panel}: {promql}")
    for promql in variable_queries(found):
        if not query(stack.url, grafana_to_promql(promql), at=end):
            empty.append(f"variable: {promql}")
    return empty


@pytest.mark.parametrize("dashboard", [path.stem for path in dashboard_files()])
def test_every_panel_and_annotation_query_returns_data(stack: Stack, drilled: Drilled,
                                                       dashboard: str) -> None:
    drilled.need()
    assert _empty_queries(stack, drilled, dashboard) == []


def test_every_metric_the_dashboards_and_rules_name_has_series(stack: Stack,
                                                               drilled: Drilled) -> None:
    drilled.need()
    exprs = [q.expr for path in dashboard_files() for q in panel_queries(load_dashboard(path.stem))]
    rules = yaml.safe_load((REPO / "manifests/monitoring/rules.yml").read_text())["groups"]
    exprs += [rule["expr"] for group in rules for rule in group["rules"]]
    names = sorted({name for expr in exprs for name in metric_names(expr)})
    assert len(names) > 10
    missing = [name for name in names
               if not query(stack.url, name, at=drilled.ended + 1)]
    assert missing == []


def test_the_overview_renders_with_data_in_every_panel(stack: Stack, drilled: Drilled,
                                                       tmp_path: Path) -> None:
    out = tmp_path / "overview.png"
    drilled.need()
    panels = render.render(stack.url, out, drilled.began - 5, drilled.ended + 5)
    assert [panel.title for panel in panels] == list(render.MAIN_PANELS)
    assert [panel.title for panel in panels if not panel.has_data] == []
    markers = render.fetch_markers(stack.url, drilled.began - 5, drilled.ended + 5)
    assert Counter(marker.fault for marker in markers) == ROUNDS
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 20_000


def test_cli_run_serves_final_metrics_until_ctrl_c_ends_the_grace(
    web: Any, tmp_path: Path
) -> None:
    document = yaml.safe_load((DRILLS / DRILL_FILES["pod_delete"]).read_text())
    document["spec"].update(rounds=1, intervalSeconds=0)
    drill = tmp_path / "drill.yaml"
    drill.write_text(yaml.safe_dump(document))
    exporter_port = free_port()
    prometheus = start_prometheus(tmp_path / "prometheus", port=free_port(),
                                  exporter_port=exporter_port)
    command = [sys.executable, "-m", "chaos", "run", str(drill), "--out", str(tmp_path / "out"),
               "--metrics-port", str(exporter_port), "--metrics-grace", "300"]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_for(prometheus.url, f"chaosdrill_drill_running{WEB} == 0 and "
                 f'on () chaosdrill_faults_injected_total{{fault="pod_delete"}} == 1',
                 has_finite_value, timeout=180)
        assert process.poll() is None, "the final values must be served during the grace"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
        prometheus.stop()
    assert process.returncode == 0, stderr
    assert "serving final metrics for 300s" in stderr
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", exporter_port)) != 0, "the exporter must close"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert len(summary["incidents"]) == 1
    assert math.isfinite(summary["incidents"][0]["recovery_seconds"])
