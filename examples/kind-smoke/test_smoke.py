"""The smoke test: the app heals from pods deleted under it, within the drill's SLO."""

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
