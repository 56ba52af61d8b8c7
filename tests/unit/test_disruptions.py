"""Disruptions read from two successive pod or node states, with the API's injected moment."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from chaos.observe.disruptions import (
    Owner,
    controller_of,
    injected_moment,
    node_disruption,
    node_not_ready,
    pod_disruptions,
    remaining_replicas,
    scaled_down,
)

from support import pod


def killed(before: dict[str, Any], *, restarts: int, waiting: str = "") -> dict[str, Any]:
    """BEFORE after its container was killed: the kubelet's view, restarted or waiting."""
    after = copy.deepcopy(before)
    status = after["status"]["containerStatuses"][0]
    status["lastState"] = {"terminated": {"exitCode": 137, "reason": "Error",
                                          "containerID": f"containerd://old{restarts}",
                                          "finishedAt": "2026-01-01T00:00:07Z"}}
    status["restartCount"] = restarts
    status["state"] = ({"waiting": {"reason": waiting}} if waiting
                       else {"running": {"startedAt": "2026-01-01T00:00:08Z"}})
    return after


def test_a_pod_marked_for_deletion_is_injected_at_its_delete() -> None:
    before = pod("u1")
    after = pod("u1", deleting=True)
    after["metadata"]["deletionGracePeriodSeconds"] = 2
    [found] = pod_disruptions("MODIFIED", before, after)
    assert (found.fault, found.pod, found.pod_uid, found.node) == (
        "pod_delete", "web-u1", "u1", "node-1")
    assert found.injected_at == datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert "grace" in found.injected_from and found.detail == "deleted"
    assert pod_disruptions("MODIFIED", after, after) == [], "seen once, not on each update"
    assert pod_disruptions("DELETED", after, after) == []


def test_a_forced_delete_seen_only_as_deleted_counts_too() -> None:
    [found] = pod_disruptions("DELETED", pod("u1"), pod("u1", deleting=True))
    assert found.fault == "pod_delete"
    assert found.injected_at == datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC)


def test_a_pod_first_seen_tells_nothing() -> None:
    assert pod_disruptions("ADDED", None, pod("u1", deleting=True)) == []
    assert pod_disruptions("MODIFIED", None, pod("u1", restarts=3)) == []


def test_a_killed_container_is_injected_at_its_exit() -> None:
    before = pod("u1")
    after = killed(before, restarts=1)
    [found] = pod_disruptions("MODIFIED", before, after)
    assert (found.fault, found.container) == ("container_kill", "web")
    assert found.injected_at == datetime(2026, 1, 1, 0, 0, 7, tzinfo=UTC)
    assert found.detail == "container web Error (exit code 137)"
    assert pod_disruptions("MODIFIED", after, copy.deepcopy(after)) == []


def test_a_second_kill_in_back_off_is_a_new_exit() -> None:
    first = killed(pod("u1"), restarts=1)
    second = killed(first, restarts=1, waiting="CrashLoopBackOff")
    second["status"]["containerStatuses"][0]["lastState"]["terminated"]["containerID"] = "x2"
    [found] = pod_disruptions("MODIFIED", first, second)
    assert found.fault == "container_kill"


def test_the_exit_first_then_the_restart_is_one_disruption() -> None:
    before = pod("u1")
    exited = copy.deepcopy(before)
    exited["status"]["containerStatuses"][0]["state"] = {"terminated": {
        "exitCode": 137, "reason": "OOMKilled", "containerID": "containerd://u1",
        "finishedAt": "2026-01-01T00:00:07Z"}}
    restarted = copy.deepcopy(exited)
    status = restarted["status"]["containerStatuses"][0]
    status["lastState"] = {"terminated": status["state"]["terminated"]}
    status["state"] = {"running": {}}
    status["restartCount"] = 1
    [found] = pod_disruptions("MODIFIED", before, exited)
    assert "OOMKilled" in found.detail
    assert pod_disruptions("MODIFIED", exited, restarted) == []


def test_containers_stopping_with_their_pod_are_not_another_disruption() -> None:
    before = pod("u1", deleting=True)
    after = killed(before, restarts=1)
    assert pod_disruptions("MODIFIED", before, after) == []


def node(ready: str, heartbeat: str = "2026-01-01T00:00:05Z") -> dict[str, Any]:
    return {"metadata": {"name": "node-1"}, "status": {"conditions": [
        {"type": "Ready", "status": ready, "reason": "NodeStatusUnknown",
         "lastHeartbeatTime": heartbeat}]}}


def test_a_node_going_not_ready_puts_its_pods_at_its_last_heartbeat() -> None:
    assert node_not_ready(node("True"), node("Unknown"))
    assert not node_not_ready(node("Unknown"), node("Unknown"))
    assert not node_not_ready(None, node("Unknown"))
    found = node_disruption(node("Unknown"), pod("u1"))
    assert (found.fault, found.node, found.pod_uid) == ("node_stop", "node-1", "u1")
    assert found.injected_at == datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert found.last_seen_alive


