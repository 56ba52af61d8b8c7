"""The in-cluster operator's account and nodes: RBAC can grant "patch nodes" but not which
fields or which nodes, so an admission policy narrows it; both checked with the account's own
token and `kubectl auth can-i --as`."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaos.cluster.local import LocalCluster
from chaos.drill.node_guard import CONTROL_PLANE_LABEL, DRILLABLE_LABEL

from support import KUBECTL, as_operator

pytestmark = pytest.mark.e2e
ACCOUNT = "system:serviceaccount:chaos-drill:chaos-drill-operator"


def say(message: str) -> None:
    print(f"[operator] {message}", flush=True)


def kubectl() -> str:
    if not KUBECTL.exists():
        pytest.fail(f"kubectl is not built ({KUBECTL}): run 'make kind'")
    return str(KUBECTL)


def can_i(cluster: LocalCluster, *request: str) -> str:
    """`kubectl auth can-i REQUEST --as` the operator's account: "yes" or "no"."""
    result = subprocess.run([kubectl(), "--kubeconfig", str(cluster.kubeconfig()), "auth",
                             "can-i", *request, f"--as={ACCOUNT}"],
                            capture_output=True, text=True, timeout=30)
    return result.stdout.strip()


def policy_denied(call: Any, *args: Any) -> str:
    """CALL refused with 403 by the admission policy that narrows the operator's node patches."""
    with pytest.raises(ApiException) as caught:
        call(*args)
    assert caught.value.status == 403, caught.value
    message = str(json.loads(caught.value.body)["message"])
    assert "chaos-drill-operator-nodes" in message, message
    return message


def test_operator_token_may_cordon_only_drillable_workers_and_change_nothing_else(
        installed: Any, cluster: LocalCluster) -> None:
    admin = installed
    core, mine = client.CoreV1Api(admin), client.CoreV1Api(as_operator(admin))
    node = sorted(n.metadata.name for n in core.list_node().items)[0]
    # RBAC grants "patch nodes" (it cannot name fields or label-selected nodes) and no more
    assert can_i(cluster, "patch", "nodes") == "yes"
    for request in (["delete", "nodes"], ["create", "nodes"],
                    ["patch", "nodes", "--subresource=status"],
                    ["patch", "pods", "-n", "kube-system"], ["get", "secrets", "-n", "demo"],
                    ["delete", "configmaps", "-n", "kube-system"]):
        assert can_i(cluster, *request) == "no", request
    labels = {DRILLABLE_LABEL: None, CONTROL_PLANE_LABEL: None}
    try:
        # the admission policy narrows the patch: no labels, taints or foreign annotations
        say(policy_denied(mine.patch_node, node, {"metadata": {"labels": {
            DRILLABLE_LABEL: "true"}}}))
        policy_denied(mine.patch_node, node, {"spec": {"taints": [
            {"key": "x", "value": "y", "effect": "NoSchedule"}]}})
        policy_denied(mine.patch_node, node, {"metadata": {"annotations": {"x": "y"}}})
        # cordon only a node an administrator labelled drillable, never the control plane
        policy_denied(mine.patch_node, node, {"spec": {"unschedulable": True}})
        core.patch_node(node, {"metadata": {"labels": {DRILLABLE_LABEL: "true"}}})
        mine.patch_node(node, {"spec": {"unschedulable": True}})
        mine.patch_node(node, {"spec": {"unschedulable": False}})
        core.patch_node(node, {"metadata": {"labels": {CONTROL_PLANE_LABEL: ""}}})
        policy_denied(mine.patch_node, node, {"spec": {"unschedulable": True}})
        with pytest.raises(ApiException) as caught:
            mine.delete_node(node)
        assert caught.value.status == 403, caught.value
    finally:
        core.patch_node(node, {"metadata": {"labels": labels},
                               "spec": {"unschedulable": None}})
    after = core.read_node(node)
    assert not after.spec.unschedulable and "x" not in (after.metadata.annotations or {})
