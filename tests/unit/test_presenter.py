"""The workshop presenter: the step state machine (next, repeat, skip, the summary, Ctrl-C), the
keys from the terminal, and the page's POST /control, taken only with the run's token."""

from __future__ import annotations

import http.client
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.drill.plan import Plan, load_plan
from chaos.resources import shipped
from chaos.view.controls import Controls, read_terminal
from chaos.view.model import ViewModel
from chaos.view.presenter import DONE, RUNNING, SKIPPED, WAITING, Lesson, StepResult
from chaos.view.web import WebView

PLAN_TEXT = """
title: Two steps
steps:
  - {title: One, explain: First., watch: Tiles., drill: ../drills/web-pod-kill.yaml}
  - {title: Two, explain: Second., watch: Restarts., drill: ../drills/web-container-kill.yaml}
"""
PASSED = StepResult("PASSED", (1.25, None), (), 0.995, 0.3)


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    (tmp_path / "drills").symlink_to(shipped("manifests", "drills"))
    (tmp_path / "plans").mkdir()
    path = tmp_path / "plans" / "two.yaml"
    path.write_text(PLAN_TEXT)
    return load_plan(path)


def run(lesson: Lesson, key: str, result: StepResult = PASSED) -> int | None:
    """Presses KEY; when it asks for a step, runs it (started, then finished with RESULT)."""
    step = lesson.press(key)
    if step is not None:
        lesson.started(step)
        lesson.finished(step, result)
    return step


def test_nothing_runs_until_asked_and_next_runs_then_moves_on(plan: Plan) -> None:
    lesson = Lesson(plan)
    assert (lesson.index, lesson.status) == (0, [WAITING, WAITING])
    assert run(lesson, "next") == 0
    assert lesson.status == [DONE, WAITING] and lesson.results[0] == PASSED
    assert run(lesson, "next") is None and lesson.index == 1  # shows step 2, runs nothing
    assert run(lesson, "next") == 1
    assert run(lesson, "next") is None and lesson.summary and not lesson.ended
    assert run(lesson, "next") is None and lesson.ended


def test_repeat_runs_the_shown_step_again_and_keeps_the_last_result(plan: Plan) -> None:
    lesson = Lesson(plan)
    run(lesson, "next")
    failed = StepResult("FAILED", (31.0,), (), 0.5, 4.0, "failed recovery")
    assert run(lesson, "repeat", failed) == 0
    assert (lesson.index, lesson.runs, lesson.results[0]) == (0, [2, 0], failed)
    assert run(lesson, "repeat") == 0 and lesson.runs[0] == 3  # repeat of a waiting step runs


def test_skip_moves_on_without_running_and_the_summary_says_so(plan: Plan) -> None:
    lesson = Lesson(plan)
    assert run(lesson, "skip") is None
    assert (lesson.index, lesson.status) == (1, [SKIPPED, WAITING])
    run(lesson, "next")
    run(lesson, "skip")  # a done step: skip only moves on
    assert lesson.summary and lesson.status == [SKIPPED, DONE]
    assert lesson.summary_lines() == [
        "workshop Two steps: summary", "  1. One: skipped",
        "  2. Two: PASSED; recovery 1.25 s, none; served 99.50%, longest outage 0.30 s"]


def test_while_a_step_runs_only_skip_counts_and_moves_on_when_it_ends(plan: Plan) -> None:
    lesson = Lesson(plan)
    lesson.started(lesson.press("next") or 0)
    assert lesson.running and lesson.status[0] == RUNNING
    assert lesson.press("next") is None and lesson.press("repeat") is None
    assert lesson.press("skip") is None and lesson.skip_asked
    lesson.finished(0, StepResult("STOPPED", detail="stopped"))
    assert (lesson.index, lesson.status[0], lesson.skip_asked) == (1, DONE, False)


def test_ctrl_c_ends_with_the_summary(plan: Plan) -> None:
    lesson = Lesson(plan)
    run(lesson, "next")
    lesson.interrupted()
    assert lesson.summary and lesson.ended
    shown = lesson.to_dict()
    assert shown["summary"] and [s["status"] for s in shown["steps"]] == [DONE, WAITING]
    assert shown["steps"][0]["result"]["recoveries"] == [1.25, None]
    assert shown["steps"][1] | {"result": None} == {
        "title": "Two", "explain": "Second.", "watch": "Restarts.", "fault": "container_kill",
        "rounds": 3, "status": WAITING, "runs": 0, "result": None}


