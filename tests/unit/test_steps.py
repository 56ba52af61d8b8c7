"""Step timings: each progress line is a step until the next; the end names the longest."""

from __future__ import annotations

import json
from pathlib import Path

from chaos.cli.steps import StepClock


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_step_lasts_until_the_next_and_the_longest_are_named(tmp_path: Path) -> None:
    said: list[str] = []
    clock = Clock()
    steps = StepClock(said.append, clock)
    steps("writing certificates")
    clock.now += 0.5
    steps("waiting for etcd healthy")
    clock.now += 2.0
    steps("waiting for kube-apiserver ready")
    clock.now += 4.25
    result = steps.finish("local cluster up", str(tmp_path / "t.json"))
    assert said[:3] == ["[   0.0s] writing certificates", "[   0.5s] waiting for etcd healthy",
                        "[   2.5s] waiting for kube-apiserver ready"]
    assert said[3] == ("local cluster up in 6.8s; longest: waiting for kube-apiserver ready "
                       "4.2s, waiting for etcd healthy 2.0s, writing certificates 0.5s")
    assert [s["seconds"] for s in result["steps"]] == [0.5, 2.0, 4.25]
    assert json.loads((tmp_path / "t.json").read_text()) == result
    assert result["total_seconds"] == 6.75


def test_unstamped_lines_pass_through_unchanged() -> None:
    said: list[str] = []
    clock = Clock()
    steps = StepClock(said.append, clock, stamp=False)
    steps("r1-i1: recovered in 1.281s")
    clock.now += 1
    assert said == ["r1-i1: recovered in 1.281s"]
    assert steps.finish("drill x")["steps"][0]["seconds"] == 1.0
