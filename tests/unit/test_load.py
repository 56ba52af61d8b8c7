"""The load fault's pure parts: the autoscaled incident's phases from HPA and pod events, the
bounded, restricted load Job, the drill fields, and the scale-out/in verdict."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from chaos.drill import restore
from chaos.drill.fault_types import LOAD_PHASES, Follow
from chaos.drill.faults.load import DEADLINE_MARGIN_SECONDS, REQUESTS_PER_SECOND_CAP, load_job
from chaos.drill.loading import drill_from_object
from chaos.drill.timeline import Incident, scale_in_seconds
from chaos.observe.tracker import Tracker, hpa_utilization
from chaos.results.slo import _scale_check

from support import pod


def hpa(desired: int, current: int, utilization: int | None) -> dict[str, Any]:
    metrics = [] if utilization is None else [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageUtilization": utilization}}}]
    return {"spec": {"metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]},
            "status": {"desiredReplicas": desired, "currentReplicas": current,
                       "currentMetrics": metrics, "lastScaleTime": "2026-01-01T00:00:20Z"}}


def load_incident() -> Incident:
    made = Incident("r1-i1", 1, "load", "demo", "web", "web")
    made.mark("injected", 10.0, datetime.fromisoformat("2026-01-01T00:00:00+00:00"))
    return made


def started_tracker() -> tuple[Tracker, Incident, list[str]]:
    seen: list[str] = []
    tracker = Tracker(on_phase=lambda inc, phase, mono, api: seen.append(phase))
    for uid in "abc":
        tracker.pod_event("LISTED", pod(uid), 0.0)
    tracker.autoscaler_event("LISTED", hpa(3, 3, 2), 0.0)
    incident = load_incident()
    tracker.follow(incident, Follow.AUTOSCALE)
    return tracker, incident, seen


def test_autoscaled_phases_follow_the_hpa_then_the_pods_then_back() -> None:
    tracker, incident, seen = started_tracker()
    tracker.autoscaler_event("MODIFIED", hpa(3, 3, 40), 15.0)
    assert seen == []
    tracker.autoscaler_event("MODIFIED", hpa(3, 3, 300), 20.0)
    tracker.autoscaler_event("MODIFIED", hpa(6, 3, 300), 21.0)
    for uid in "def":
        tracker.pod_event("ADDED", pod(uid, ready=False, running=False), 21.5)
    tracker.pod_event("MODIFIED", pod("d"), 23.0)
    tracker.pod_event("MODIFIED", pod("e"), 23.5)
    assert "ready" not in seen
    tracker.pod_event("MODIFIED", pod("f"), 24.0)
    assert incident.recovered and not incident.settled
    tracker.autoscaler_event("MODIFIED", hpa(3, 6, 5), 70.0)
    assert "scaled_in" not in seen, "the pods are still there"
    # a terminating pod no longer counts, as for the scale fault
    for uid in "de":
        tracker.pod_event("MODIFIED", pod(uid, deleting=True), 71.0)
    assert "scaled_in" not in seen
    tracker.pod_event("MODIFIED", pod("f", deleting=True), 72.0)
    assert seen == list(LOAD_PHASES[1:])
    assert incident.is_ordered() and incident.settled
    assert incident.phases["utilization_above_target"] == 20.0
    assert incident.phases["scale_decided"] == 21.0
    assert incident.phases["replicas_created"] == 21.5
    assert incident.recovery_seconds == 14.0
    assert incident.peak_replicas == 6
    assert incident.api_times["scale_decided"].second == 20


def test_a_decision_without_utilization_over_target_is_not_taken_for_load() -> None:
    tracker, incident, seen = started_tracker()
    tracker.autoscaler_event("MODIFIED", hpa(5, 3, None), 12.0)
    assert seen == []


def test_hpa_utilization_reads_current_and_target() -> None:
    assert hpa_utilization(hpa(3, 3, 75)) == (75, 50)
    assert hpa_utilization(hpa(3, 3, None)) == (None, 50)
    assert hpa_utilization({}) == (None, None)


def test_the_load_job_is_bounded_restricted_and_marked_for_restore() -> None:
    record = restore.Record.now("run1", "load", None)
    job = load_job("chaos-drill-load-run1", "http://web.demo.svc:80/cgi-bin/work", 40, 3, record)
    spec = job["spec"]
    assert spec["parallelism"] == spec["completions"] == 3 and spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 40 + DEADLINE_MARGIN_SECONDS
    pod_spec = spec["template"]["spec"]
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod_spec["automountServiceAccountToken"] is False
    (container,) = pod_spec["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["URL"].startswith("http://web.demo.svc:")
    assert int(env["BUDGET"]) == 40 * REQUESTS_PER_SECOND_CAP
    assert restore.Record.from_json(job["metadata"]["annotations"][restore.ANNOTATION])
    assert "app" not in spec["template"]["metadata"]["labels"], "must not look like web's pods"


def drill(fault: dict[str, Any], slo: dict[str, Any] | None = None) -> Any:
    return drill_from_object({
        "apiVersion": "chaosdrill.dev/v1alpha1", "kind": "ChaosDrill",
        "metadata": {"name": "x", "namespace": "demo"},
        "spec": {"target": {"kind": "Deployment", "name": "web"}, "fault": fault,
                 "slo": slo or {}}})


def test_load_fields_and_slos_read_and_round_trip() -> None:
    loaded = drill({"type": "load", "durationSeconds": 40, "concurrency": 3},
                   {"maxScaleOutSeconds": 60, "maxScaleInSeconds": 90})
    assert (loaded.fault.duration_seconds, loaded.fault.concurrency) == (40, 3)
    assert (loaded.slo.max_scale_out_seconds, loaded.slo.max_scale_in_seconds) == (60, 90)
    assert drill_from_object(loaded.to_object()) == loaded


def test_scale_in_counts_from_the_end_of_the_load() -> None:
    incident = load_incident()
    incident.mark("scaled_in", 10.0 + 40 + 25)
    assert scale_in_seconds(incident, drill({"type": "load", "durationSeconds": 40})) == 25
    assert scale_in_seconds(load_incident(), drill({"type": "load"})) is None


@pytest.mark.parametrize(("seconds", "passed"), [({"r1-i1": 20.0}, True),
                                                 ({"r1-i1": 80.0}, False),
                                                 ({"r1-i1": None}, False), ({}, False)])
def test_scale_slo_checks(seconds: dict[str, float | None], passed: bool) -> None:
    assert _scale_check("max_scale_out_seconds", 60, seconds).passed is passed
