"""Reads what the advice and `chaos-drill check` judge: the target workload's spec with the
PodDisruptionBudgets and Services that select its pods (WorkloadFacts), and where its pods are
as a round begins."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaos.cluster import kube
from chaos.cluster.kube import WORKLOAD_KINDS, Workload, apps_call
from chaos.drill.targeting import PodInfo
from chaos.results.journal import Journal
from chaos.results.weak_spots import WorkloadFacts, facts_from_objects

READ_TIMEOUT_SECONDS = 10


def read_facts(api: Any, workload: Workload) -> WorkloadFacts:
    """The facts of WORKLOAD (a Deployment, StatefulSet or ReplicaSet) as the API holds them."""
    timeout = READ_TIMEOUT_SECONDS
    found = apps_call(api, "read", workload.kind)(workload.name, workload.namespace,
                                                  _request_timeout=timeout)
    raw: dict[str, Any] = api.sanitize_for_serialization(found)
    raw["kind"] = workload.kind
    pdbs = client.PolicyV1Api(api).list_namespaced_pod_disruption_budget(
        workload.namespace, _request_timeout=timeout)
    services = client.CoreV1Api(api).list_namespaced_service(workload.namespace,
                                                             _request_timeout=timeout)
    return facts_from_objects(raw, api.sanitize_for_serialization(pdbs.items),
                              api.sanitize_for_serialization(services.items))


def journal_facts(api: Any, workload: Workload, journal: Journal) -> None:
    """Writes workload_facts for the advice; a warning instead when they cannot be read (e.g.
    RBAC that does not let the operator list PodDisruptionBudgets): the drill goes on."""
    if workload.kind not in WORKLOAD_KINDS:
        return
    try:
        facts = read_facts(api, workload)
    except (ApiException, *kube.USER_ERRORS) as error:
        journal.write("warning", message=f"no advice from the workload's spec: "
                                         f"{kube.explain(error)}")
        return
    journal.write("workload_facts", facts=facts.to_dict())


def placement(pods: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The pods (raw, by UID) that are not being deleted: name, node and Ready, by name."""
    infos = sorted((PodInfo.from_dict(p) for p in pods.values()), key=lambda p: p.name)
    return [{"name": p.name, "node": p.node, "ready": p.ready} for p in infos if not p.deleting]
