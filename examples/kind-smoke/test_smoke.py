"""The smoke test: the app heals from pods deleted under it, within the drill's SLOs: each pod
replaced within 30 s, and at least 95 % of the probe's requests answered meanwhile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_kind import KindCluster

DRILL = Path(__file__).parent / "drills" / "web-pod-kill.yaml"


def test_web_heals_after_pod_delete(web: KindCluster, chaos_drill: Any) -> None:
    summary = chaos_drill(DRILL)
    assert summary.passed, summary.slo_checks
    assert len(summary.incidents) == 2
    assert all(incident.recovery_seconds is not None for incident in summary.incidents)
    availability = summary.availability
    assert availability.requests >= 20, "the probe ran through the drill"
    assert availability.ratio is not None and availability.ratio >= 0.95
    print(f"availability {availability.ratio:.2%} of {availability.requests} requests, "
          f"p99 latency {availability.latency_p99_seconds} s")
