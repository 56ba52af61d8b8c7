"""Which pods a Service sends traffic to, read from its EndpointSlices (discovery.k8s.io/v1) as
raw dicts: a pod is in rotation while an endpoint of some slice points at it (targetRef) and is
ready. Pure functions, so recorded slices replay through them in tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

SERVICE_LABEL = "kubernetes.io/service-name"
"""The label every EndpointSlice of a Service carries, naming it."""

def _pod_endpoints(slice_: Mapping[str, Any]) -> Iterable[tuple[str, bool]]:
    for endpoint in slice_.get("endpoints") or []:
        ref = endpoint.get("targetRef") or {}
        if ref.get("kind") == "Pod" and ref.get("uid"):
            # an unset ready means unknown, which consumers (kube-proxy) take as ready
            ready = (endpoint.get("conditions") or {}).get("ready")
            yield str(ref["uid"]), ready is not False


def in_rotation(slices: Iterable[Mapping[str, Any]]) -> set[str]:
    """UIDs of the pods ready in at least one of SLICES."""
    return {uid for s in slices for uid, ready in _pod_endpoints(s) if ready}


def listed(slices: Iterable[Mapping[str, Any]]) -> set[str]:
    """UIDs of the pods with an endpoint in SLICES, ready or not."""
    return {uid for s in slices for uid, _ in _pod_endpoints(s)}


def pod_ips(slices: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Each pod's endpoint addresses, by UID."""
    found: dict[str, list[str]] = {}
    for s in slices:
        for endpoint in s.get("endpoints") or []:
            uid = (endpoint.get("targetRef") or {}).get("uid")
            if uid:
                found.setdefault(str(uid), []).extend(endpoint.get("addresses") or [])
    return found


def written_at(slice_: Mapping[str, Any]) -> datetime | None:
    """When SLICE was last written, from its managedFields (whole seconds; each writer's last
    write): the API's own stamp for the change a watch event carries, as every write to an
    object sends one event."""
    times = [
        entry["time"]
        for entry in slice_.get("metadata", {}).get("managedFields") or []
        if entry.get("time")
    ]
    if not times:
        return None
    return max(datetime.fromisoformat(str(t).replace("Z", "+00:00")) for t in times)
