"""A drill's series leave the operator's exporter when no drill of that workload claims them."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, generate_latest

from chaos.drill.loading import drill_from_object
from chaos.drill.spec import Drill
from chaos.monitoring import metrics
from chaos.operator.series import Series

from support import drill_object


def drill(workload: str = "web") -> Drill:
    doc = drill_object("d")
    doc["spec"]["target"]["name"] = workload
    return drill_from_object(doc)


def series_of(registry: CollectorRegistry, workload: str) -> list[str]:
    return [line for line in generate_latest(registry).decode().splitlines()
            if f'workload="{workload}"' in line and not line.startswith("#")]


def test_series_go_when_the_last_drill_of_the_workload_lets_go() -> None:
    registry = CollectorRegistry()
    metrics.register_families(registry)
    series = Series(registry)
    series.take("a", drill()).fault_injected("pod_delete")
    series.take("b", drill())
    series.take("c", drill("api"))
    series.release("a")
    assert any("chaosdrill_faults_injected_total" in s and s.endswith(" 1.0")
               for s in series_of(registry, "web"))
    series.release("b")
    assert series_of(registry, "web") == [] and series_of(registry, "api")
    assert "chaosdrill_build_info" in generate_latest(registry).decode()


def test_a_release_later_waits_and_a_new_claim_cancels_it() -> None:
    registry = CollectorRegistry()
    series = Series(registry)
    series.take("a", drill())
    series.release("a", after=60)
    series.take("a", drill())  # the same object run again: its pending release is dropped
    series.release("a", after=0.05)
    deadline = time.monotonic() + 5
    while series_of(registry, "web") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert series_of(registry, "web") == []
