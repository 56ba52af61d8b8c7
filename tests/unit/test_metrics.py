"""Unit tests for chaos/monitoring/metrics.py: known series at 0, bounded labels, a steady
payload."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from chaos.drill.fault_types import NAMES, OBSERVED, PHASES_BY_FAULT
from chaos.drill.loading import load_drill
from chaos.errors import SetupError
from chaos.monitoring.drill_metrics import DrillMetrics, for_drill, for_watch
from chaos.monitoring.metrics_server import MetricsServer, serve

from support import REPO, idle_crowd, thread_count

# The drill spec owns the real list (chaos.drill.fault_types.NAMES); these tests need only some
# names.
FAULTS = ("pod_delete", "container_kill", "node_drain")
PHASES = {
    "pod_delete": ("injected", "target_gone", "scheduled", "ready"),
    "container_kill": ("injected", "container_exited", "ready"),
}
ALLOWED_LABELS = {"namespace", "workload", "fault", "result", "phase", "le", "version"}


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def _metrics(registry: CollectorRegistry, workload: str = "web") -> DrillMetrics:
    return DrillMetrics(registry, "demo", workload, FAULTS, phases=PHASES, clock=lambda: 1000.0)


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    value = registry.get_sample_value(name, {"namespace": "demo", "workload": "web", **labels})
    return None if value is None else float(value)


def _series(registry: CollectorRegistry) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    return [
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in registry.collect()
        for sample in family.samples
    ]


def _exercise(metrics: DrillMetrics) -> None:
    metrics.running(True)
    metrics.fault_injected("pod_delete")
    metrics.incident_closed("pod_delete", 3.5, {"target_gone": 0.1, "scheduled": 0.02})
    metrics.incident_closed("pod_delete", None, {"target_gone": 0.1})
    metrics.replicas(ready=2, desired=3)
    metrics.container_restarts(1)
    metrics.probe(ok=True)
    metrics.probe(ok=False)
    metrics.availability(0.98)
    metrics.slo(max_recovery_seconds=30, min_availability=0.99)
    metrics.scale_slo(max_scale_out_seconds=60, max_scale_in_seconds=None)


def test_every_known_fault_and_result_series_exists_at_zero(registry: CollectorRegistry) -> None:
    _metrics(registry)
    for fault in FAULTS:
        assert _value(registry, "chaosdrill_faults_injected_total", fault=fault) == 0
        assert _value(registry, "chaosdrill_recovery_seconds_count", fault=fault) == 0
        for result in ("recovered", "unrecovered"):
            labels = {"fault": fault, "result": result}
            assert _value(registry, "chaosdrill_incidents_total", **labels) == 0
        for phase in PHASES.get(fault, ())[1:]:
            assert _value(registry, "chaosdrill_phase_seconds_count", fault=fault, phase=phase) == 0
    for result in ("ok", "error"):
        assert _value(registry, "chaosdrill_probe_requests_total", result=result) == 0
    assert _value(registry, "chaosdrill_container_restarts_total") == 0
    assert _value(registry, "chaosdrill_drill_running") == 0
    assert registry.get_sample_value("chaosdrill_build_info", {"version": "0.1.0"}) == 1


def test_calls_land_in_their_series(registry: CollectorRegistry) -> None:
    _exercise(_metrics(registry))
    assert _value(registry, "chaosdrill_faults_injected_total", fault="pod_delete") == 1
    assert _value(registry, "chaosdrill_last_fault_timestamp_seconds", fault="pod_delete") == 1000
    recovered = {"fault": "pod_delete", "result": "recovered"}
    unrecovered = {"fault": "pod_delete", "result": "unrecovered"}
    assert _value(registry, "chaosdrill_incidents_total", **recovered) == 1
    assert _value(registry, "chaosdrill_incidents_total", **unrecovered) == 1
    assert _value(registry, "chaosdrill_recovery_seconds_sum", fault="pod_delete") == 3.5
    assert _value(registry, "chaosdrill_recovery_seconds_count", fault="pod_delete") == 1
    phase = {"fault": "pod_delete", "phase": "target_gone"}
    assert _value(registry, "chaosdrill_phase_seconds_count", **phase) == 2
    assert _value(registry, "chaosdrill_workload_ready_replicas") == 2
    assert _value(registry, "chaosdrill_workload_desired_replicas") == 3
    assert _value(registry, "chaosdrill_probe_requests_total", result="error") == 1
    assert _value(registry, "chaosdrill_availability_ratio") == 0.98
    assert _value(registry, "chaosdrill_drill_running") == 1
    assert _value(registry, "chaosdrill_slo_max_recovery_seconds") == 30
    assert _value(registry, "chaosdrill_slo_max_scale_out_seconds") == 60
    assert _value(registry, "chaosdrill_slo_max_scale_in_seconds") is None, "not set, not shown"


def test_labels_are_bounded_and_names_prefixed(registry: CollectorRegistry) -> None:
    _exercise(_metrics(registry))
    for name, labels in _series(registry):
        assert name.startswith("chaosdrill_")
        assert {key for key, _ in labels} <= ALLOWED_LABELS, name


def test_payload_does_not_grow_as_the_same_calls_repeat(registry: CollectorRegistry) -> None:
    metrics = _metrics(registry)
    _exercise(metrics)
    series_before = _series(registry)
    size_before = len(generate_latest(registry))
    for _ in range(500):
        _exercise(metrics)
    assert _series(registry) == series_before
    # Only the digits of the values may grow.
    assert len(generate_latest(registry)) < size_before * 1.1


def test_unknown_fault_or_phase_is_refused(registry: CollectorRegistry) -> None:
    metrics = _metrics(registry)
    with pytest.raises(ValueError, match="unknown fault 'pod_restart'"):
        metrics.fault_injected("pod_restart")
    with pytest.raises(ValueError, match="unknown phase 'web-7d4f9-abcde' of pod_delete"):
        metrics.incident_closed("pod_delete", 1.0, {"web-7d4f9-abcde": 1.0})
    with pytest.raises(ValueError, match="unknown phase 'container_exited' of pod_delete"):
        metrics.incident_closed("pod_delete", 1.0, {"container_exited": 1.0})


def test_phase_series_exist_only_for_each_faults_own_phases(registry: CollectorRegistry) -> None:
    _metrics(registry)
    phases = {
        (labels["fault"], labels["phase"])
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "chaosdrill_phase_seconds_count"
        for labels in [sample.labels]
    }
    assert phases == {
        ("pod_delete", "target_gone"),
        ("pod_delete", "scheduled"),
        ("pod_delete", "ready"),
        ("container_kill", "container_exited"),
        ("container_kill", "ready"),
    }


def test_availability_outside_zero_to_one_is_refused(registry: CollectorRegistry) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        _metrics(registry).availability(99.0)


def test_two_workloads_share_one_registry(registry: CollectorRegistry) -> None:
    _metrics(registry, "web").fault_injected("pod_delete")
    _metrics(registry, "api").fault_injected("node_drain")
    assert _value(registry, "chaosdrill_faults_injected_total", fault="pod_delete") == 1
    api = {"namespace": "demo", "workload": "api", "fault": "node_drain"}
    assert registry.get_sample_value("chaosdrill_faults_injected_total", api) == 1


def test_serve_answers_metrics_on_loopback(registry: CollectorRegistry) -> None:
    _metrics(registry).fault_injected("pod_delete")
    with serve(registry, port=0) as server:
        assert server.host == "127.0.0.1"
        with urllib.request.urlopen(server.url, timeout=5) as response:
            body = response.read().decode()
    assert 'chaosdrill_faults_injected_total{fault="pod_delete"' in body


def test_the_metrics_are_marked_nosniff(registry: CollectorRegistry) -> None:
    with serve(registry, port=0) as server:
        with urllib.request.urlopen(server.url, timeout=5) as response:
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Content-Type"].startswith("text/plain")


def test_idle_connections_are_capped_and_closed_after_the_idle_timeout(
    registry: CollectorRegistry,
) -> None:
    cap, idle = 8, 1.0
    with MetricsServer(registry, 0, "127.0.0.1", max_connections=cap,
                       idle_seconds=idle) as server:
        threads = thread_count()
        crowd = idle_crowd(server.host, server.port, 300, server.open_connections, timeout=30)
        with urllib.request.urlopen(server.url, timeout=5) as response:
            assert response.status == 200, "the exporter still answers afterwards"
    assert crowd.still_open == 0, "the server closes every connection"
    assert crowd.peak_threads <= threads + cap + 3, "one thread per held connection at most"
    assert len(crowd.held) >= cap and len(crowd.turned_away) >= 200
    assert min(crowd.held) >= idle * 0.95, "a held connection lasts the idle timeout"
    assert max(crowd.turned_away) < idle / 2, "one over the cap is answered at once"


def test_serve_on_a_taken_port_says_what_to_do(
    registry: CollectorRegistry, taken_port: int
) -> None:
    with pytest.raises(SetupError) as caught:
        serve(registry, port=taken_port)
    assert str(caught.value) == (
        f"port {taken_port} is already in use on 127.0.0.1: pick another with --metrics-port"
    )


def test_a_second_drill_of_a_workload_keeps_its_history(registry: CollectorRegistry) -> None:
    _metrics(registry).fault_injected("pod_delete")
    _metrics(registry)
    assert _value(registry, "chaosdrill_faults_injected_total", fault="pod_delete") == 1
    assert _value(registry, "chaosdrill_last_fault_timestamp_seconds", fault="pod_delete") == 1000


def test_no_created_series_are_exported(registry: CollectorRegistry) -> None:
    _exercise(_metrics(registry))
    assert b"_created" not in generate_latest(registry)


def test_a_drill_gets_every_faults_series_and_its_own_faults_phases(
    registry: CollectorRegistry,
) -> None:
    drill = load_drill(REPO / "manifests/drills/web-container-kill.yaml")
    metrics = for_drill(registry, drill)
    for fault in NAMES:
        assert _value(registry, "chaosdrill_faults_injected_total", fault=fault) == 0
    phases = {
        (sample.labels["fault"], sample.labels["phase"])
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "chaosdrill_phase_seconds_count"
    }
    assert phases == {("container_kill", p) for p in PHASES_BY_FAULT["container_kill"][1:]}
    metrics.incident_closed("container_kill", 1.2, {"container_exited": 0.3, "ready": 0.9})
    assert _value(registry, "chaosdrill_recovery_seconds_count", fault="container_kill") == 1


def test_a_watch_has_phase_series_for_every_fault_it_can_observe() -> None:
    registry = CollectorRegistry()
    metrics = for_watch(registry, "demo", "web")
    phases = {
        (sample.labels["fault"], sample.labels["phase"])
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "chaosdrill_phase_seconds_count"
    }
    assert phases == {(f, p) for f in OBSERVED for p in PHASES_BY_FAULT[f][1:]}
    metrics.incident_closed("node_stop", None, {"node_not_ready": 30.0})
    assert _value(registry, "chaosdrill_incidents_total", fault="node_stop",
                  result="unrecovered") == 1


def test_load_drills_record_scale_times_and_the_autoscalers_replicas(
        registry: CollectorRegistry) -> None:
    metrics = DrillMetrics(registry, "demo", "web", ("pod_delete", "load"), clock=lambda: 1.0)
    assert _value(registry, "chaosdrill_scale_out_seconds_count", fault="load") == 0
    assert _value(registry, "chaosdrill_scale_out_seconds_count", fault="pod_delete") is None
    metrics.scaled("load", 24.5, None)
    metrics.scaled("load", 30.0, 41.0)
    metrics.autoscaler(desired=6, current=4)
    assert _value(registry, "chaosdrill_scale_out_seconds_count", fault="load") == 2
    assert _value(registry, "chaosdrill_scale_in_seconds_sum", fault="load") == 41.0
    assert _value(registry, "chaosdrill_scale_in_seconds_bucket", fault="load", le="45.0") == 1
    assert _value(registry, "chaosdrill_hpa_desired_replicas") == 6
    assert _value(registry, "chaosdrill_hpa_current_replicas") == 4


def test_an_exporter_with_no_drill_yet_still_says_what_it_is() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from chaos.monitoring.metrics import register_families

    registry = CollectorRegistry()
    register_families(registry)
    text = generate_latest(registry).decode()
    assert "chaosdrill_build_info{" in text
    assert 'chaosdrill_faults_injected_total{' not in text  # no drill, no workload series
