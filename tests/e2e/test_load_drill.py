"""The load fault on the real cluster: a bounded Job loads web's Service, its HPA scales it out
and, after the load, back to 3; phases in order and in step with the HPA's own record."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaos.cluster.local import LocalCluster
from chaos.drill.fault_types import LOAD_PHASES
from chaos.drill.faults.load import LOAD_LABEL
from chaos.drill.loading import load_drill
from chaos.results.journal import read_journal
from chaos.run.runner import DrillRun, RunOptions

from support import cli, one_error, running_cli, write_drill

pytestmark = pytest.mark.e2e
LOAD_SECONDS = 40
LOAD: dict[str, Any] = {"type": "load", "durationSeconds": LOAD_SECONDS, "concurrency": 3}


def load_jobs(api: Any) -> list[Any]:
    return list(client.BatchV1Api(api).list_namespaced_job(
        "demo", label_selector=LOAD_LABEL).items)


def test_load_scales_web_out_and_back_in(autoscaled: Any, cluster: LocalCluster,
                                         tmp_path: Path) -> None:
    path = write_drill(tmp_path, LOAD, slo={"maxScaleOutSeconds": 90,
                                            "maxScaleInSeconds": 120})
    out = tmp_path / "out"
    summary = DrillRun(load_drill(path), cluster, RunOptions(out_dir=out), print).run()
    assert summary.passed, summary.slo_checks
    (incident,) = summary.incidents
    assert list(incident.phases) == list(LOAD_PHASES), incident.phases
    assert incident.ordered, incident.phases
    assert incident.peak_replicas is not None and incident.peak_replicas > 3
    assert incident.recovery_seconds is not None and incident.scale_in_seconds is not None
    assert summary.availability.ratio is not None
    print(f"load drill: scale-out {incident.recovery_seconds:.3f} s, scale-in "
          f"{incident.scale_in_seconds:.3f} s after the load, peak {incident.peak_replicas} "
          f"replicas, availability {summary.availability.ratio:.4f} of "
          f"{summary.availability.requests} probes")
    records = list(read_journal(out / "journal.jsonl"))
    # the HPA's own record agrees: it raised desiredReplicas and said so in an Event
    desired = [r.get("desired") for r in records if r.event == "autoscaler"]
    assert max(desired) > 3 and incident.peak_replicas == max(desired), desired
    rescales = [r for r in records if r.event == "k8s_event"
                and r.get("reason") == "SuccessfulRescale"]
    assert rescales, "the HPA's SuccessfulRescale event was not recorded"
    injected = next(r.mono for r in records if r.event == "fault_injected")
    decided = next(r for r in records if r.event == "phase" and r.get("phase") == "scale_decided")
    assert decided.get("api_time"), "scale_decided carries the HPA's lastScaleTime"
    first_up = min(r.mono for r in rescales if r.mono >= injected)
    assert abs(first_up - decided.mono) < 5, (first_up, decided.mono)
    scaled_in = next(r.mono for r in records if r.event == "phase"
                     and r.get("phase") == "scaled_in")
    assert scaled_in - injected >= LOAD_SECONDS
    assert load_jobs(autoscaled) == [], "the load Job must be removed"
    deployment = client.AppsV1Api(autoscaled).read_namespaced_deployment("web", "demo")
    assert deployment.spec.replicas == 3


def test_load_without_an_autoscaler_is_refused_before_anything(web: Any,
                                                              tmp_path: Path) -> None:
    result = cli("run", str(write_drill(tmp_path, LOAD)), "--out", str(tmp_path / "out"))
    one_error(result, "HorizontalPodAutoscaler", "deploy --autoscale")
    assert load_jobs(web) == []


def test_ctrl_c_during_the_load_removes_the_job(autoscaled: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with running_cli("run", str(write_drill(tmp_path, LOAD)), "--out",
                     str(out)) as (proc, output):
        output.wait_for("started Job chaos-drill-load-", timeout=120)
        assert len(load_jobs(autoscaled)) == 1
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=90)
    text = output.finish(30)
    assert code == 1, text
    assert "removing the load Job" in text
    assert [j for j in load_jobs(autoscaled) if not j.metadata.deletion_timestamp] == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["aborted"] is True and summary["passed"] is False
