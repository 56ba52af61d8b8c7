"""Unit tests for chaos/monitoring/ that start no Prometheus: errors, PID safety, ConfigMaps."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from chaos.cluster import processes
from chaos.cluster.processes import Process
from chaos.errors import SetupError
from chaos.monitoring.dashboards import (
    dashboard_files,
    dashboard_queries,
    format_legend,
    grafana_to_promql,
    load_dashboard,
    metric_names,
    panel_queries,
    variable_queries,
)
from chaos.monitoring.k8s import (
    MONITORING_NAMESPACE,
    dashboard_configmap,
    k8s_manifests,
    render_k8s_manifests,
)
from chaos.monitoring.process import (
    RECORD_FILE,
    default_state_dir,
    start_prometheus,
    stop_prometheus,
    write_config,
)
from chaos.monitoring.query import query


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_missing_binary_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(SetupError) as caught:
        start_prometheus(tmp_path, binary="prometheus-that-is-not-installed")
    assert str(caught.value) == (
        "prometheus not found: run 'make setup' (installs Debian's prometheus)"
    )


def test_taken_port_is_refused_before_starting(tmp_path: Path, taken_port: int) -> None:
    # "true" stands in for the binary: the port check comes first, so it never runs.
    with pytest.raises(SetupError) as caught:
        start_prometheus(tmp_path, port=taken_port, binary="true")
    assert str(caught.value) == (
        f"port {taken_port} is already in use on 127.0.0.1: pick another with --port"
    )
    assert not (tmp_path / RECORD_FILE).exists()


def test_a_prometheus_that_exits_is_reported_and_forgotten(
    tmp_path: Path, closed_port: int
) -> None:
    with pytest.raises(SetupError, match=r"prometheus exited with code 1: \(no output\)"):
        start_prometheus(tmp_path, port=closed_port, binary="false", ready_timeout=10)
    assert not (tmp_path / RECORD_FILE).exists()


def test_stop_without_a_pid_file_does_nothing(tmp_path: Path) -> None:
    assert stop_prometheus(tmp_path) is False


def test_stop_never_signals_a_pid_that_is_not_this_state_dirs_prometheus(tmp_path: Path) -> None:
    """A record whose PID now belongs to another process (here: this test's) is left alone."""
    started = processes.start_time_of(os.getpid())
    assert started is not None
    reused = Process("prometheus", os.getpid(), started + 1, "log", ("prometheus",))
    processes.save(tmp_path / RECORD_FILE, [reused])
    assert stop_prometheus(tmp_path) is False  # had it signalled, this test would be dead
    assert not (tmp_path / RECORD_FILE).exists()


def test_config_points_at_the_exporter_port(tmp_path: Path) -> None:
    config = write_config(tmp_path, exporter_port=19464)
    assert "rules.yml" in config.read_text()
    assert (tmp_path / "rules.yml").exists()
    targets = json.loads((tmp_path / "targets.json").read_text())
    assert targets == [{"targets": ["127.0.0.1:19464"], "labels": {}}]


def test_query_of_an_unreachable_prometheus_says_where(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    with pytest.raises(SetupError, match=f"prometheus not reachable at {url}"):
        query(url, "up", timeout=2)


def test_dashboard_configmap_is_built_from_the_dashboard_files() -> None:
    configmap = dashboard_configmap()
    assert configmap["metadata"]["namespace"] == MONITORING_NAMESPACE
    assert sorted(configmap["data"]) == [path.name for path in dashboard_files()]
    for path in dashboard_files():
        assert json.loads(configmap["data"][path.name]) == json.loads(path.read_text())


def _mounted_configmaps(obj: dict[str, Any]) -> set[str]:
    volumes = obj["spec"]["template"]["spec"]["volumes"]
    return {volume["configMap"]["name"] for volume in volumes if "configMap" in volume}


def test_k8s_manifests_are_complete_and_in_one_namespace() -> None:
    objects = k8s_manifests()
    assert objects[0] == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": MONITORING_NAMESPACE,
            "labels": {"app.kubernetes.io/part-of": "chaos-drill"},
        },
    }
    assert all(obj["metadata"]["namespace"] == MONITORING_NAMESPACE for obj in objects[1:])
    configmaps = {obj["metadata"]["name"] for obj in objects if obj["kind"] == "ConfigMap"}
    deployments = [obj for obj in objects if obj["kind"] == "Deployment"]
    assert {obj["metadata"]["name"] for obj in deployments} == {"prometheus", "grafana"}
    for deployment in deployments:
        assert _mounted_configmaps(deployment) <= configmaps


def test_rendered_manifests_are_yaml_with_readable_blocks() -> None:
    text = render_k8s_manifests()
    assert "  prometheus.yml: |\n" in text
    assert "  chaosdrill-overview.json: |\n" in text


def test_grafana_variables_become_promql_and_leftovers_are_refused() -> None:
    expr = 'rate(x{namespace=~"$namespace"}[$__rate_interval])'
    assert grafana_to_promql(expr) == 'rate(x{namespace=~".*"}[1m])'
    assert grafana_to_promql(expr, {"$namespace": "demo", "$__rate_interval": "5s"}) == (
        'rate(x{namespace=~"demo"}[5s])'
    )
    with pytest.raises(ValueError, match=r"unsubstituted variable in x\[\$__unknown\]"):
        grafana_to_promql("x[$__unknown]")


def test_legend_format_takes_label_values() -> None:
    assert format_legend("p95 {{fault}}", {"fault": "pod_delete"}) == "p95 pod_delete"
    assert format_legend("{{ namespace }}/{{workload}}", {"namespace": "demo"}) == "demo/"


def test_panel_queries_carry_title_legend_and_kind() -> None:
    dashboard = {
        "panels": [
            {"title": "Bars", "targets": [{"expr": "a", "legendFormat": "{{fault}}",
                                           "instant": True}]},
            {"title": "Row", "panels": [{"title": "Inner", "targets": [{"expr": "b"}]}]},
        ],
        "annotations": {"list": [{"name": "Faults", "expr": "c"}, {"name": "Builtin"}]},
        "templating": {"list": [
            {"name": "namespace", "definition": "label_values(up{job=\"x\"}, namespace)"},
            {"name": "datasource", "type": "datasource"},
        ]},
    }
    assert [(q.panel, q.expr, q.legend, q.instant) for q in panel_queries(dashboard)] == [
        ("Bars", "a", "{{fault}}", True),
        ("Inner", "b", "", False),
        ("annotation Faults", "c", "", False),
    ]
    assert dashboard_queries(dashboard) == ["a", "b", "c"]
    assert variable_queries(dashboard) == ['group by (namespace) (up{job="x"})']


def test_every_shipped_dashboard_query_becomes_plain_promql() -> None:
    for path in dashboard_files():
        dashboard = load_dashboard(path.stem)
        for found in panel_queries(dashboard):
            assert "$" not in grafana_to_promql(found.expr), found.panel


def test_default_state_dir_depends_on_who_runs_it() -> None:
    expected = "/var/lib/chaos-drill/monitor" if os.geteuid() == 0 else "chaos-drill/monitor"
    assert str(default_state_dir()).endswith(expected)


def test_metric_names_finds_metrics_and_recorded_series() -> None:
    expr = (
        'histogram_quantile(0.5, rate(chaosdrill_recovery_seconds_bucket{fault="x"}[1m]))'
        " > on (namespace) chaosdrill:slo_max_recovery_seconds or up"
    )
    assert metric_names(expr) == {
        "chaosdrill_recovery_seconds_bucket",
        "chaosdrill:slo_max_recovery_seconds",
    }
