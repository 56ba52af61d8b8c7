"""The targeting filter chain, the blast-radius cap and seeded, repeatable picks."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes.client import (
    V1Container,
    V1ObjectMeta,
    V1OwnerReference,
    V1Pod,
    V1PodCondition,
    V1PodSpec,
    V1PodStatus,
)

from chaos.drill.loading import load_drill
from chaos.drill.targeting import (
    OPT_IN_LABEL,
    PodInfo,
    TargetingParams,
    check_node,
    filter_min_age,
    filter_namespace,
    filter_not_protected,
    filter_opted_in,
    filter_running,
    filter_selector,
    pods_on_node,
    select_targets,
)
from chaos.errors import SpecError

from support import REPO

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
WEB = {"app": "web", OPT_IN_LABEL: "true"}
PARAMS = TargetingParams(namespace="demo", match_labels={"app": "web"}, count=1, max_unavailable=1)


def pod(name: str, **changes: object) -> PodInfo:
    base = PodInfo(
        namespace="demo",
        name=name,
        uid=f"uid-{name}",
        labels=WEB,
        phase="Running",
        deleting=False,
        created_at=NOW - timedelta(minutes=5),
        node="node-1",
        ready=True,
        owner_kind="ReplicaSet",
        owner_name="web-abc",
        containers=("web",),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def names(pods: list[PodInfo]) -> list[str]:
    return [p.name for p in pods]


def test_from_api() -> None:
    api_pod = V1Pod(
        metadata=V1ObjectMeta(
            namespace="demo",
            name="web-1",
            uid="u1",
            labels=WEB,
            creation_timestamp=NOW,
            owner_references=[
                V1OwnerReference(
                    api_version="apps/v1", kind="ReplicaSet", name="web-abc", uid="r",
                    controller=True,
                )
            ],
        ),
        spec=V1PodSpec(node_name="node-2", containers=[V1Container(name="web")]),
        status=V1PodStatus(
            phase="Running", conditions=[V1PodCondition(type="Ready", status="True")]
        ),
    )
    info = PodInfo.from_api(api_pod)
    assert info == pod("web-1", uid="u1", created_at=NOW, node="node-2")
    assert info.available


def test_from_api_with_little_set() -> None:
    info = PodInfo.from_api(V1Pod(metadata=V1ObjectMeta(name="bare", namespace="demo")))
    assert (info.phase, info.ready, info.owner_kind, info.containers) == ("Unknown", False, "", ())


def test_from_dict() -> None:
    raw = {
        "metadata": {
            "namespace": "demo",
            "name": "web-1",
            "uid": "u1",
            "labels": WEB,
            "creationTimestamp": "2025-01-01T12:00:00Z",
            "deletionTimestamp": "2025-01-01T12:01:00Z",
            "ownerReferences": [{"kind": "ReplicaSet", "name": "web-abc", "controller": True}],
        },
        "spec": {"nodeName": "node-2", "containers": [{"name": "web"}, {"name": "sidecar"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]},
    }
    info = PodInfo.from_dict(raw)
    assert info.created_at == NOW
    assert info.deleting and not info.ready and not info.available
    assert info.containers == ("web", "sidecar")
    assert (info.owner_kind, info.owner_name, info.node) == ("ReplicaSet", "web-abc", "node-2")


def test_filter_opted_in() -> None:
    pods = [
        pod("yes"),
        pod("no", labels={"app": "web"}),
        pod("false", labels={"app": "web", OPT_IN_LABEL: "false"}),
    ]
    assert names(filter_opted_in(pods)) == ["yes"]


def test_filter_namespace() -> None:
    assert names(filter_namespace([pod("a"), pod("b", namespace="other")], "demo")) == ["a"]


def test_filter_not_protected() -> None:
    pods = [
        pod("a"),
        pod("dns", namespace="kube-system"),
        pod("own", labels={**WEB, "app.kubernetes.io/name": "chaos-drill"}),
    ]
    assert names(filter_not_protected(pods)) == ["a"]


def test_filter_selector() -> None:
    pods = [pod("a"), pod("b", labels={"app": "db"}), pod("c", labels={**WEB, "tier": "x"})]
    assert names(filter_selector(pods, {"app": "web"})) == ["a", "c"]
    assert names(filter_selector(pods, {"app": "web", "tier": "x"})) == ["c"]


def test_filter_running() -> None:
    pods = [pod("a"), pod("pending", phase="Pending"), pod("going", deleting=True)]
    assert names(filter_running(pods)) == ["a"]


def test_filter_min_age() -> None:
    pods = [pod("old"), pod("new", created_at=NOW - timedelta(seconds=10))]
    assert names(filter_min_age(pods, 60, NOW)) == ["old"]
    assert names(filter_min_age(pods, 10, NOW)) == ["old", "new"]


def test_selection_records_what_each_filter_removed() -> None:
    pods = [
        pod("web-1"),
        pod("web-2"),
        pod("elsewhere", namespace="other"),
        pod("dns", namespace="kube-system"),
        pod("db", labels={"app": "db", OPT_IN_LABEL: "true"}),
        pod("shy", labels={"app": "web"}),
    ]
    selection = select_targets(pods, PARAMS, random.Random(1), NOW)
    assert selection.considered == 6
    assert selection.removed() == {
        "namespace": 2,
        "protected": 0,
        "selector": 1,
        "opt_in": 1,
        "running": 0,
        "min_age": 0,
    }
    assert names(list(selection.candidates)) == ["web-1", "web-2"]
    assert len(selection.victims) == 1
    assert any(line.startswith("victim demo/web-") for line in selection.describe())


def test_same_seed_same_victims_whatever_the_order() -> None:
    pods = [pod(f"web-{i}") for i in range(10)]
    params = replace(PARAMS, count=3, max_unavailable=3)
    first = select_targets(pods, params, random.Random(42), NOW).victims
    shuffled = list(reversed(pods))
    again = select_targets(shuffled, params, random.Random(42), NOW).victims
    assert first == again and len(first) == 3
    picks = {select_targets(pods, params, random.Random(s), NOW).victims for s in range(5)}
    assert len(picks) > 1


def test_count_capped_by_max_unavailable() -> None:
    pods = [pod(f"web-{i}") for i in range(5)]
    params = replace(PARAMS, count=4, max_unavailable=2)
    selection = select_targets(pods, params, random.Random(), NOW)
    assert selection.limit == 2 and len(selection.victims) == 2


def test_pods_already_down_count_against_the_cap() -> None:
    pods = [pod("web-1"), pod("web-2"), pod("web-3", phase="Pending", ready=False)]
    selection = select_targets(pods, replace(PARAMS, max_unavailable=1), random.Random(), NOW)
    assert selection.unavailable == 1 and selection.limit == 0 and selection.victims == ()


def test_fewer_candidates_than_count() -> None:
    selection = select_targets([pod("web-1")], replace(PARAMS, count=3, max_unavailable=3),
                               random.Random(), NOW)
    assert names(list(selection.victims)) == ["web-1"]


def test_params_for_drill() -> None:
    drills = REPO / "manifests" / "drills"
    drill = load_drill(drills / "web-pod-kill.yaml")
    params = TargetingParams.for_drill(drill, {"app": "web"})
    assert (params.namespace, params.count, params.max_unavailable) == ("demo", 1, 1)
    with pytest.raises(ValueError, match="matchLabels"):
        TargetingParams.for_drill(drill)


def test_pods_on_node_are_its_opted_in_available_pods_by_name() -> None:
    pods = [pod("c", node="node-2"), pod("a", node="node-2"), pod("b"),
            pod("d", node="node-2", ready=False), pod("e", node="node-2", deleting=True),
            pod("f", node="node-2", labels={"app": "web"})]
    assert names(pods_on_node(pods, "node-2")) == ["a", "c"]
    assert names(pods_on_node(pods, "node-1")) == ["b"]
    assert pods_on_node(pods, "node-3") == []


def test_a_missing_node_is_refused_naming_the_field_and_the_nodes() -> None:
    check_node(None, ["node-1"])
    check_node("node-2", ["node-1", "node-2"])
    with pytest.raises(SpecError) as refused:
        check_node("node-9", ["node-2", "node-1"])
    assert str(refused.value) == ("spec.fault.node node-9 does not exist: use one of node-1, "
                                  "node-2, or leave it out")
