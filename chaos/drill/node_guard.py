"""Which nodes a node fault (node_drain, node_stop) may touch, and for how long a drill may keep
one cordoned: never a control-plane node; with `require_drillable` (the operator), only nodes an
administrator labelled `chaosdrill.dev/drillable=true`. Refusals are one line, raised before
anything changes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from chaos.errors import SafetyError

DRILLABLE_LABEL = "chaosdrill.dev/drillable"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
DEFAULT_MAX_CORDON_SECONDS = 300.0


@dataclass(frozen=True)
class NodePolicy:
    """What a runner allows node faults. The CLI's default refuses only the control plane (the
    person running it holds the cluster's credentials); the operator passes require_drillable
    and its cordon cap, since whoever may create a ChaosDrill in a namespace must not decide
    about shared nodes."""

    require_drillable: bool = False
    max_cordon_seconds: float | None = None


def refusal(node: str, labels: Mapping[str, str], policy: NodePolicy) -> str | None:
    """Why a node fault may not touch NODE with LABELS, in one line; None when it may."""
    if CONTROL_PLANE_LABEL in labels:
        return (f"node {node} is a control-plane node ({CONTROL_PLANE_LABEL}): node faults never "
                "touch the control plane; name a worker in spec.fault.node")
    if policy.require_drillable and labels.get(DRILLABLE_LABEL) != "true":
        return (f"node {node} is not labelled {DRILLABLE_LABEL}=true: an administrator opts it "
                f"in with 'kubectl label node {node} {DRILLABLE_LABEL}=true'")
    return None


def cap_refusal(recovery_timeout_seconds: float, policy: NodePolicy) -> str | None:
    """Why a node_drain whose recovery may take RECOVERY_TIMEOUT_SECONDS (the cordon lasts that
    long at most per round) asks for more than the policy's cap; None when it does not."""
    cap = policy.max_cordon_seconds
    if cap is None or recovery_timeout_seconds <= cap:
        return None
    return (f"spec.recoveryTimeoutSeconds {recovery_timeout_seconds:g} would keep a node "
            f"cordoned up to {recovery_timeout_seconds:g} s, over the operator's cap of {cap:g} s: "
            f"set it to {cap:g} or less")


def check_node(api: Any, node: str, policy: NodePolicy) -> None:
    """A one-line SafetyError when a node fault may not touch NODE (its labels read now)."""
    labels = client.CoreV1Api(api).read_node(node).metadata.labels or {}
    why = refusal(node, labels, policy)
    if why is not None:
        raise SafetyError(why)
