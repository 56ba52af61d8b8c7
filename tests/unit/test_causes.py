"""The cause rules: which event explains which slow phase, and when none does."""

from __future__ import annotations

from chaos.results.causes import IncidentEvent, causes_of, open_phase_cause, slow_phase_causes

RESTART = {"injected": 0.0, "container_exited": 0.1, "restarted": 10.3, "ready": 11.0}
BACKOFF = IncidentEvent(0.2, "BackOff", "web-1",
                        "Back-off restarting failed container web in pod web-1_demo(u1)")


def test_a_slow_restart_is_put_down_to_crashloop_backoff() -> None:
    [cause] = slow_phase_causes(RESTART, [BACKOFF])
    assert cause.phase == "restarted" and cause.reason == "BackOff"
    assert cause.seconds == 10.2 and cause.event_at == 0.2
    assert cause.text == ("restart delayed 10.2 s by CrashLoopBackOff "
                          "(BackOff event at +0.2 s)")


def test_a_fast_phase_needs_no_cause_even_with_a_matching_event() -> None:
    fast = {"injected": 0.0, "container_exited": 0.1, "restarted": 0.6, "ready": 1.2}
    assert slow_phase_causes(fast, [BACKOFF]) == []


def test_an_event_after_the_phase_ended_explains_nothing() -> None:
    late = IncidentEvent(10.5, "BackOff", "web-1", BACKOFF.message)
    assert slow_phase_causes(RESTART, [late]) == []


def test_unrelated_events_explain_nothing() -> None:
    events = [IncidentEvent(0.1, "Killing", "web-1", "Stopping container web"),
              IncidentEvent(10.2, "Started", "web-1", "Started container web")]
    assert slow_phase_causes(RESTART, events) == []


def test_an_image_back_off_is_told_apart_from_a_crash_loop() -> None:
    phases = {"injected": 0.0, "target_gone": 0.1, "replacement_created": 0.2,
              "scheduled": 0.3, "started": 20.0, "ready": 20.5}
    pull = IncidentEvent(1.0, "BackOff", "web-2", 'Back-off pulling image "web:1"')
    [cause] = slow_phase_causes(phases, [pull])
    assert cause.phase == "started" and "image pull back-off" in cause.text


def test_scheduling_and_readiness_delays() -> None:
    phases = {"injected": 0.0, "target_gone": 0.1, "replacement_created": 0.2,
              "scheduled": 5.2, "started": 5.5, "ready": 9.0}
    events = [IncidentEvent(0.3, "FailedScheduling", "web-2", "0/2 nodes are available"),
              IncidentEvent(6.0, "Unhealthy", "web-2", "Readiness probe failed: 503")]
    texts = [c.text for c in slow_phase_causes(phases, events)]
    assert texts == ["scheduling delayed 5.0 s by FailedScheduling (FailedScheduling event "
                     "at +0.3 s)",
                     "Ready delayed 3.5 s by a failing readiness probe (Unhealthy event at "
                     "+6.0 s)"]


def test_an_open_phase_names_what_holds_it() -> None:
    cause = open_phase_cause("restarted", 4.0, [BACKOFF])
    assert cause is not None and cause.text.startswith("restart delayed 4.0 s by CrashLoop")
    assert open_phase_cause("restarted", 0.5, [BACKOFF]) is None
    assert open_phase_cause("ready", 4.0, [BACKOFF]) is None


def test_causes_of_an_incident_still_waiting() -> None:
    expected = ("injected", "container_exited", "restarted", "ready")
    waiting = {"injected": 0.0, "container_exited": 0.1}
    [held] = causes_of(waiting, expected, [BACKOFF], waiting=5.1)
    assert held.phase == "restarted" and held.seconds == 5.0
    assert causes_of(waiting, expected, [BACKOFF]) == [], "closed: nothing waits any more"
    assert [c.phase for c in causes_of(RESTART, expected, [BACKOFF], waiting=12.0)] == [
        "restarted"]
