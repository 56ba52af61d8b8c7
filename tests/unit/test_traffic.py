"""Traffic phases: the probed Service's EndpointSlices say when a victim left rotation and when
its replacement (or itself) came back, with the slice controller's own write time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry

from chaos.drill.timeline import Incident
from chaos.monitoring.drill_metrics import DrillMetrics
from chaos.observe.endpoints import in_rotation, listed, pod_ips, written_at
from chaos.observe.tracker import Tracker

from support import pod

STAMP = "2026-01-01T00:00:03Z"


def endpoint(uid: str, ready: bool | None = True) -> dict[str, Any]:
    conditions = {} if ready is None else {"ready": ready, "serving": ready}
    return {
        "addresses": [f"10.0.0.{ord(uid[0])}"],
        "conditions": conditions,
        "targetRef": {"kind": "Pod", "name": f"web-{uid}", "uid": uid},
    }


def slice_of(*endpoints: dict[str, Any], uid: str = "s1", at: str = STAMP) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"web-{uid}",
            "uid": uid,
            "managedFields": [
                {"manager": "kube-controller-manager", "operation": "Update", "time": at},
                {"manager": "someone-else", "operation": "Update", "time": "2026-01-01T00:00:00Z"},
            ],
        },
        "endpoints": list(endpoints),
    }


def test_ready_unknown_counts_as_ready_and_not_ready_does_not() -> None:
    slices = [
        slice_of(endpoint("a"), endpoint("b", ready=False)),
        slice_of(endpoint("c", ready=None), uid="s2"),
    ]
    assert in_rotation(slices) == {"a", "c"}
    assert listed(slices) == {"a", "b", "c"}
    assert pod_ips(slices)["a"] == ["10.0.0.97"]


def test_the_slices_last_write_is_the_stamp() -> None:
    assert written_at(slice_of(endpoint("a"))) == datetime.fromisoformat(
        "2026-01-01T00:00:03+00:00"
    )
    assert written_at({"metadata": {}}) is None


def traffic_tracker(*uids: str) -> tuple[Tracker, list[tuple[str, float]]]:
    seen: list[tuple[str, float]] = []
    tracker = Tracker(
        on_phase=lambda inc, phase, mono, api: seen.append((phase, mono)), service="web"
    )
    for uid in uids:
        tracker.pod_event("LISTED", pod(uid), 0.0)
    tracker.pod_event("SYNCED", {"uids": list(uids)}, 0.0)
    tracker.slice_event("LISTED", slice_of(*(endpoint(uid) for uid in uids)), 0.0)
    tracker.slice_event("SYNCED", {"uids": ["s1"]}, 0.0)
    return tracker, seen


def injected(fault: str, target: str = "a") -> Incident:
    made = Incident("r1-i1", 1, fault, "demo", "web", f"web-{target}", target)
    made.mark("injected", 10.0, datetime.fromisoformat("2026-01-01T00:00:00.500000+00:00"))
    return made


def test_pod_delete_leaves_rotation_and_its_replacement_enters_it() -> None:
    tracker, seen = traffic_tracker("a", "b")
    inc = injected("pod_delete")
    tracker.follow(inc, inc.follow)
    assert inc.service == "web"
    tracker.pod_event("MODIFIED", pod("a", deleting=True), 10.1)
    tracker.slice_event("MODIFIED", slice_of(endpoint("a", False), endpoint("b")), 10.15)
    tracker.pod_event("ADDED", pod("n", ready=False), 10.2)
    tracker.slice_event("MODIFIED", slice_of(endpoint("b"), endpoint("n", False)), 10.25)
    tracker.pod_event("MODIFIED", pod("n"), 11.0)
    assert not inc.settled, "ready, but not yet in rotation"
    tracker.slice_event(
        "MODIFIED", slice_of(endpoint("b"), endpoint("n"), at="2026-01-01T00:00:01Z"), 11.02
    )
    assert [phase for phase, _ in seen] == [
        "target_gone",
        "endpoint_removed",
        "replacement_created",
        "scheduled",
        "started",
        "ready",
        "endpoint_added",
    ]
    assert inc.settled and inc.is_ordered()
    assert inc.phases["endpoint_removed"] == 10.15 and inc.phases["endpoint_added"] == 11.02
    assert list(inc.offsets())[-2:] == ["endpoint_removed", "endpoint_added"]
    # the slice controller's write time (whole seconds) bounds injected -> endpoint_added
    check = inc.api_cross_check(last_phase="endpoint_added")
    assert check is not None
    assert check.agrees, check.detail()
    assert inc.phase_durations().keys() == {
        "target_gone",
        "replacement_created",
        "scheduled",
        "started",
        "ready",
    }


def test_a_pod_the_service_does_not_hold_gets_no_traffic_phases() -> None:
    tracker, seen = traffic_tracker("a")
    inc = injected("pod_delete", "z")
    tracker.pod_event("LISTED", pod("z"), 0.0)
    tracker.follow(inc, inc.follow)
    tracker.slice_event("MODIFIED", slice_of(endpoint("a")), 10.1)
    assert inc.service == "" and seen == []
    assert "endpoint_removed" not in inc.expected_phases


def test_a_restarted_pod_comes_back_into_rotation_only_after_leaving_it() -> None:
    tracker, seen = traffic_tracker("a", "b")
    inc = injected("container_kill")
    tracker.follow(inc, inc.follow)
    tracker.slice_event("MODIFIED", slice_of(endpoint("a"), endpoint("b")), 10.05)
    assert seen == [], "still ready: no phase"
    tracker.pod_event("MODIFIED", pod("a", ready=False), 10.1)
    tracker.slice_event("MODIFIED", slice_of(endpoint("a", False), endpoint("b")), 10.12)
    tracker.pod_event("MODIFIED", pod("a", restarts=1), 11.0)
    tracker.slice_event("MODIFIED", slice_of(endpoint("a"), endpoint("b")), 11.01)
    phases = [phase for phase, _ in seen]
    assert phases.index("endpoint_removed") < phases.index("endpoint_added")
    assert inc.settled


def test_a_restart_that_never_left_rotation_settles_at_ready() -> None:
    inc = injected("container_kill")
    inc.service = "web"
    inc.mark("container_exited", 10.1)
    inc.mark("restarted", 10.2)
    inc.mark("ready", 10.3)
    assert inc.settled
    replaced = injected("pod_delete")
    replaced.service = "web"
    for phase, at in (
        ("target_gone", 10.1),
        ("replacement_created", 10.2),
        ("scheduled", 10.3),
        ("started", 10.4),
        ("ready", 10.5),
    ):
        replaced.mark(phase, at)
    assert not replaced.settled, "a replacement must enter rotation to settle"


def test_a_deleted_slice_takes_its_endpoints_with_it() -> None:
    tracker, seen = traffic_tracker("a")
    inc = injected("pod_delete")
    tracker.follow(inc, inc.follow)
    tracker.slice_event("DELETED", slice_of(endpoint("a")), 10.3)
    assert seen == [("endpoint_removed", 10.3)]


def test_traffic_phases_out_of_order_are_flagged() -> None:
    inc = injected("pod_delete")
    inc.service = "web"
    inc.mark("endpoint_added", 10.2)
    inc.mark("endpoint_removed", 10.5)
    assert not inc.is_ordered()
    assert Incident.from_dict(inc.to_dict()).service == "web"


def test_the_traffic_metric_counts_each_phase_after_injection() -> None:
    registry = CollectorRegistry()
    metrics = DrillMetrics(registry, "demo", "web", ["pod_delete"])
    metrics.traffic(
        "pod_delete",
        {"injected": 0.0, "ready": 1.0, "endpoint_removed": 0.04, "endpoint_added": 1.02},
    )
    labels = {"namespace": "demo", "workload": "web", "fault": "pod_delete"}
    for phase, total in (("endpoint_removed", 0.04), ("endpoint_added", 1.02)):
        got = registry.get_sample_value(
            "chaosdrill_traffic_seconds_sum", {**labels, "phase": phase}
        )
        assert got == total
