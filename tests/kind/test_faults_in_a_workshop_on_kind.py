"""`chaos-drill workshop --provider kind` with its shipped default plan, on the session's kind
cluster, driven from the trainer's terminal: it reuses the cluster, adds web's autoscaler, runs
nothing before Enter, runs every step on Enter (a pod deleted, a container killed twice, a broken
liveness probe, a node stopped, a node drained, a traffic surge) and each passes, the summary
names them all, and nothing a step changed is left. (On the local cluster the same plan runs in
a browser: tests/e2e/test_workshop.py.)"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaos.cluster import workloads

from support import REPO, assert_workshop_restored, free_port, running_cli

pytestmark = [pytest.mark.e2e, pytest.mark.kind]

PLAN_FILE = REPO / "manifests" / "workshops" / "default.yaml"
STEP_SECONDS = 360
"""The longest a step of the default plan may take, from Enter to its result."""


def say(message: str) -> None:
    print(f"[kind-workshop] {message}", flush=True)


def plan_steps() -> list[tuple[str, str]]:
    """The default plan's steps: each one's title and results folder (NN-DRILL, the drill's
    metadata.name), read from the files themselves."""
    steps = []
    for number, step in enumerate(yaml.safe_load(PLAN_FILE.read_text())["steps"], 1):
        drill = yaml.safe_load((PLAN_FILE.parent / step["drill"]).read_text())
        steps.append((" ".join(step["title"].split()),
                      f"{number:02d}-{drill['metadata']['name']}"))
    return steps


@pytest.mark.timeout(2400)
def test_the_default_plan_runs_on_kind_from_the_terminal(kind_web: Any, tmp_path: Path) -> None:
    steps, out = plan_steps(), tmp_path / "out"
    count = len(steps)
    timings: list[str] = []
    try:
        with running_cli("workshop", "--provider", "kind", "--web", str(free_port()), "--out",
                         str(out), keyboard=True) as (proc, output):
            for number, (title, folder) in enumerate(steps, 1):
                output.wait_for(f"step {number}/{count}: {title} (waiting)",
                                timeout=300 if number == 1 else 60)
                assert not (out / folder).exists(), f"step {number} ran before Enter"
                began = time.monotonic()
                output.type("\n")
                output.wait_for(f"step {number}/{count}: {title} (done)", timeout=STEP_SECONDS)
                timings.append(f"step {number} {folder}: {time.monotonic() - began:.1f} s")
                said = [line for line in output.lines if f"chaos-drill: step {number}: " in line
                        and f": {title}: " not in line]  # its result, not its start
                assert said and f"chaos-drill: step {number}: PASSED; recovery " in said[-1], \
                    said
                output.type("\n")  # on to the next step, or the summary after the last
            output.wait_for("summary shown; Enter", timeout=60)
            output.type("\n")
            code = proc.wait(timeout=120)
            log = output.finish(30)
    finally:
        print("\n".join(timings))
        workloads.set_autoscaling(kind_web, False, say)
    (tmp_path / "workshop.log").write_text(log)  # to read on failure
    assert code == 0, log
    summary = log[log.index("workshop How Kubernetes heals: summary"):]
    for number, (title, folder) in enumerate(steps, 1):
        assert f"{number}. {title}: PASSED; recovery " in summary, summary
        assert json.loads((out / folder / "summary.json").read_text())["passed"] is True
    assert [s["runs"] for s in json.loads((out / "workshop.json").read_text())["steps"]] == \
        [1] * count
    assert_workshop_restored(kind_web, nodes=3)
