"""Finds a drill's target in the cluster: the workload it names (or its label selector) as a
Workload, with one-line errors for a missing namespace or workload that name the field."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaos.cluster.kube import WORKLOAD_KINDS, Workload, apps_call
from chaos.drill.spec import Drill, Target
from chaos.errors import ClusterError, SpecError


def resolve_workload(api: Any, drill: Drill) -> Workload:
    """The drill's target in the cluster; one-line errors for a missing namespace or workload."""
    return resolve_target(api, drill.namespace, drill.target)


def resolve_target(api: Any, namespace: str, target: Target,
                   flag: str = "spec.target") -> Workload:
    """TARGET in NAMESPACE as found in the cluster; one-line errors for a missing namespace or
    workload, naming FLAG (where the target was given)."""
    core = client.CoreV1Api(api)
    try:
        core.read_namespace(namespace)
    except ApiException as error:
        if error.status == 404:
            raise SpecError(f"namespace {namespace} not found: create it, or run "
                            "'chaos-drill deploy' for the sample workload") from None
        raise ClusterError(f"cannot read namespace {namespace}: {error.reason}") from None
    if target.name is None:
        return Workload("Pods", "selector", namespace, dict(target.match_labels))
    assert target.kind is not None
    if target.kind not in WORKLOAD_KINDS:
        raise SpecError(f"{flag} kind {target.kind} is not supported: use one of "
                        f"{', '.join(WORKLOAD_KINDS)}, or a label selector")
    try:
        found = apps_call(api, "read", target.kind)(target.name, namespace)
    except ApiException as error:
        raise SpecError(f"{target.kind} {namespace}/{target.name} not found "
                        f"({error.reason}): fix {flag} or deploy it first") from None
    labels = dict(found.spec.selector.match_labels or {})
    return Workload(target.kind, target.name, namespace, labels)
