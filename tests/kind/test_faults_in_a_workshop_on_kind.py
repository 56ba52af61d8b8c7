"""`chaos-drill workshop --provider kind` on the session's kind cluster: it reuses the cluster,
adds web's autoscaler, waits for Enter in the terminal, runs its one step, and ends on Enter after
the summary. (The whole default plan runs on the local cluster: tests/e2e/test_workshop.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaos.cluster import workloads

from support import free_port, running_cli

pytestmark = [pytest.mark.e2e, pytest.mark.kind]

ONE_STEP_PLAN: dict[str, Any] = {"title": "One step on kind", "steps": [{
    "title": "A pod is deleted", "explain": "The ReplicaSet replaces it.",
    "watch": "A new tile turns green.", "drill": {
        "apiVersion": "chaosdrill.dev/v1alpha1", "kind": "ChaosDrill",
        "metadata": {"name": "kind-ws-pod-kill", "namespace": "demo"},
        "spec": {"target": {"kind": "Deployment", "name": "web"},
                 "fault": {"type": "pod_delete", "gracePeriodSeconds": 0}, "rounds": 1,
                 "seed": 7, "slo": {"maxRecoverySeconds": 120}}}}]}


def say(message: str) -> None:
    print(f"[kind-workshop] {message}", flush=True)


def test_a_one_step_workshop_runs_on_kind_from_the_terminal(kind_web: Any,
                                                             tmp_path: Path) -> None:
    plan, out = tmp_path / "plan.yaml", tmp_path / "out"
    plan.write_text(yaml.safe_dump(ONE_STEP_PLAN))
    try:
        with running_cli("workshop", str(plan), "--provider", "kind", "--web",
                         str(free_port()), "--out", str(out), keyboard=True) as (proc, output):
            output.wait_for("step 1/1: A pod is deleted (waiting)", timeout=300)
            assert not (out / "01-kind-ws-pod-kill").exists(), "the step ran before Enter"
            output.type("\n")
            output.wait_for("chaos-drill: step 1: PASSED; recovery ", timeout=180)
            output.type("\n")
            output.wait_for("summary shown; Enter", timeout=30)
            output.type("\n")
            code = proc.wait(timeout=60)
        log = output.finish(30)
    finally:
        workloads.set_autoscaling(kind_web, False, say)
    assert code == 0, log
    assert "1. A pod is deleted: PASSED; recovery " in log, log
    summary = json.loads((out / "01-kind-ws-pod-kill" / "summary.json").read_text())
    assert summary["passed"] is True and len(summary["incidents"]) == 1, summary
