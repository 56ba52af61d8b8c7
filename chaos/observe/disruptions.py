"""Disruptions chaos-drill did not cause, read from two successive states of a pod or a node: a
pod marked for deletion (kubectl, chaoskube, Chaos Mesh, an eviction), a container that exited
(killed, OOM-killed, crashed), a node whose Ready condition went away. Pure logic over raw watch
dicts; each disruption carries the best "injected" moment the API offers and where it came from.
A pod its controller removed because it wants fewer (a scale-down, an HPA scaling in, a rollout
shrinking the old ReplicaSet) is no disruption: `scaled_down` tells it apart."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chaos.drill.timeline import api_resolution
from chaos.observe.tracker import _condition, _containers, _deleting, _time, restart_count


@dataclass(frozen=True)
class Disruption:
    """One disruption seen; FAULT is the fault type whose phases follow its recovery."""

    fault: str
    pod: str
    pod_uid: str
    node: str
    injected_at: datetime | None
    """The API's best moment for it (whole seconds), None when it offers none."""
    injected_from: str
    """Which API field gave injected_at, for the report."""
    container: str | None = None
    detail: str = ""
    last_seen_alive: bool = False
    """injected_at is a last sign of life (a node heartbeat), not the moment itself."""


def pod_disruptions(kind: str, before: Mapping[str, Any] | None,
                    after: Mapping[str, Any]) -> list[Disruption]:
    """What happened to a pod between BEFORE (None: not seen before) and AFTER (the watch event
    of type KIND, or LISTED after a relist); a pod first seen tells nothing, as its past is
    unknown."""
    if before is None or kind not in ("MODIFIED", "DELETED", "LISTED"):
        return []
    if not _deleting(before) and (kind == "DELETED" or _deleting(after)):
        return [_deleted(after)]
    if _deleting(after):
        return []  # its containers stopping are part of the deletion
    return [d for d in (_exited(before, after, c) for c in _containers(after)) if d]


def _deleted(pod: Mapping[str, Any]) -> Disruption:
    meta = pod.get("metadata", {})
    stamp = _time(meta.get("deletionTimestamp"))
    grace = int(meta.get("deletionGracePeriodSeconds") or 0)
    source = (f"deletionTimestamp minus its {grace} s grace period (the DELETE)" if stamp else
              "the moment the watch found it gone (after a break)")
    evicted = any(c.get("type") == "DisruptionTarget" and c.get("status") == "True"
                  for c in pod.get("status", {}).get("conditions") or [])
    return Disruption("pod_delete", meta.get("name", ""), meta.get("uid", ""),
                      pod.get("spec", {}).get("nodeName") or "",
                      stamp - timedelta(seconds=grace) if stamp else None, source,
                      detail="evicted" if evicted else "deleted")


def _exit_ids(status: Mapping[str, Any]) -> set[str]:
    ids = set()
    for key in ("state", "lastState"):
        terminated = (status.get(key) or {}).get("terminated") or {}
        if terminated.get("containerID"):
            ids.add(terminated["containerID"])
    return ids


def _exited(before: Mapping[str, Any], after: Mapping[str, Any],
            status: Mapping[str, Any]) -> Disruption | None:
    """A container of AFTER whose exit BEFORE did not show yet."""
    name = status.get("name")
    old = next((s for s in _containers(before) if s.get("name") == name), None)
    if old is None:
        return None
    new_ids = _exit_ids(status) - _exit_ids(old)
    terminated = None
    for key in ("state", "lastState"):
        found = (status.get(key) or {}).get("terminated") or {}
        if found.get("containerID") in new_ids:
            terminated = found
            break
    if terminated is None:
        # no exit record at all, yet a restart: still an exit, with no moment for it
        if _exit_ids(status) or restart_count(after, name) <= restart_count(before, name):
            return None
        terminated = {}
    meta = after.get("metadata", {})
    reason = terminated.get("reason") or ""
    code = terminated.get("exitCode")
    detail = f"container {name} " + (reason or "exited") + (
        f" (exit code {code})" if code is not None else "")
    return Disruption("container_kill", meta.get("name", ""), meta.get("uid", ""),
                      after.get("spec", {}).get("nodeName") or "",
                      _time(terminated.get("finishedAt")),
                      "the container's terminated.finishedAt", container=name, detail=detail)


def node_not_ready(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> bool:
    """The node's Ready condition was True in BEFORE and is not in AFTER."""
    return (before is not None and _condition(before, "Ready") is not None
            and _condition(after, "Ready") is None)


def node_disruption(node: Mapping[str, Any], pod: Mapping[str, Any]) -> Disruption:
    """POD, on NODE which just went NotReady; the node's last heartbeat is the last moment it was
    known alive, so the true moment lies between it and the NotReady."""
    ready: Mapping[str, Any] = next(
        (c for c in node.get("status", {}).get("conditions") or [] if c.get("type") == "Ready"),
        {})
    meta = pod.get("metadata", {})
    return Disruption("node_stop", meta.get("name", ""), meta.get("uid", ""),
                      node.get("metadata", {}).get("name", ""),
                      _time(ready.get("lastHeartbeatTime")),
                      "the node's last heartbeat (Ready lastHeartbeatTime)",
                      detail=f"node NotReady: {ready.get('reason') or '?'}",
                      last_seen_alive=True)


def injected_moment(found: Disruption, arrived: float, wall_now: datetime,
                    mono_now: float) -> tuple[float, float | None]:
    """The monotonic moment to count FOUND's recovery from, and how much later it may truly have
    begun (None: unknown). The API's stamp is turned into monotonic time through the clocks read
    together now (WALL_NOW, MONO_NOW); it cannot be after the event that showed it (ARRIVED). A
    whole-second stamp means the moment lay up to a second later, though never after ARRIVED."""
    if found.injected_at is None:
        return arrived, None
    stamp = mono_now - (wall_now - found.injected_at).total_seconds()
    stamp = min(stamp, arrived)
    if found.last_seen_alive:
        return stamp, round(arrived - stamp, 3)
    return stamp, round(min(api_resolution(found.injected_at), arrived - stamp), 3)


@dataclass(frozen=True)
class Owner:
    """The controller that owns a pod (its ownerReference with controller: true)."""

    kind: str
    name: str
    uid: str


def controller_of(pod: Mapping[str, Any]) -> Owner | None:
    """POD's controlling owner, None for a bare pod."""
    for ref in pod.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return Owner(ref.get("kind", ""), ref.get("name", ""), ref.get("uid", ""))
    return None


def _active(pod: Mapping[str, Any]) -> bool:
    """Counted by its controller as one of its replicas (as the ReplicaSet controller does)."""
    return not _deleting(pod) and pod.get("status", {}).get("phase") not in ("Succeeded",
                                                                             "Failed")


def remaining_replicas(pod: Mapping[str, Any], siblings: Iterable[Mapping[str, Any]]) -> int:
    """How many of SIBLINGS (pods seen before POD went) share POD's controller and stay."""
    owner = controller_of(pod)
    uid = pod.get("metadata", {}).get("uid")
    return 0 if owner is None else sum(
        1 for other in siblings
        if other.get("metadata", {}).get("uid") != uid and _active(other)
        and (controller_of(other) or Owner("", "", "")).uid == owner.uid)


def scaled_down(desired: int | None, remaining: int) -> bool:
    """A pod went while its controller's DESIRED replicas (read after it went; None: unknown)
    were already met by the REMAINING ones: the controller removed it and wants no replacement.
    A pod deleted by someone leaves one short, so a replacement comes: a disruption."""
    return desired is not None and remaining >= desired