def test_unknown_keys_are_refused(plan: Plan) -> None:
    with pytest.raises(ValueError, match="unknown key 'jump'"):
        Lesson(plan).press("jump")


def test_controls_queue_keys_and_a_skip_stops_the_running_step() -> None:
    said: list[str] = []
    controls = Controls(said.append)
    controls.press("next")
    assert controls.get(1) == "next" and controls.get(0.01) is None
    stop = threading.Event()
    controls.press("repeat")  # pressed before the step began: stale once it runs
    controls.run_with(stop)
    assert controls.get(0.01) is None
    controls.press("next")
    assert not stop.is_set() and "a step is running" in said[-1]
    controls.press("skip")
    assert stop.is_set() and controls.skipped
    controls.run_with(None)
    assert not controls.skipped


def test_terminal_lines_become_keys() -> None:
    said: list[str] = []
    controls = Controls(said.append)
    read_terminal(io.StringIO("\nr\nS\nwhat\nn\n"), controls).join(5)
    assert [controls.get(1) for _ in range(4)] == ["next", "repeat", "skip", "next"]
    assert said == ["keys: Enter runs the step or goes on, r + Enter repeats, s + Enter skips, "
                    "Ctrl-C ends"]


@pytest.fixture
def presenter() -> Iterator[tuple[WebView, list[str]]]:
    keys: list[str] = []
    web = WebView(ViewModel("workshop"), 0, controls=keys.append)
    yield web, keys
    web.close(drain_seconds=0)


def post(web: WebView, body: str, token: str | None, path: str = "/control",
         host: str | None = None) -> int:
    connection = http.client.HTTPConnection(web.host, web.port, timeout=10)
    headers = {"Content-Type": "text/plain"}
    if token is not None:
        headers["X-Presenter-Token"] = token
    if host is not None:
        headers["Host"] = host
    connection.request("POST", path, body=body.encode(), headers=headers)
    status = connection.getresponse().status
    connection.close()
    return status


def test_the_page_served_to_loopback_carries_the_token(presenter: tuple[WebView, list[str]],
                                                        ) -> None:
    web, _ = presenter
    connection = http.client.HTTPConnection(web.host, web.port, timeout=10)
    connection.request("GET", "/")
    page = connection.getresponse().read().decode()
    assert len(web.token) >= 40
    assert f'<meta name="presenter-token" content="{web.token}">' in page
    plain = WebView(ViewModel("drill"), 0)
    try:
        assert plain.token == "" and plain.controls is None
    finally:
        plain.close(drain_seconds=0)


def test_keys_are_taken_only_with_the_token(presenter: tuple[WebView, list[str]]) -> None:
    web, keys = presenter
    assert post(web, "next", web.token) == 204
    assert post(web, "skip", web.token) == 204
    assert post(web, "next", None) == 403
    assert post(web, "next", web.token[:-1] + "x") == 403
    assert post(web, "next", "") == 403
    assert post(web, "jump", web.token) == 400
    assert post(web, "next" * 10, web.token) == 400
    assert post(web, "next", web.token, path="/events") == 405
    assert post(web, "next", web.token, host="evil.example:80") == 421
    assert keys == ["next", "skip"]


def test_a_view_without_controls_refuses_every_post() -> None:
    web = WebView(ViewModel("drill"), 0)
    try:
        assert post(web, "next", "", path="/control") == 405
    finally:
        web.close(drain_seconds=0)


def test_the_view_model_carries_the_lesson_and_a_new_drill_starts_clean(plan: Plan) -> None:
    model = ViewModel("workshop", mode="workshop")
    assert "lesson" not in model.snapshot()
    lesson = Lesson(plan)
    model.set_lesson(lesson.to_dict())
    model.set_drill(5, "pod_delete")
    model.round_started(5)
    model.probed(False, 0.0)
    model.finished(True, "5 incidents")
    model.new_drill(3, "container_kill")
    state = model.snapshot()
    assert state["lesson"]["steps"][0]["title"] == "One"
    assert state["progress"] == {"round": 0, "rounds": 3, "fault": "container_kill",
                                 "verdict": None, "detail": ""}
    assert (state["availability"]["requests"], state["availability"]["recent"]) == (0, "")


def test_the_terminal_view_names_the_shown_step(plan: Plan) -> None:
    from chaos.view.terminal import header

    model = ViewModel("workshop: Two steps", mode="workshop")
    model.set_lesson(Lesson(plan).to_dict())
    assert header(model.snapshot()).plain == "workshop: Two steps  step 1/2 One (waiting)"
