"""A real Prometheus (chaos/monitoring/process.py) scrapes a DrillMetrics exporter on loopback:
the values arrive, the rules evaluate, and every query of every dashboard returns data. No
cluster needed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from chaos.cluster import processes
from chaos.drill.fault_types import NAMES, PHASES_BY_FAULT
from chaos.drill.timeline import Incident
from chaos.monitoring.dashboards import (
    dashboard_files,
    dashboard_queries,
    grafana_to_promql,
    variable_queries,
)
from chaos.monitoring.drill_metrics import DrillMetrics
from chaos.monitoring.metrics_server import serve
from chaos.monitoring.process import (
    RECORD_FILE,
    PrometheusProcess,
    start_prometheus,
    stop_prometheus,
)
from chaos.monitoring.query import query, wait_for

from support import free_port, has_finite_value, needs_prometheus

pytestmark = [pytest.mark.e2e, needs_prometheus]

DEADLINE_SECONDS = 60.0


@dataclass(frozen=True)
class Drill:
    prometheus: PrometheusProcess
    metrics: DrillMetrics


def _command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except FileNotFoundError:
        return ""


def _incident(fault: str, seconds_per_phase: float, recovered: bool = True) -> Incident:
    incident = Incident(
        id="r1-0", round=1, fault=fault, namespace="demo", workload="web", target_pod="web-0"
    )
    phases = PHASES_BY_FAULT[fault] if recovered else PHASES_BY_FAULT[fault][:2]
    for index, phase in enumerate(phases):
        incident.mark(phase, 100.0 + index * seconds_per_phase)
    return incident


def _record_a_drill(metrics: DrillMetrics) -> None:
    metrics.running(True)
    metrics.slo(max_recovery_seconds=30, min_availability=0.99)
    for incident in (_incident("pod_delete", 0.8), _incident("container_kill", 1.5)):
        metrics.fault_injected(incident.fault)
        metrics.incident_closed(
            incident.fault, incident.recovery_seconds, incident.phase_durations()
        )
    unrecovered = _incident("pod_delete", 2.0, recovered=False)
    metrics.fault_injected("pod_delete")
    metrics.incident_closed(
        "pod_delete", unrecovered.recovery_seconds, unrecovered.phase_durations()
    )
    metrics.replicas(ready=2, desired=3)
    _record_a_load(metrics)
    metrics.container_restarts(1)
    for ok in (True,) * 19 + (False,):
        metrics.probe(ok)
    metrics.availability(0.95)


def _record_a_load(metrics: DrillMetrics) -> None:
    """A 36 s scale-out: over this drill's 30 s scale-out SLO and its 30 s recovery SLO, which
    a load's recovery (its scale-out) must not trip."""
    metrics.scale_slo(max_scale_out_seconds=30, max_scale_in_seconds=90)
    load = _incident("load", 9.0)
    metrics.fault_injected("load")
    for desired, current in ((3, 3), (5, 3), (5, 5)):
        metrics.autoscaler(desired=desired, current=current)
    metrics.incident_closed("load", load.recovery_seconds, load.phase_durations())
    metrics.scaled("load", load.recovery_seconds, 20.0)
    metrics.autoscaler(desired=3, current=3)


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drill]:
    registry = CollectorRegistry()
    metrics = DrillMetrics(registry, "demo", "web", NAMES, phases=PHASES_BY_FAULT)
    state_dir: Path = tmp_path_factory.mktemp("prometheus")
    with serve(registry, port=0) as exporter:
        prometheus = start_prometheus(state_dir, port=free_port(), exporter_port=exporter.port)
        try:
            # Let Prometheus see the zeros first, so rates and changes() see the increase.
            zeros = 'chaosdrill_faults_injected_total{namespace="demo", workload="web"}'
            wait_for(prometheus.url, zeros, lambda found: len(found) == len(NAMES))
            _record_a_drill(metrics)
            yield Drill(prometheus, metrics)
        finally:
            stop_prometheus(state_dir)


def test_prometheus_runs_on_loopback_with_a_pid_file(drill: Drill) -> None:
    assert drill.prometheus.url.startswith("http://127.0.0.1:")
    record = processes.load(drill.prometheus.state_dir / RECORD_FILE)
    assert [p.pid for p in record] == [drill.prometheus.pid]
    up = wait_for(drill.prometheus.url, 'up{job="chaos-drill"}', has_finite_value)
    assert [sample.value for sample in up] == [1.0]


