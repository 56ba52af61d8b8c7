"""examples/kind-smoke/github-workflow.yml without a cluster: every chaos-drill command in it is
one the parser takes, the drill it applies is valid, and it has the steps tests/kind runs or
names as needing the internet (the run itself is tests/kind/test_pytest_kind.py)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from chaos.cli.parser import build_parser
from chaos.drill.loading import load_drill

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kind-smoke"
JOB = yaml.safe_load((EXAMPLE / "github-workflow.yml").read_text())["jobs"]["smoke"]
RUNS = {step["name"]: step["run"] for step in JOB["steps"] if "run" in step}


def chaos_drill_commands() -> list[list[str]]:
    """Each `chaos-drill ...` in the steps (also inside `$(...)`), its variables as the job sets
    them."""
    commands = []
    for text in RUNS.values():
        for line in text.replace("$CLUSTER", JOB["env"]["CLUSTER"]).splitlines():
            if "chaos-drill " in line:
                words = shlex.split(line.split("chaos-drill ", 1)[1].split(")")[0],
                                    comments=True)
                commands.append(words)
    return commands


def test_the_workflow_drills_with_the_cli_the_kind_provider_and_the_operator() -> None:
    commands = chaos_drill_commands()
    assert len(commands) >= 6
    for words in commands:
        build_parser().parse_args(words)  # a renamed command or option fails here
    assert ["cluster", "down", "--provider", "kind", "--name", "smoke"] in commands
    assert ["cluster", "down", "--provider", "kubeconfig"] in commands
    assert any(words[:2] == ["operator", "install"] for words in commands)


@pytest.mark.parametrize("needle", ["pip install dist/chaos_drill-*.whl pytest-kind",
                                    "pytest examples/kind-smoke", "--keep-cluster",
                                    "kubectl wait", "kind delete cluster"])
def test_the_workflow_keeps_each_step(needle: str) -> None:
    assert any(needle in text for text in RUNS.values()), needle


def test_the_drill_it_applies_is_valid() -> None:
    applied = [words[3] for text in RUNS.values()
               for words in (shlex.split(line) for line in text.splitlines())
               if words[:3] == ["kubectl", "apply", "-f"]]
    assert applied
    for path in applied:
        assert load_drill(EXAMPLE.parents[1] / path).name == "web-pod-kill"
