"""Lesson plans: the schema's errors name the file and the field, drills are found relative to the
plan or written inline, and the shipped default plan validates with every drill it names."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaos.cli.parser import main
from chaos.drill.plan import DEFAULT_PLAN, load_plan
from chaos.drill.targeting import OPT_IN_LABEL, PodInfo, TargetingParams, select_targets
from chaos.errors import SpecError
from chaos.resources import shipped

INLINE: dict[str, Any] = {"apiVersion": "chaosdrill.dev/v1alpha1", "kind": "ChaosDrill",
          "metadata": {"name": "inline-kill", "namespace": "demo"},
          "spec": {"target": {"kind": "Deployment", "name": "web"},
                   "fault": {"type": "pod_delete"}}}


def step(**fields: Any) -> dict[str, Any]:
    found = {"title": "A pod is deleted", "explain": "The ReplicaSet replaces it.",
             "drill": "../drills/web-pod-kill.yaml", "watch": "A new tile."}
    found.update(fields)
    return {key: value for key, value in found.items() if value is not None}


def target_pod(name: str) -> PodInfo:
    return PodInfo("demo", name, f"uid-{name}", {"app": "web", OPT_IN_LABEL: "true"}, "Running",
                   False, datetime(2026, 1, 1, tzinfo=UTC), "node-1", True, "ReplicaSet",
                   "web-748f7d7d7", ("web",))


def write(tmp_path: Path, document: Any) -> Path:
    (tmp_path / "drills").mkdir(exist_ok=True)
    (tmp_path / "drills" / "web-pod-kill.yaml").write_text(
        shipped("manifests", "drills", "web-pod-kill.yaml").read_text())
    path = tmp_path / "plans" / "plan.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return path


def error_of(tmp_path: Path, document: Any) -> str:
    path = write(tmp_path, document)
    with pytest.raises(SpecError) as caught:
        load_plan(path)
    message = str(caught.value)
    assert "\n" not in message
    return message.removeprefix(f"{path}: ")


def test_a_plan_loads_drills_from_files_relative_to_it_and_inline(tmp_path: Path) -> None:
    path = write(tmp_path, {"title": "Healing", "steps": [
        step(explain="The  ReplicaSet\nreplaces it."), step(title="Inline", drill=INLINE)]})
    plan = load_plan(path)
    assert plan.title == "Healing"
    first, second = plan.steps
    assert first.explain == "The ReplicaSet replaces it."
    assert (first.drill.name, first.drill.rounds) == ("web-pod-kill", 5)
    assert first.drill_source == str(tmp_path / "plans" / "../drills/web-pod-kill.yaml")
    assert (second.drill.name, second.drill.fault.type, second.drill_source) == (
        "inline-kill", "pod_delete", "inline")


@pytest.mark.parametrize(("document", "expected"), [
    ({"steps": [step(), step(drill=None)]}, "steps[1].drill: required; add a ChaosDrill file"),
    ({"steps": [step(watch=None)]}, "steps[0].watch: required; add what to watch for"),
    ({"title": "x"}, "steps: required"),
    ({"steps": []}, "steps: empty; give a list of steps"),
    ({"steps": [step(explain="")]}, "steps[0].explain: empty; give a short paragraph"),
    ({"steps": [step(title=3)]}, "steps[0].title: int is not string"),
    ({"steps": [step(drill=7)]}, "steps[0].drill: int is not string or object"),
    ({"steps": [step(colour="red")]}, "steps[0].colour: unknown field; allowed: title, "),
    ({"steps": [step()], "slides": 1}, "slides: unknown field; allowed: title, steps"),
    ({"steps": "all"}, "steps: str is not array"),
    ({"steps": [step(drill="missing.yaml")]}, "steps[0].drill: no drill file missing.yaml"),
])
def test_errors_name_the_field(tmp_path: Path, document: Any, expected: str) -> None:
    assert error_of(tmp_path, document).startswith(expected)


def test_an_inline_drill_is_validated_like_a_file(tmp_path: Path) -> None:
    bad = {**INLINE, "spec": {**INLINE["spec"], "fault": {"type": "pod_explode"}}}
    message = error_of(tmp_path, {"steps": [step(drill=bad)]})
    assert message.startswith("steps[0].drill: spec.fault.type: 'pod_explode' is not allowed")


def test_a_drill_file_that_does_not_validate_names_its_own_file(tmp_path: Path) -> None:
    path = write(tmp_path, {"steps": [step(drill="../drills/bad.yaml")]})
    (tmp_path / "drills" / "bad.yaml").write_text("apiVersion: chaosdrill.dev/v1alpha1\n"
                                                  "kind: ChaosDrill\nmetadata: {name: b}\n")
    with pytest.raises(SpecError, match=r"bad\.yaml:.*spec: missing"):
        load_plan(path)


@pytest.mark.parametrize(("text", "expected"), [
    ("steps: [\n", "invalid YAML"), ("- 1\n", "not a lesson plan"),
    ("steps: []\nsteps: []\n", "steps: duplicate key"),
])
def test_bad_yaml_is_one_line(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error_of(tmp_path, text)


def test_the_default_plan_validates_and_every_drill_it_names_exists() -> None:
    plan = load_plan(DEFAULT_PLAN)
    assert DEFAULT_PLAN.parent == shipped("manifests", "workshops")
    faults = [s.drill.fault.type for s in plan.steps]
    assert faults == ["pod_delete", "container_kill", "liveness_break", "node_stop",
                      "node_drain", "load"]
    drills = shipped("manifests", "drills")
    for found in plan.steps:
        assert Path(found.drill_source).resolve().parent == drills.resolve(), found
        assert found.title and found.explain and found.watch
    twice = plan.steps[1].drill
    assert (twice.rounds, twice.fault.count) == (2, 1) and "CrashLoopBackOff" in (
        plan.steps[1].watch)


def test_the_default_plan_stops_a_node_before_it_drains_one() -> None:
    """A drain moves every pod of web off the drained node and nothing moves them back after
    the uncordon, so a node_stop after it would take down the node that holds all of web."""
    faults = [s.drill.fault.type for s in load_plan(DEFAULT_PLAN).steps]
    assert faults.index("node_stop") < faults.index("node_drain")


@pytest.mark.parametrize("suffixes", [("a", "b", "c"), ("x7k2q", "4rsnc", "nc7rl")])
def test_the_twice_killed_drill_picks_the_same_pod_both_rounds(suffixes: tuple[str, ...]) -> None:
    """The default plan's second step relies on its seed choosing the same one of web's three
    pods in both rounds, whatever their names (container_kill keeps the pod)."""
    drill = load_plan(DEFAULT_PLAN).steps[1].drill
    params = TargetingParams.for_drill(drill, {"app": "web"})
    pods = [target_pod(f"web-748f7d7d7-{suffix}") for suffix in suffixes]
    rng, now = random.Random(drill.seed), datetime.now(UTC)
    first, second = (select_targets(pods, params, rng, now).victims for _ in range(2))
    assert len(first) == 1 and first == second


def test_validate_accepts_plans_and_drills(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, {"steps": [step(drill=None)]})
    drill = shipped("manifests", "drills", "web-pod-kill.yaml")
    assert main(["validate", str(DEFAULT_PLAN), str(drill)]) == 0
    err = capsys.readouterr().err
    assert f"valid: {DEFAULT_PLAN} (lesson plan 'How Kubernetes heals': 6 steps)" in err
    assert f"valid: {drill} (web-pod-kill: pod_delete, 5 rounds)" in err
    assert main(["validate", str(bad)]) == 1
    assert f"invalid: {bad}: steps[0].drill: required" in capsys.readouterr().err


def test_workshop_refuses_a_bad_plan_or_port_before_any_cluster(
        tmp_path: Path, taken_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, {"steps": [step(watch=None)]})
    assert main(["workshop", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (f"chaos-drill: error: {bad}: steps[0].watch: required; "
                                       "add what to watch for on the page\n")
    assert main(["workshop", str(tmp_path / "none.yaml")]) == 2
    assert "cannot read plan file" in capsys.readouterr().err
    assert main(["workshop", "--web", str(taken_port), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.endswith(f"cannot serve the web view on 127.0.0.1:"
                                            f"{taken_port} (Address already in use): pick "
                                            "another --web port\n")
    assert not (tmp_path / "out").exists()
