"""oom_kill without a cluster: a container without a memory limit is refused before anything is
injected, the providers that cannot reach a node's runtime refuse it in one line, and the hog's
restore record is read back or refused with the reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from prometheus_client import CollectorRegistry

from chaos.cluster import incluster
from chaos.cluster.base import MemoryHog
from chaos.cluster.kind import KindCluster
from chaos.cluster.kube import Workload
from chaos.cluster.kubeconfig import KubeconfigCluster
from chaos.cluster.local import LocalCluster
from chaos.drill import restore
from chaos.drill.fault_types import fault_type
from chaos.drill.faults import FaultContext
from chaos.drill.faults.oom_kill import OomKill, hog_from_original, hog_original, memory_limit
from chaos.drill.loading import drill_from_object, load_drill
from chaos.drill.targeting import PodInfo
from chaos.errors import FaultError, RestoreError
from chaos.monitoring.drill_metrics import for_drill

from support import REPO, pod

HOG = MemoryHog("node-1", 4812, 2437906, "5d0c9a1e8b7f", 64 * 2**20)


def limited(uid: str, memory: str | None) -> dict[str, Any]:
    raw = pod(uid)
    if memory:
        raw["spec"]["containers"][0]["resources"] = {"limits": {"memory": memory}}
    return raw


def test_the_memory_limit_is_read_from_the_pod_spec() -> None:
    assert memory_limit(limited("a", "64Mi"), None) == "64Mi"
    assert memory_limit(limited("a", "64Mi"), "web") == "64Mi"
    assert memory_limit(limited("a", None), "web") is None
    assert memory_limit(limited("a", "64Mi"), "sidecar") is None


def test_a_victim_without_a_memory_limit_is_refused_before_anything_is_injected() -> None:
    web = Workload("Deployment", "web", "demo", {"app": "web"})
    ctx = FaultContext(api=None, provider=LocalCluster(), drill=_drill(), workload=web,
                       say=print, pod_status={"a": limited("a", "64Mi"), "b": limited("b", None)})
    fault = OomKill()
    assert len(fault.targets(ctx, [PodInfo.from_dict(ctx.pod_status["a"])])) == 1
    with pytest.raises(FaultError) as refused:
        fault.targets(ctx, [PodInfo.from_dict(ctx.pod_status["b"])])
    assert str(refused.value) == ("oom_kill needs a memory limit on container web of pod "
                                  "demo/web-b: set resources.limits.memory in its pod template")
    assert fault.started == []


def _drill() -> Any:
    return drill_from_object({
        "apiVersion": "chaosdrill.dev/v1alpha1", "kind": "ChaosDrill",
        "metadata": {"name": "oom", "namespace": "demo"},
        "spec": {"target": {"kind": "Deployment", "name": "web"}, "fault": {"type": "oom_kill"}}})


def test_providers_without_a_node_runtime_refuse_it_in_one_line() -> None:
    oom_kill = fault_type("oom_kill")
    with pytest.raises(FaultError) as refused:
        oom_kill.check_provider(KubeconfigCluster("/nonexistent"))
    assert str(refused.value) == ("oom_kill needs access to the node's container runtime, which "
                                  "the kubeconfig provider lacks: use liveness_break")
    with pytest.raises(FaultError, match="^oom_kill needs .* the in-cluster provider lacks"):
        oom_kill.check_provider(incluster.InClusterProvider())
    for provider in (LocalCluster(), KindCluster("x")):
        oom_kill.check_provider(provider)


def test_the_hog_record_round_trips() -> None:
    original = hog_original("local", HOG)
    text = restore.Record("abc", "oom_kill", original, "laptop", 42, "t").to_json()
    record = restore.Record.parse(text, "Pod")
    assert hog_from_original(record.original) == ("local", HOG)


@pytest.mark.parametrize("original, problem", [
    (None, "its original is not the memory hog's provider, node, pid and start"),
    ({**hog_original("local", HOG), "pid": "4812"}, "its original has no valid pid"),
    ({**hog_original("local", HOG), "start": True}, "its original has no valid start"),
    ({**hog_original("", HOG)}, "its original has no valid provider"),
])
def test_an_unusable_hog_record_says_why(original: Any, problem: str) -> None:
    text = restore.Record("abc", "oom_kill", original, "laptop", 42, "t").to_json()
    with pytest.raises(RestoreError) as caught:
        restore.Record.parse(text, "Pod")
    assert str(caught.value) == problem


def test_a_hog_is_its_own_kind_of_leftover_stopped_only_by_its_provider() -> None:
    text = restore.Record("abc", "oom_kill", hog_original("kind", HOG), "laptop", 42,
                          "t").to_json()
    found = restore.Findings()
    restore._sort("Pod", [client.V1Pod(metadata=client.V1ObjectMeta(
        name="web-a", namespace="demo", annotations={restore.ANNOTATION: text}))], found)
    [left] = found.leftovers
    assert left.kind == restore.MEMORY_HOG
    assert left.describe().startswith("Pod demo/web-a: memory hog started by oom_kill run abc")
    with pytest.raises(RestoreError) as caught:
        restore.undo(None, left, provider=LocalCluster())
    assert str(caught.value) == (
        "skipped Pod demo/web-a: its memory hog (pid 4812 on node node-1) was started by "
        "oom_kill run abc on the kind provider, and only that provider can stop it: run "
        "'chaos-drill restore --provider kind' where that cluster runs")
    assert json.loads(text)["original"]["provider"] == "kind"


def test_the_example_drill_gets_oom_kill_phase_metrics_at_zero() -> None:
    registry = CollectorRegistry()
    metrics = for_drill(registry, load_drill(REPO / "manifests/drills/web-oom-kill.yaml"))
    phases = {(s.labels["fault"], s.labels["phase"], s.value) for family in registry.collect()
              for s in family.samples if s.name == "chaosdrill_phase_seconds_count"}
    assert phases == {("oom_kill", p, 0.0) for p in ("container_exited", "restarted", "ready")}
    metrics.incident_closed("oom_kill", 1.3, {"container_exited": 0.2, "restarted": 1.0,
                                              "ready": 0.1})
    assert registry.get_sample_value("chaosdrill_recovery_seconds_count", {
        "namespace": "demo", "workload": "web", "fault": "oom_kill"}) == 1
