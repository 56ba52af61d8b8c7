"""The sample workload's autoscaling as declared: CPU requests and limits on web, an HPA that
scales it out at once and back within a minute, kept apart from the workloads `deploy` applies."""

from __future__ import annotations

from typing import Any

from chaos.cluster import workloads
from chaos.images import sample as images


def hpa() -> dict[str, Any]:
    (doc,) = [d for d in workloads.documents(workloads.AUTOSCALING)
              if d["kind"] == "HorizontalPodAutoscaler"]
    return doc


def web() -> dict[str, Any]:
    (doc,) = [d for d in workloads.documents()
              if d["kind"] == "Deployment" and d["metadata"]["name"] == "web"]
    return doc


def test_the_hpa_scales_web_between_3_and_at_least_6_on_cpu() -> None:
    spec = hpa()["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                      "name": web()["metadata"]["name"]}
    assert hpa()["metadata"]["namespace"] == web()["metadata"]["namespace"]
    assert spec["minReplicas"] == web()["spec"]["replicas"] == 3
    assert spec["maxReplicas"] >= 6
    (metric,) = spec["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"


def test_the_hpa_scales_up_at_once_and_down_within_a_minute() -> None:
    behavior = hpa()["spec"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    down = behavior["scaleDown"]
    longest = max(p["periodSeconds"] for p in down["policies"])
    assert down["stabilizationWindowSeconds"] + longest < 60


def test_web_requests_cpu_and_is_capped_so_load_shows_as_utilization() -> None:
    resources = web()["spec"]["template"]["spec"]["containers"][0]["resources"]
    request = int(resources["requests"]["cpu"].removesuffix("m"))
    limit = int(resources["limits"]["cpu"].removesuffix("m"))
    target = hpa()["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"]
    assert limit * 100 / request > 2 * target, "a loaded pod must be well over target"


def test_deploy_never_applies_an_autoscaler_with_the_workloads() -> None:
    assert all(d["kind"] != "HorizontalPodAutoscaler" for d in workloads.documents())


def test_web_image_has_a_cgi_that_burns_cpu() -> None:
    layer = images.layer(images.WEB, b"busybox")
    assert b"www/cgi-bin/work" in layer
    assert f"-lt {images.WORK_ROUNDS} ]".encode() in layer
