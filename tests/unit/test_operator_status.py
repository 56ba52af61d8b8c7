"""What the operator writes to a ChaosDrill's status, and how a stopping operator stops its
drills before it hands over."""

from __future__ import annotations

import threading
import time

from chaos.operator.handlers import Drills, incident_status
from chaos.results.incidents import IncidentResult


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


def test_stopping_stops_every_drill_and_waits_until_each_has_ended() -> None:
    drills = Drills()
    first, second, ended = threading.Event(), threading.Event(), threading.Event()

    def drill(stop: threading.Event) -> None:
        with drills.running(stop):
            stop.wait(10)
        if stop is second:
            ended.set()

    threads = [threading.Thread(target=drill, args=(s,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    while len(drills._stops) < 2:
        time.sleep(0.01)
    assert drills.stop_all(timeout=5) is True
    assert first.is_set() and second.is_set() and ended.is_set()
    late = threading.Event()
    with drills.running(late):  # one that starts while the operator stops is stopped at once
        assert late.is_set()
    for thread in threads:
        thread.join(5)


def test_stopping_gives_up_after_its_timeout() -> None:
    drills = Drills()
    with drills.running(threading.Event()):
        assert drills.stop_all(timeout=0.05) is False
