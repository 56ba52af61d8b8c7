"""The load fault's refusals and its Ctrl-C on the real cluster. A whole load drill, its phases in
order and in step with the HPA's own record, is test_metrics_drill.py's (one load drill serves
both, as each costs about a minute and a half)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaos.drill.faults.load import LOAD_LABEL

from support import cli, one_error, running_cli, write_drill

pytestmark = pytest.mark.e2e
LOAD_SECONDS = 40
LOAD: dict[str, Any] = {"type": "load", "durationSeconds": LOAD_SECONDS, "concurrency": 3}


def load_jobs(api: Any) -> list[Any]:
    return list(client.BatchV1Api(api).list_namespaced_job(
        "demo", label_selector=LOAD_LABEL).items)


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