def test_the_injected_moment_is_the_stamp_in_monotonic_time_with_its_uncertainty() -> None:
    now = datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    [deleted] = pod_disruptions("DELETED", pod("u1"), pod("u1", deleting=True))  # stamp 00:03
    mono, uncertainty = injected_moment(deleted, arrived=93.4, wall_now=now, mono_now=100.0)
    assert mono == 93.0 and uncertainty == 0.4, "not after the event that showed it"
    mono, uncertainty = injected_moment(deleted, arrived=95.0, wall_now=now, mono_now=100.0)
    assert mono == 93.0 and uncertainty == 1.0, "a whole-second stamp: up to 1 s later"
    mono, uncertainty = injected_moment(deleted, arrived=92.5, wall_now=now, mono_now=100.0)
    assert mono == 92.5 and uncertainty == 0.0, "a stamp after the event is clamped to it"
    heartbeat = node_disruption(node("Unknown"), pod("u1"))  # 00:05, 40 s before NotReady
    mono, uncertainty = injected_moment(heartbeat, arrived=99.0, wall_now=now, mono_now=100.0)
    assert mono == 95.0 and uncertainty == 4.0


def test_a_relist_shows_what_happened_during_a_break() -> None:
    [found] = pod_disruptions("LISTED", pod("u1"), killed(pod("u1"), restarts=1))
    assert found.fault == "container_kill"
    [gone] = pod_disruptions("DELETED", pod("u1"), pod("u1"))
    assert gone.injected_at is None and "after a break" in gone.injected_from


def owned(uid: str, owner: str = "rs-1", **fields: Any) -> dict[str, Any]:
    """A pod of ReplicaSet OWNER (its controller), as the watch delivers it."""
    found = pod(uid, **fields)
    found["metadata"]["ownerReferences"] = [
        {"kind": "Deployment", "name": "other", "uid": "d-1"},  # not the controller
        {"kind": "ReplicaSet", "name": f"web-{owner}", "uid": owner, "controller": True}]
    return found


def test_the_controller_is_the_owner_marked_controller() -> None:
    assert controller_of(owned("u1")) == Owner("ReplicaSet", "web-rs-1", "rs-1")
    assert controller_of(pod("u1")) is None, "a bare pod has none"


def test_a_scale_down_from_3_to_2_leaves_the_desired_2_so_no_incident() -> None:
    pods = [owned("u1"), owned("u2"), owned("u3")]
    remaining = remaining_replicas(owned("u3", deleting=True), pods)
    assert remaining == 2 and scaled_down(2, remaining)


def test_a_kubectl_delete_leaves_one_short_so_it_is_an_incident() -> None:
    pods = [owned("u1"), owned("u2"), owned("u3")]
    remaining = remaining_replicas(owned("u3", deleting=True), pods)
    assert not scaled_down(3, remaining)


def test_two_pods_removed_in_one_scale_down_are_both_scale_downs() -> None:
    pods = [owned("u1"), owned("u2"), owned("u3")]
    first = remaining_replicas(owned("u2", deleting=True), pods)
    pods[1] = owned("u2", deleting=True)
    second = remaining_replicas(owned("u3", deleting=True), pods)
    assert (first, second) == (2, 1) and scaled_down(1, first) and scaled_down(1, second)
    assert scaled_down(0, remaining_replicas(owned("u1", deleting=True), pods)), "to zero"


def test_two_pods_deleted_by_hand_are_both_incidents() -> None:
    pods = [owned("u1"), owned("u2"), owned("u3")]
    first = remaining_replicas(owned("u2", deleting=True), pods)
    pods[1] = owned("u2", deleting=True)
    second = remaining_replicas(owned("u3", deleting=True), pods)
    assert not scaled_down(3, first) and not scaled_down(3, second)


def test_only_active_pods_of_the_same_controller_remain() -> None:
    failed = owned("u4")
    failed["status"]["phase"] = "Failed"
    pods = [owned("u1"), owned("u2", deleting=True), owned("u3", "rs-old"), failed, pod("u5")]
    assert remaining_replicas(owned("u6"), pods) == 1
    assert remaining_replicas(pod("u5"), pods) == 0, "a bare pod has no siblings"


def test_a_delete_during_a_scale_up_is_an_incident() -> None:
    # scaled from 2 to 4: one new pod still pending when one is deleted by hand
    pods = [owned("u1"), owned("u2"), owned("u3", running=False, ready=False)]
    assert not scaled_down(4, remaining_replicas(owned("u1", deleting=True), pods))


def test_without_the_controllers_replicas_it_stays_an_incident() -> None:
    assert not scaled_down(None, 2), "a controller gone or unreadable decides nothing"