@pytest.mark.parametrize(
    ("promql", "expected"),
    [
        ('chaosdrill_faults_injected_total{fault="pod_delete"}', 2),
        ('chaosdrill_incidents_total{fault="pod_delete", result="unrecovered"}', 1),
        ('chaosdrill_incidents_total{fault="container_kill", result="recovered"}', 1),
        ('chaosdrill_incidents_total{fault="node_stop", result="unrecovered"}', 0),
        ('chaosdrill_recovery_seconds_sum{fault="pod_delete"}', 4.0),
        ('chaosdrill_phase_seconds_count{fault="container_kill", phase="restarted"}', 1),
        ('chaosdrill_scale_out_seconds_sum{fault="load"}', 36.0),
        ('chaosdrill_scale_in_seconds_bucket{fault="load", le="20.0"}', 1),
        ("chaosdrill_hpa_current_replicas", 3),
        ("chaosdrill_slo_max_scale_out_seconds", 30),
        ("chaosdrill_workload_ready_replicas", 2),
        ("chaosdrill_workload_desired_replicas", 3),
        ("chaosdrill_container_restarts_total", 1),
        ('chaosdrill_probe_requests_total{result="error"}', 1),
        ("chaosdrill_availability_ratio", 0.95),
        ("chaosdrill_drill_running", 1),
        ('chaosdrill_build_info{version!=""}', 1),
    ],
)
def test_recorded_values_arrive(drill: Drill, promql: str, expected: float) -> None:
    samples = wait_for(
        drill.prometheus.url,
        promql,
        lambda found: [sample.value for sample in found] == [pytest.approx(expected)],
    )
    assert len(samples) == 1


@pytest.mark.parametrize(
    "alert",
    ["ChaosDrillUnrecoveredIncidents", "ChaosDrillAvailabilityUnderSLO",
     "ChaosDrillScaleOutOverSLO"],
)
def test_alerts_fire_on_a_bad_drill(drill: Drill, alert: str) -> None:
    wait_for(drill.prometheus.url, f'ALERTS{{alertname="{alert}"}}', has_finite_value)


def test_fast_recoveries_do_not_alert(drill: Drill) -> None:
    url = drill.prometheus.url
    p95 = wait_for(url, 'chaosdrill:recovery_seconds:p95{fault="pod_delete"}', has_finite_value)
    assert p95[0].value < 30
    load = wait_for(url, 'chaosdrill:recovery_seconds:p95{fault="load"}', has_finite_value)
    assert load[0].value > 30, "a load's recovery is over the SLO, yet must not alert"
    wait_for(url, 'ALERTS{alertname="ChaosDrillScaleOutOverSLO"}', has_finite_value)
    wait_for(url, 'ALERTS{alertname="ChaosDrillUnrecoveredIncidents"}', has_finite_value)
    assert query(url, 'ALERTS{alertname="ChaosDrillRecoveryOverSLO"}') == []


def _dashboard_queries() -> list[tuple[str, str]]:
    found = []
    for path in dashboard_files():
        dashboard = json.loads(path.read_text())
        found += [(path.stem, expr) for expr in dashboard_queries(dashboard)]
        found += [(path.stem, expr) for expr in variable_queries(dashboard)]
    return found


@pytest.mark.parametrize(("dashboard", "expr"), _dashboard_queries())
def test_every_dashboard_query_returns_data(drill: Drill, dashboard: str, expr: str) -> None:
    wait_for(drill.prometheus.url, grafana_to_promql(expr), has_finite_value)


def test_stop_by_pid_file_from_another_process(tmp_path: Path) -> None:
    """The CLI starts and stops Prometheus in separate runs: stopping must not need the child."""
    start = (
        "import sys; from pathlib import Path; "
        "from chaos.monitoring.process import start_prometheus; "
        "print(start_prometheus(Path(sys.argv[1]), port=int(sys.argv[2])).pid)"
    )
    started = subprocess.run(
        [sys.executable, "-c", start, str(tmp_path), str(free_port())],
        capture_output=True,
        text=True,
        check=True,
        timeout=DEADLINE_SECONDS,
    )
    pid = int(started.stdout)
    try:
        assert _command_of(pid).endswith("prometheus")
    finally:
        assert stop_prometheus(tmp_path) is True
    assert _command_of(pid) == ""  # gone, or a zombie left to an init that does not reap
    assert not (tmp_path / RECORD_FILE).exists()
    assert stop_prometheus(tmp_path) is False
