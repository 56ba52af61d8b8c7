"""Checks on dashboards/*.json and manifests/monitoring/: the metrics they name exist, the
dashboards follow our conventions, and promtool accepts the configs, rules and rule tests.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from chaos.monitoring import MONITORING_DIR
from chaos.monitoring.dashboards import dashboard_files, dashboard_queries
from chaos.monitoring.drill_metrics import DrillMetrics
from chaos.monitoring.metrics_server import DEFAULT_METRICS_PORT

METRIC_NAME = re.compile(r"\bchaosdrill_[a-z_]+")
RECORDED_NAME = re.compile(r"\bchaosdrill:[a-z0-9_:]+")
RANGE = re.compile(r"\[([^\]]+)\]")
DASHBOARDS = {path.stem: path for path in dashboard_files()}
RULE_FILE = MONITORING_DIR / "rules.yml"


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULE_FILE.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel that shows data: rows only group them (a collapsed row holds its own)."""
    panels: list[dict[str, Any]] = dashboard["panels"]
    panels = panels + [inner for panel in panels for inner in panel.get("panels", [])]
    return [panel for panel in panels if panel["type"] != "row"]


def _rows(dashboard: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each row's title and the panels under it: its own if collapsed, else those below it."""
    rows: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] | None = None
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            current = rows[panel["title"]] = list(panel.get("panels", []))
        elif current is not None:
            current.append(panel)
    return rows


def _exported_sample_names() -> set[str]:
    """What Prometheus sees from our exporter once every method has been called."""
    registry = CollectorRegistry()
    metrics = DrillMetrics(
        registry, "demo", "web", ("pod_delete", "load"),
        phases={"pod_delete": ("injected", "ready")},
    )
    metrics.fault_injected("pod_delete")
    metrics.incident_closed("pod_delete", 1.0, {"ready": 1.0})
    metrics.replicas(ready=1, desired=1)
    metrics.autoscaler(desired=4, current=3)
    metrics.scaled("load", 30.0, 20.0)
    metrics.availability(1.0)
    metrics.slo(max_recovery_seconds=30, min_availability=0.99)
    metrics.scale_slo(max_scale_out_seconds=60, max_scale_in_seconds=90)
    return {sample.name for family in registry.collect() for sample in family.samples}


def _all_exprs() -> list[str]:
    exprs = [rule["expr"] for rule in _rules()]
    for path in DASHBOARDS.values():
        dashboard = _load(path)
        exprs += dashboard_queries(dashboard)
        exprs += [
            var["definition"] for var in dashboard["templating"]["list"] if var["type"] == "query"
        ]
    return exprs


def test_there_are_dashboards_and_queries() -> None:
    assert set(DASHBOARDS) == {"chaosdrill-overview", "chaosdrill-drill"}
    assert all(dashboard_queries(_load(path)) for path in DASHBOARDS.values())


def test_every_metric_named_by_a_dashboard_or_rule_is_exported() -> None:
    exported = _exported_sample_names()
    named = {name for expr in _all_exprs() for name in METRIC_NAME.findall(expr)}
    assert named, "no chaosdrill_ metric found in any query"
    assert named - exported == set()


def test_every_recorded_series_a_dashboard_or_rule_names_is_recorded() -> None:
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    named = {name for expr in _all_exprs() for name in RECORDED_NAME.findall(expr)}
    assert named - recorded == set()


