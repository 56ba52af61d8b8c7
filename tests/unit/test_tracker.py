"""The tracker turns raw pod events into ordered incident phases, first arrival winning."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chaos.drill.timeline import Incident
from chaos.observe.tracker import Tracker

from support import pod


def tracker_with(*uids: str) -> tuple[Tracker, list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []
    tracker = Tracker(on_phase=lambda inc, phase, mono, api: seen.append((inc.id, phase)))
    for uid in uids:
        tracker.pod_event("LISTED", pod(uid), 0.0)
    tracker.pod_event("SYNCED", {"uids": list(uids)}, 0.0)
    return tracker, seen


def incident(fault: str, target: str = "a") -> Incident:
    made = Incident("r1-i1", 1, fault, "demo", "web", f"web-{target}", target)
    made.mark("injected", 10.0, datetime.fromisoformat("2026-01-01T00:00:00+00:00"))
    return made


def test_pod_delete_phases_in_order() -> None:
    tracker, seen = tracker_with("a", "b", "c")
    inc = incident("pod_delete")
    tracker.follow_replacement(inc)
    tracker.pod_event("MODIFIED", pod("a", deleting=True), 10.01)
    tracker.pod_event("ADDED", pod("n", ready=False, running=False, scheduled=False), 10.02)
    tracker.pod_event("MODIFIED", pod("n", ready=False, running=False), 10.03)
    tracker.pod_event("DELETED", pod("a", deleting=True), 10.04)
    tracker.pod_event("MODIFIED", pod("n", ready=False), 10.50)
    tracker.pod_event("MODIFIED", pod("n"), 10.60)
    assert [phase for _, phase in seen] == [
        "target_gone", "replacement_created", "scheduled", "started", "ready"]
    assert inc.recovery_seconds is not None and abs(inc.recovery_seconds - 0.6) < 1e-9
    assert inc.is_ordered()


def test_pods_that_existed_before_are_never_replacements() -> None:
    tracker, seen = tracker_with("a", "b")
    tracker.follow_replacement(incident("pod_delete"))
    tracker.pod_event("MODIFIED", pod("b"), 10.1)
    assert seen == []


def test_two_incidents_claim_different_replacements() -> None:
    tracker, _ = tracker_with("a", "b", "c")
    first, second = incident("pod_delete", "a"), incident("pod_delete", "b")
    second.id = "r1-i2"
    tracker.follow_replacement(first)
    tracker.follow_replacement(second)
    tracker.pod_event("DELETED", pod("a"), 10.0)
    tracker.pod_event("DELETED", pod("b"), 10.1)
    tracker.pod_event("ADDED", pod("x"), 10.2)
    tracker.pod_event("ADDED", pod("y"), 10.3)
    assert first.recovered and second.recovered
    assert first.phases["ready"] == 10.2 and second.phases["ready"] == 10.3


def test_a_replacement_goes_to_the_incident_whose_target_went() -> None:
    """A stopped node's pods go one after another: the second target's replacement can come
    before the first target goes, and must not be taken for the first's."""
    tracker, _ = tracker_with("a", "b", "c")
    first, second = incident("node_stop", "a"), incident("node_stop", "b")
    second.id = "r1-i2"
    tracker.follow_replacement(first)
    tracker.follow_replacement(second)
    tracker.pod_event("DELETED", pod("b"), 36.640)
    tracker.pod_event("ADDED", pod("y"), 36.645)
    tracker.pod_event("DELETED", pod("a"), 36.647)
    tracker.pod_event("ADDED", pod("x"), 36.650)
    assert first.recovered and second.recovered
    assert first.is_ordered() and second.is_ordered()
    assert first.phases["replacement_created"] == 36.650
    assert second.phases["replacement_created"] == 36.645


