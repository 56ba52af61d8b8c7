"""Incident timelines: first arrival wins, durations, ordering, API cross-check, round trip."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from chaos.drill.fault_types import NAMES, PHASES_BY_FAULT, REPLACEMENT_PHASES, RESTART_PHASES
from chaos.drill.timeline import (
    CrossCheck,
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
    for fault, phases in PHASES_BY_FAULT.items():
        last = {"load": "scaled_in", "network_partition": "endpoint_added"}.get(fault, "ready")
        assert phases[0] == "injected" and phases[-1] == last
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


def cross_check(injected_at: float, ready_at: float, mono_ready: float) -> CrossCheck:
    """Injection stamped by the runner (exact), ready by the API (whole seconds, truncated)."""
    incident = pod_delete_incident()
    incident.mark("injected", 100.0, api_time=T0 + timedelta(seconds=injected_at))
    incident.mark("ready", 100.0 + mono_ready, api_time=T0 + timedelta(seconds=ready_at))
    check = incident.api_cross_check()
    assert check is not None
    return check


def test_a_stamp_rounded_below_the_injection_shows_a_bound_not_a_negative_time() -> None:
    check = cross_check(injected_at=0.494, ready_at=0, mono_ready=0.3)
    assert (check.api_low_seconds, round(check.api_high_seconds, 3)) == (0.0, 0.506)
    assert check.detail() == ("injected->ready: watch 0.300 s, API at most 0.506 s "
                              "(one-second stamps), agrees within 0.25 s")
    assert not cross_check(injected_at=0.494, ready_at=0, mono_ready=0.8).agrees


def test_an_exact_start_bounds_the_duration_from_below_too() -> None:
    check = cross_check(injected_at=0.5, ready_at=3, mono_ready=2.9)
    assert check.api_bounds() == "API 2.500 to 3.500 s (one-second stamps)"
    assert check.agrees
    # 1 s short of the API's lower bound: a symmetric 1 s tolerance would have let it pass
    assert not cross_check(injected_at=0.5, ready_at=3, mono_ready=1.5).agrees


def test_two_whole_second_stamps_and_two_exact_ones() -> None:
    assert cross_check(0, 3, 3.0).api_bounds() == "API 2.000 to 4.000 s (one-second stamps)"
    assert cross_check(0.25, 3.35, 3.0).api_bounds() == "API 3.100 s"


def test_stamps_out_of_order_are_named_and_disagree() -> None:
    check = cross_check(injected_at=3.5, ready_at=1, mono_ready=0.5)
    assert check.api_bounds() == "API stamps 1.500 s out of order (clocks differ?)"
    assert not check.agrees


@pytest.mark.parametrize("injected_at", [n / 20 for n in range(20)])
@pytest.mark.parametrize("ready_after", [0.0, 0.01, 0.3, 0.99, 1.0, 2.7])
def test_no_negative_api_durations(injected_at: float, ready_after: float) -> None:
    truncated = float(int(injected_at + ready_after))  # what a whole-second API stamp says
    check = cross_check(injected_at, truncated, ready_after)
    assert not re.search(r"-\d", check.detail()), check.detail()
    assert check.api_low_seconds <= ready_after <= check.api_high_seconds
    assert check.agrees


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
