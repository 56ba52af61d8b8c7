"""Incident timelines: first arrival wins, durations, ordering, API cross-check, round trip."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from chaos.fault_types import NAMES, PHASES_BY_FAULT, REPLACEMENT_PHASES, RESTART_PHASES
from chaos.timeline import (
    Incident,
    incident_id,
    phases_for,
)

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def pod_delete_incident() -> Incident:
    return Incident(
        id=incident_id(1, 1),
        round=1,
        fault="pod_delete",
        namespace="demo",
        workload="web",
        target_pod="web-abc-1",
        target_uid="u1",
        node="node-1",
    )


def recovered_incident() -> Incident:
    incident = pod_delete_incident()
    times = (100.0, 100.2, 100.3, 100.5, 101.5, 103.0)
    for phase, mono in zip(REPLACEMENT_PHASES, times, strict=True):
        incident.mark(phase, mono)
    return incident


def test_every_fault_has_phases_from_injected_to_ready() -> None:
    assert set(PHASES_BY_FAULT) == set(NAMES)
    for phases in PHASES_BY_FAULT.values():
        assert phases[0] == "injected" and phases[-1] == "ready"
    assert phases_for("container_kill") == RESTART_PHASES
    with pytest.raises(ValueError, match="unknown fault"):
        phases_for("pod_kill")


def test_incident_id() -> None:
    assert incident_id(2, 3) == "r2-i3"


def test_recovery_and_durations() -> None:
    incident = recovered_incident()
    assert incident.recovery_seconds == pytest.approx(3.0)
    durations = incident.phase_durations()
    assert list(durations) == list(REPLACEMENT_PHASES[1:])
    assert durations["started"] == pytest.approx(1.0)
    assert sum(durations.values()) == pytest.approx(3.0)
    assert incident.offsets()["ready"] == pytest.approx(3.0)
    assert incident.is_ordered()


def test_first_arrival_wins() -> None:
    incident = pod_delete_incident()
    assert incident.mark("injected", 10.0)
    assert not incident.mark("injected", 11.0)
    assert incident.phases["injected"] == 10.0


def test_duplicate_can_bring_a_missing_api_time() -> None:
    incident = pod_delete_incident()
    incident.mark("ready", 12.0)
    incident.mark("ready", 12.5, api_time=T0)
    assert incident.phases["ready"] == 12.0 and incident.api_times["ready"] == T0


def test_unknown_phase_is_a_bug() -> None:
    with pytest.raises(ValueError, match="not a phase of pod_delete"):
        pod_delete_incident().mark("restarted", 1.0)


def test_not_recovered() -> None:
    incident = pod_delete_incident()
    incident.mark("injected", 1.0)
    incident.mark("target_gone", 1.5)
    assert incident.recovery_seconds is None and not incident.recovered
    assert incident.offsets() == {"injected": 0.0, "target_gone": 0.5}


def test_out_of_order_is_detected() -> None:
    incident = pod_delete_incident()
    incident.mark("injected", 1.0)
    incident.mark("replacement_created", 1.2)
    incident.mark("target_gone", 1.1)
    assert incident.is_ordered()
    incident.mark("scheduled", 1.0)
    assert not incident.is_ordered()


def test_restart_count_keeps_the_highest() -> None:
    incident = Incident("r1-i1", 1, "container_kill", "demo", "web", "web-1")
    incident.record_restarts(2)
    incident.record_restarts(1)
    assert incident.restart_count == 2


@pytest.mark.parametrize(
    ("mono_ready", "api_ready_offset", "agrees"),
    [
        (103.0, 3, True),  # exact
        (103.9, 3, True),  # truncated API stamp: up to 1 s short
        (103.0, 4, True),  # truncated injection stamp: up to 1 s long
        (105.0, 3, False),
        (100.5, 3, False),
    ],
)
def test_api_cross_check(mono_ready: float, api_ready_offset: int, agrees: bool) -> None:
    incident = pod_delete_incident()
    incident.mark("injected", 100.0, api_time=T0)
    incident.mark("ready", mono_ready, api_time=T0 + timedelta(seconds=api_ready_offset))
    check = incident.api_cross_check()
    assert check is not None
    assert (check.first_phase, check.last_phase) == ("injected", "ready")
    assert check.agrees is agrees
    assert ("agrees" if agrees else "DISAGREES") in check.detail()


def test_cross_check_needs_two_stamps() -> None:
    incident = recovered_incident()
    assert incident.api_cross_check() is None
    incident.mark("scheduled", 0.0, api_time=T0)
    incident.mark("ready", 0.0, api_time=T0 + timedelta(seconds=2))
    check = incident.api_cross_check()
    assert check is not None and check.first_phase == "scheduled" and check.agrees


def test_dict_round_trip_through_json() -> None:
    incident = recovered_incident()
    incident.mark("ready", 0.0, api_time=T0)
    incident.record_restarts(1)
    data = json.loads(json.dumps(incident.to_dict()))
    assert Incident.from_dict(data) == incident
