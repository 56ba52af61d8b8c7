"""The spec checks of `chaos-drill check`: facts read from raw API objects, each check alone, a
weak workload gets every finding and a hardened one none."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from chaos.results.weak_spots import (
    CHECKS,
    WorkloadFacts,
    facts_from_objects,
    finding_lines,
    selects,
    spec_findings,
)

from support import REPO

LABELS = {"app": "web", "chaosdrill.dev/allow": "true"}
PROBE = {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}


def deployment(replicas: int | None = 1, **pod_spec: Any) -> dict[str, Any]:
    container = {"name": "web", "image": "web:1", **pod_spec.pop("container", {})}
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": "web"}},
                            "template": {"metadata": {"labels": LABELS},
                                         "spec": {"containers": [container], **pod_spec}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"kind": "Deployment", "metadata": {"name": "web", "namespace": "weak"}, "spec": spec}


HARDENED = deployment(
    3,
    topologySpreadConstraints=[{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                "whenUnsatisfiable": "ScheduleAnyway"}],
    container={"readinessProbe": PROBE,
               "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
               "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                             "limits": {"memory": "64Mi"}},
               "lifecycle": {"preStop": {"sleep": {"seconds": 3}}}})
PDB = {"metadata": {"name": "web"}, "spec": {"maxUnavailable": 1,
                                              "selector": {"matchLabels": {"app": "web"}}}}
SERVICE = {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}}}


def checks_found(workload: dict[str, Any], pdbs: list[dict[str, Any]] | None = None,
                 services: list[dict[str, Any]] | None = None) -> list[str]:
    facts = facts_from_objects(workload, pdbs or [], services or [])
    return [f.check for f in spec_findings(facts)]


def test_a_weak_deployment_gets_every_finding_but_identical_probes() -> None:
    assert checks_found(deployment(1), [], [SERVICE]) == [
        "replicas", "pdb", "spread", "readiness", "resources", "prestop"]


def test_a_hardened_deployment_gets_none() -> None:
    assert checks_found(HARDENED, [PDB], [SERVICE]) == []


def test_replicas_default_to_one_as_the_api_does() -> None:
    facts = facts_from_objects(deployment(None), [], [])
    assert facts.replicas == 1
    assert [f.evidence for f in CHECKS["replicas"](facts)] == ["spec.replicas: 1"]
    assert CHECKS["replicas"](facts_from_objects(deployment(2), [], [])) == []


def test_a_pdb_counts_only_when_its_selector_selects_the_pods() -> None:
    other = {"metadata": {"name": "api"}, "spec": {"selector": {"matchLabels": {"app": "api"}}}}
    assert "pdb" in checks_found(HARDENED, [other], [SERVICE])
    assert facts_from_objects(HARDENED, [other, PDB], []).pdbs == ("web",)


@pytest.mark.parametrize("selector, selected", [
    ({}, True), (None, False), ({"matchLabels": {"app": "web"}}, True),
    ({"matchLabels": {"app": "api"}}, False),
    ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "x"]}]}, True),
    ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, True),
])
def test_label_selectors(selector: dict[str, Any] | None, selected: bool) -> None:
    assert selects(selector, LABELS) is selected


def test_spread_by_anti_affinity_or_constraints() -> None:
    anti = deployment(3, affinity={"podAntiAffinity": {"preferredDuringScheduling"
                                                       "IgnoredDuringExecution": []}})
    assert facts_from_objects(anti, [], []).spread == ("podAntiAffinity",)
    assert facts_from_objects(HARDENED, [], []).spread == (
        "topologySpreadConstraints on kubernetes.io/hostname",)
    assert "spread" in checks_found(deployment(3))


def test_identical_probes_are_named_and_distinct_ones_are_not() -> None:
    same = deployment(3, container={"readinessProbe": PROBE, "livenessProbe": dict(PROBE)})
    found = spec_findings(facts_from_objects(same, [], []))
    assert [f.check for f in found if f.check in ("readiness", "probes-identical")] == [
        "probes-identical"]
    assert "probes-identical" not in checks_found(HARDENED)


def test_resources_name_what_is_missing_and_leave_cpu_limits_alone() -> None:
    partial = copy.deepcopy(HARDENED)
    partial["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "10m"}}
    found = CHECKS["resources"](facts_from_objects(partial, [], []))
    assert [f.evidence for f in found] == ["container web: no requests.memory, limits.memory"]


def test_prestop_only_for_pods_behind_a_service() -> None:
    weak = deployment(3)
    assert "prestop" not in checks_found(weak)
    assert "prestop" in checks_found(weak, [], [SERVICE])
    headless = {"metadata": {"name": "x"}, "spec": {}}  # no selector: endpoints by hand
    assert "prestop" not in checks_found(weak, [], [headless])


def test_the_sample_web_lacks_only_a_prestop() -> None:
    docs = list(yaml.safe_load_all((REPO / "manifests/workloads/web.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    facts = facts_from_objects(kinds["Deployment"], [kinds["PodDisruptionBudget"]],
                               [kinds["Service"]])
    assert [f.check for f in spec_findings(facts)] == ["prestop"]


def test_facts_survive_the_journal() -> None:
    facts = facts_from_objects(HARDENED, [PDB], [SERVICE])
    assert WorkloadFacts.from_dict(facts.to_dict()) == facts


def test_finding_lines() -> None:
    findings = spec_findings(facts_from_objects(deployment(1), [], []))
    lines = finding_lines(findings, "Deployment weak/web: weak spots")
    assert lines[0] == f"Deployment weak/web: weak spots ({len(findings)}):"
    assert lines[1].startswith("  [replicas] Deployment weak/web runs 1 replica")
    assert lines[2] == "      evidence: spec.replicas: 1"
    assert finding_lines([], "x") == []
