"""The view model both live views render: tile states, victims and replacements, incidents with
their phases, probes and progress, fed the way the Observer feeds it."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from chaos.drill.timeline import Incident
from chaos.observe.prober import ProbeWindow
from chaos.observe.tracker import Tracker
from chaos.view.model import INCIDENTS_KEPT, ViewModel, pod_state
from chaos.view.terminal import incident_lines

from support import pod


def wired() -> tuple[ViewModel, Tracker]:
    """A model fed by a tracker as the Observer wires them."""
    model = ViewModel("drill t", clock=lambda: 12.0)
    holder: list[Tracker] = []

    def on_phase(incident: Incident, phase: str, mono: float, api: datetime | None) -> None:
        model.phase_reached(incident, phase, mono, holder[0].replacement_of(incident))

    tracker = Tracker(on_phase=on_phase)
    holder.append(tracker)
    return model, tracker


def feed(model: ViewModel, tracker: Tracker, kind: str, obj: dict[str, Any], at: float) -> None:
    tracker.pod_event(kind, obj, at)
    model.pod_changed(kind, obj, at)


def test_pod_states() -> None:
    assert pod_state(pod("a")) == "ready"
    assert pod_state(pod("a", deleting=True)) == "terminating"
    assert pod_state(pod("a", scheduled=False, running=False, ready=False)) == "pending"
    assert pod_state(pod("a", running=False, ready=False)) == "creating"
    assert pod_state(pod("a", ready=False)) == "running"
    crashing = pod("a", ready=False)
    crashing["status"]["containerStatuses"][0]["state"] = {
        "waiting": {"reason": "CrashLoopBackOff"}}
    assert pod_state(crashing) == "failed"
    exited = pod("a", ready=False)
    exited["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 137}}
    assert pod_state(exited) == "failed"


def test_a_pod_delete_as_the_views_see_it() -> None:
    model, tracker = wired()
    for uid, node in (("a", "n1"), ("b", "n2")):
        feed(model, tracker, "LISTED", pod(uid, node=node), 0.0)
    model.node_changed("LISTED", {"metadata": {"name": "n1"}, "status": {"conditions": [
        {"type": "Ready", "status": "True"}]}}, 0.0)
    incident = Incident("r1-i1", 1, "pod_delete", "demo", "web", "web-a", "a", "n1")
    incident.mark("injected", 10.0)
    model.incident_opened(incident)
    tracker.follow_replacement(incident)
    feed(model, tracker, "MODIFIED", pod("a", node="n1", deleting=True), 10.010)
    state = model.snapshot()
    assert {p["name"]: (p["state"], p["victim"]) for p in state["pods"]} == {
        "web-a": ("terminating", "r1-i1"), "web-b": ("ready", "")}
    feed(model, tracker, "ADDED", pod("c", scheduled=False, running=False, ready=False), 10.02)
    feed(model, tracker, "DELETED", pod("a", node="n1", deleting=True), 10.03)
    feed(model, tracker, "MODIFIED", pod("c", node="n2"), 10.5)
    state = model.snapshot()
    assert [p["name"] for p in state["pods"]] == ["web-b", "web-c"]
    assert state["pods"][1]["replacement"] == "r1-i1" and state["pods"][1]["node"] == "n2"
    assert [n["name"] for n in state["nodes"]] == ["n1", "n2"]
    shown = state["incidents"][0]
    assert [p["name"] for p in shown["phases"]] == [
        "injected", "target_gone", "replacement_created", "scheduled", "started", "ready"]
    assert [p["ms"] for p in shown["phases"]][:3] == [0, 10, 20]
    assert shown["status"] == "recovered" and shown["recovery_ms"] == 500


def test_an_incident_closed_unrecovered() -> None:
    model = ViewModel("t")
    incident = Incident("r1-i1", 1, "pod_delete", "demo", "web", "web-a", "a")
    incident.mark("injected", 1.0)
    model.incident_opened(incident)
    assert model.snapshot()["incidents"][0]["status"] == "open"
    model.incident_closed(incident)
    assert model.snapshot()["incidents"][0]["status"] == "not recovered"


def test_probes_progress_and_versions() -> None:
    model = ViewModel("drill t")
    model.set_drill(5, "pod_delete")
    first = model.snapshot()["version"]
    for ok in (True, True, False, True):
        model.probed(ok, 1.0)
    model.probe_window(ProbeWindow(1.0, 4, 1, 0.05))
    model.round_started(2)
    model.finished(True, "5 incidents")
    state = model.snapshot()
    assert state["version"] > first
    assert state["availability"] == {"requests": 4, "failures": 1, "ratio": 0.75,
                                     "longest_outage_seconds": 0.05, "recent": "1101"}
    assert state["progress"] == {"round": 2, "rounds": 5, "fault": "pod_delete",
                                 "verdict": "PASSED", "detail": "5 incidents"}


def test_wait_change_wakes_on_a_change_and_times_out_without() -> None:
    model = ViewModel("t")
    seen = model.snapshot()["version"]
    assert model.wait_change(seen, 0.05) == seen
    timer = threading.Timer(0.05, model.round_started, (1,))
    timer.start()
    assert model.wait_change(seen, 5) > seen
    timer.join(5)


def test_old_incidents_drop_out() -> None:
    model = ViewModel("t")
    for n in range(1, 20):
        incident = Incident(f"r{n}-i1", n, "pod_delete", "demo", "web", "p", "")
        incident.mark("injected", float(n))
        model.incident_opened(incident)
    ids = [i["id"] for i in model.snapshot()["incidents"]]
    assert len(ids) == INCIDENTS_KEPT and ids[-1] == "r19-i1"


def test_a_victim_stays_marked_until_it_is_gone() -> None:
    model = ViewModel("t")
    model.pod_changed("LISTED", pod("a"), 0.0)
    incident = Incident("r1-i1", 1, "container_kill", "demo", "web", "web-a", "a")
    incident.mark("injected", 1.0)
    model.incident_opened(incident)
    assert model.snapshot()["pods"][0]["victim"] == "r1-i1"
    model.incident_closed(incident)
    assert model.snapshot()["pods"][0]["victim"] == "", "a restarted victim is itself again"
    model.pod_changed("MODIFIED", pod("a", deleting=True), 2.0)
    assert model.snapshot()["pods"][0]["victim"] == "r1-i1", "still going away"


def test_an_observed_restart_held_by_back_off_says_why_while_it_waits() -> None:
    model, tracker = wired()  # the clock reads 12.0
    feed(model, tracker, "LISTED", pod("a"), 0.0)
    incident = Incident("o1", 0, "container_kill", "demo", "web", "web-a", "a", "node-1",
                        origin="observed")
    incident.mark("injected", 5.0)
    model.incident_opened(incident)
    tracker.follow_restart(incident)
    incident.mark("container_exited", 5.2)
    model.k8s_event("BackOff", "Pod/web-a", "Back-off restarting failed container web", 5.4)
    model.k8s_event("BackOff", "Pod/web-zz", "Back-off restarting failed container web", 5.4)
    model.k8s_event("ScalingReplicaSet", "Deployment/web", "Scaled up", 5.4)
    [shown] = model.snapshot()["incidents"]
    assert shown["origin"] == "observed"
    assert [e["reason"] for e in shown["events"]] == ["BackOff"], "only its own pod's"
    assert shown["causes"] == ["restart delayed 6.8 s by CrashLoopBackOff (BackOff event at "
                               "+0.4 s)"]
    text = incident_lines(model.snapshot()).plain
    assert "o1 container_kill web-a observed:" in text
    assert "why: restart delayed 6.8 s by CrashLoopBackOff" in text
