"""What the operator writes to a ChaosDrill's status."""

from __future__ import annotations

from chaos.operator import incident_status
from chaos.results.summary import IncidentResult


def test_status_lists_each_incidents_phases_and_load_figures() -> None:
    incident = IncidentResult(
        id="i1", round=1, fault="load", target_pod="", node="", injected_at="t",
        phases={"injected": 0.0, "scale_decided": 12.5, "ready": 30.0, "scaled_in": 95.0},
        recovery_seconds=30.0, restart_count=0, closed=True, reason=None, ordered=True,
        api_cross_check=None, scale_in_seconds=55.0, peak_replicas=6)
    assert incident_status(incident) == {
        "round": 1, "fault": "load", "recoverySeconds": 30.0, "scaleInSeconds": 55.0,
        "peakReplicas": 6,
        "phases": {"injected": 0.0, "scale_decided": 12.5, "ready": 30.0, "scaled_in": 95.0}}