def test_container_restart_in_place() -> None:
    tracker, seen = tracker_with("a")
    inc = incident("container_kill")
    tracker.follow_restart(inc)
    tracker.pod_event("MODIFIED", pod("a", ready=False), 10.1)
    tracker.pod_event("MODIFIED", pod("a", ready=False, restarts=1), 11.0)
    tracker.pod_event("MODIFIED", pod("a", restarts=1), 11.2)
    assert [phase for _, phase in seen] == ["container_exited", "restarted", "ready"]
    assert inc.restart_count == 1 and inc.recovery_seconds is not None


def exited(uid: str, reason: str, old: str, new: str, restarts: int, *,
           waiting: bool = False) -> dict[str, Any]:
    """Pod UID after its container OLD exited with REASON: waiting to restart (state), or
    restarted as NEW (lastState)."""
    raw = pod(uid, ready=False, restarts=restarts)
    status = raw["status"]["containerStatuses"][0]
    ended = {"reason": reason, "exitCode": 137, "containerID": old,
             "finishedAt": "2026-01-01T00:00:03Z"}
    if waiting:
        status["state"] = {"terminated": ended}
    else:
        status.update(containerID=new, lastState={"terminated": ended})
    return raw


def test_the_exit_reason_is_that_of_the_container_running_at_injection() -> None:
    tracker, seen = tracker_with("a")
    inc = incident("oom_kill")
    tracker.follow_restart(inc)
    tracker.pod_event("MODIFIED", exited("a", "OOMKilled", "containerd://a", "", 0,
                                         waiting=True), 10.2)
    assert inc.exit_reason == "OOMKilled" and [p for _, p in seen] == ["container_exited"]
    tracker.pod_event("MODIFIED", exited("a", "Error", "containerd://b", "containerd://c", 2),
                      10.4)
    assert inc.exit_reason == "OOMKilled"


def test_an_earlier_exit_in_last_state_is_not_this_incidents() -> None:
    tracker, _ = tracker_with("a")
    tracker.pod_event("MODIFIED", exited("a", "Error", "containerd://old", "containerd://a", 1),
                      5.0)
    inc = incident("oom_kill")
    tracker.follow_restart(inc)
    tracker.pod_event("MODIFIED", exited("a", "Error", "containerd://old", "containerd://a", 1),
                      10.1)
    assert inc.exit_reason == ""
    tracker.pod_event("MODIFIED", exited("a", "OOMKilled", "containerd://a", "containerd://n",
                                         2), 10.9)
    assert inc.exit_reason == "OOMKilled" and inc.restart_count == 2
    assert Incident.from_dict(inc.to_dict()).exit_reason == "OOMKilled"


def test_scale_up_waits_for_the_last_new_pod() -> None:
    tracker, seen = tracker_with("a", "b", "c")
    inc = incident("scale", "")
    tracker.follow_scale(inc, 5)
    tracker.pod_event("ADDED", pod("d", ready=False), 10.1)
    assert seen == []
    tracker.pod_event("ADDED", pod("e", ready=False), 10.2)
    assert [phase for _, phase in seen] == ["replicas_created", "scheduled", "started"]
    tracker.pod_event("MODIFIED", pod("d"), 10.3)
    assert not inc.recovered
    tracker.pod_event("MODIFIED", pod("e"), 10.4)
    assert inc.recovered and inc.phases["ready"] == 10.4


def test_relist_drops_pods_deleted_while_the_watch_was_down() -> None:
    tracker, seen = tracker_with("a", "b")
    inc = incident("pod_delete")
    tracker.follow_replacement(inc)
    tracker.pod_event("LISTED", pod("b"), 12.0)
    tracker.pod_event("LISTED", pod("n"), 12.0)
    tracker.pod_event("SYNCED", {"uids": ["b", "n"]}, 12.0)
    assert "a" not in tracker.pods
    assert inc.recovered and ("r1-i1", "target_gone") in seen


def test_node_not_ready_marks_node_stop_incidents() -> None:
    tracker, seen = tracker_with("a")
    inc = incident("node_stop")
    inc.node = "node-1"
    tracker.follow_replacement(inc)
    node = {"metadata": {"name": "node-1"},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}
    tracker.node_event("MODIFIED", node, 26.0)
    assert seen == [("r1-i1", "node_not_ready")]
