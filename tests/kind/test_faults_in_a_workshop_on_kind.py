"""`chaos-drill workshop --provider kind` on the session's kind cluster: it reuses the cluster,
adds web's autoscaler, waits for Enter in the terminal, runs its one step, and ends on Enter after
the summary. (The whole default plan runs on the local cluster: tests/e2e/test_workshop.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from chaos.cluster import workloads

from support import free_port, one_step_plan, run_one_step_on_enter, running_cli

pytestmark = [pytest.mark.e2e, pytest.mark.kind]


def say(message: str) -> None:
    print(f"[kind-workshop] {message}", flush=True)


def test_a_one_step_workshop_runs_on_kind_from_the_terminal(kind_web: Any,
                                                             tmp_path: Path) -> None:
    plan, out = tmp_path / "plan.yaml", tmp_path / "out"
    plan.write_text(yaml.safe_dump(one_step_plan("kind-ws-pod-kill", None)))
    try:
        with running_cli("workshop", str(plan), "--provider", "kind", "--web",
                         str(free_port()), "--out", str(out), keyboard=True) as (proc, output):
            run_one_step_on_enter(proc, output, out / "01-kind-ws-pod-kill", timeout=300)
    finally:
        workloads.set_autoscaling(kind_web, False, say)