def test_the_overview_has_an_autoscaling_row_for_load_drills() -> None:
    rows = _rows(_load(DASHBOARDS["chaosdrill-overview"]))
    assert list(rows) == ["Autoscaling"]
    exprs = [target["expr"] for panel in rows["Autoscaling"] for target in panel["targets"]]
    named = {name for expr in exprs for name in METRIC_NAME.findall(expr)}
    assert {"chaosdrill_scale_out_seconds_bucket", "chaosdrill_scale_in_seconds_bucket",
            "chaosdrill_hpa_desired_replicas", "chaosdrill_hpa_current_replicas"} <= named
    recorded = {name for expr in exprs for name in RECORDED_NAME.findall(expr)}
    assert "chaosdrill:scale_out_seconds:p95" in recorded


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_rows_span_the_width_and_hold_no_queries(name: str) -> None:
    for panel in _load(DASHBOARDS[name])["panels"]:
        if panel["type"] == "row":
            assert panel["title"] and panel["gridPos"]["w"] == 24, panel
            assert "targets" not in panel, panel["title"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_identity(name: str) -> None:
    dashboard = _load(DASHBOARDS[name])
    assert dashboard["uid"] == name
    assert dashboard["tags"] == ["chaosdrill"]
    assert dashboard["editable"] is False
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["description"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_uses_the_datasource_variable_everywhere(name: str) -> None:
    dashboard = _load(DASHBOARDS[name])
    variables = {var["name"]: var for var in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    expected = {"type": "prometheus", "uid": "${datasource}"}
    users = [*_panels(dashboard), *dashboard["annotations"]["list"]]
    users += [target for panel in _panels(dashboard) for target in panel["targets"]]
    users += [var for var in variables.values() if var["type"] == "query"]
    for user in users:
        assert user["datasource"] == expected, user.get("title", user.get("expr"))


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_panel_has_a_description_legend_and_unique_id(name: str) -> None:
    panels = _panels(_load(DASHBOARDS[name]))
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        assert panel["description"], panel["title"]
        legend = panel["options"]["legend"]
        assert legend.get("showLegend", legend.get("show")) is True, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(target["legendFormat"] for target in panel["targets"]), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panel_rates_use_the_rate_interval(name: str) -> None:
    dashboard = _load(DASHBOARDS[name])
    for panel in _panels(dashboard):
        for target in panel["targets"]:
            assert set(RANGE.findall(target["expr"])) <= {"$__rate_interval"}, target["expr"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_fault_annotation_marks_changes_of_the_last_fault_timestamp(name: str) -> None:
    annotations = _load(DASHBOARDS[name])["annotations"]["list"]
    assert any(
        item["expr"].startswith("changes(chaosdrill_last_fault_timestamp_seconds")
        for item in annotations
    )


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed: run 'make setup' (installs Debian's prometheus)")
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, check=False, timeout=120
    )


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-k8s.yml"])
def test_promtool_accepts_the_config(config: str) -> None:
    result = _promtool("check", "config", str(MONITORING_DIR / config))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_rules() -> None:
    result = _promtool("check", "rules", str(RULE_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_tests_pass() -> None:
    result = _promtool("test", "rules", str(MONITORING_DIR / "rules_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_rule_test() -> None:
    alerts = {rule["alert"] for rule in _rules() if "alert" in rule}
    rule_tests = yaml.safe_load((MONITORING_DIR / "rules_test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in rule_tests for case in test.get("alert_rule_test", [])}
    assert (
        alerts
        == tested
        == {
            "ChaosDrillRecoveryOverSLO",
            "ChaosDrillScaleOutOverSLO",
            "ChaosDrillUnrecoveredIncidents",
            "ChaosDrillAvailabilityUnderSLO",
        }
    )


def test_the_manifests_scrape_the_exporter_port_python_defines() -> None:
    """9464 is defined once, chaos.monitoring.metrics.DEFAULT_METRICS_PORT; the YAML and JSON must
    agree."""
    in_cluster = yaml.safe_load((MONITORING_DIR / "prometheus-k8s.yml").read_text())
    local = json.loads((MONITORING_DIR / "targets.json").read_text())
    targets = [t for group in local for t in group["targets"]]
    assert targets and all(t.endswith(f":{DEFAULT_METRICS_PORT}") for t in targets), targets
    found = [c for job in in_cluster["scrape_configs"] for c in job["dns_sd_configs"]]
    assert found and all(c["port"] == DEFAULT_METRICS_PORT for c in found)


def test_the_in_cluster_prometheus_finds_the_operator_pods_by_their_headless_service() -> None:
    """The DNS name it resolves is the operator's headless Service, on the metrics port."""
    in_cluster = yaml.safe_load((MONITORING_DIR / "prometheus-k8s.yml").read_text())
    names = [n for job in in_cluster["scrape_configs"] for c in job["dns_sd_configs"]
             for n in c["names"]]
    operator_dir = MONITORING_DIR.parent / "operator"
    services = {f"{d['metadata']['name']}.{d['metadata']['namespace']}.svc": d
                for path in operator_dir.glob("*.yaml") for d in yaml.safe_load_all(
                    path.read_text()) if d and d["kind"] == "Service"}
    for name in names:
        assert services[name]["spec"]["clusterIP"] == "None"
        assert DEFAULT_METRICS_PORT in [p["port"] for p in services[name]["spec"]["ports"]]
