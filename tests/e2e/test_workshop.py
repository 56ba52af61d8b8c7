"""`chaos-drill workshop` with its shipped default plan on the local cluster, driven as a trainer
does: headless Chromium presses the keys on the presenter page; each step shows its title,
explanation and what to watch for before anything runs, runs on →, then shows its result (the
same numbers as its folder's summary.json); a second browser on the attendees' link (--share,
this machine's own default-route address) sees the same and has no keys, and a request without
the token gets 403; `r` repeats the last step and Ctrl-C in the middle of it restores what it
changed and ends with the summary."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from browser import Chromium, needs_chromium
from support import (
    REPO,
    Output,
    assert_workshop_restored,
    free_port,
    one_step_plan,
    run_one_step_on_enter,
    running_cli,
    start_cli,
)

pytestmark = pytest.mark.e2e

SCREENSHOTS = os.environ.get("CHAOS_DRILL_SCREENSHOTS")
"""A folder for the presenter page's screenshots (docs/workshop-step.png is one of them)."""

PLAN_FILE = REPO / "manifests" / "workshops" / "default.yaml"
STEP_SECONDS = 360
"""The longest a step of the default plan may take, from its key to its result."""


def one_line(text: str) -> str:
    return " ".join(text.split())


def plan_steps() -> list[dict[str, str]]:
    """The default plan's steps as the page should show them, each with its results folder
    (NN-DRILL, the drill's metadata.name), read from the files themselves."""
    steps = []
    for number, step in enumerate(yaml.safe_load(PLAN_FILE.read_text())["steps"], 1):
        drill = yaml.safe_load((PLAN_FILE.parent / step["drill"]).read_text())
        steps.append({"title": one_line(step["title"]), "explain": one_line(step["explain"]),
                      "watch": one_line(step["watch"]),
                      "folder": f"{number:02d}-{drill['metadata']['name']}"})
    return steps


def text_of(element: str) -> str:
    return f"document.getElementById({element!r}).textContent"


def step_is(page: Chromium, number: int, count: int, status: str, timeout: float) -> None:
    page.wait_for(f"{text_of('step-number')}.startsWith('step {number} of {count} · {status}')",
                  timeout, f"step {number} {status}")


def shoot(page: Chromium, name: str, tmp_path: Path) -> None:
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(folder / name)


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


PODS = "[...document.querySelectorAll('.tile')].map((tile) => tile.dataset.name).sort()"


def fits(page: Chromium) -> bool:
    """The whole view shows without scrolling."""
    return bool(page.evaluate("document.documentElement.scrollHeight <= innerHeight && "
                              "document.documentElement.scrollWidth <= innerWidth"))


def fits_both(page: Chromium, what: str) -> None:
    """PAGE shows without scrolling at 1920×1080 and at 1024×768 (where it is left)."""
    page.viewport(1920, 1080)
    assert fits(page), f"{what} scrolls at 1920×1080"
    page.viewport(1024, 768)
    assert fits(page), f"{what} scrolls at 1024×768"


def numbers(text: str) -> list[float]:
    return [float(n) for n in re.findall(r"\d+\.\d+", text)]


def check_result(page: Chromium, folder: Path) -> dict[str, Any]:
    """The shown step's result on the page is its folder's summary.json: its verdict, each
    recovery (and scale-in), the share served and the longest outage; every incident drawn
    recovered. The summary."""
    summary: dict[str, Any] = json.loads((folder / "summary.json").read_text())
    incidents = summary["incidents"]
    shown = page.evaluate(text_of("step-result"))
    verdict = "PASSED" if summary["passed"] else "FAILED"
    assert shown.startswith(f"{verdict} · recovery "), shown
    expected = [i["recovery_seconds"] for i in incidents]
    expected += [i["scale_in_seconds"] for i in incidents if i["scale_in_seconds"] is not None]
    expected += [summary["availability"]["ratio"] * 100,
                 summary["availability"]["longest_outage_seconds"]]
    assert numbers(shown) == pytest.approx(expected, abs=0.0051), (shown, expected)
    recovered = "document.querySelectorAll('.incident[data-status=recovered]').length"
    page.wait_for(f"{recovered} === {len(incidents)}", 10, f"{len(incidents)} recovered incidents")
    return summary


def span_seconds(summary: dict[str, Any]) -> float:
    """From the drill's start to its end, by its journal's wall clock."""
    started, finished = (dt.datetime.fromisoformat(summary[key]) for key in ("started", "finished"))
    return (finished - started).total_seconds()


def nth_line(output: Output, needle: str, nth: int, timeout: float) -> str:
    """The NTH line holding NEEDLE; fails the test after TIMEOUT."""
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in list(output.lines) if needle in line]
        if len(found) >= nth:
            return found[nth - 1]
        if time.monotonic() > deadline:
            pytest.fail(f"{len(found)} lines with {needle!r} in {timeout}s, not {nth}")
        time.sleep(0.1)


@needs_chromium
@pytest.mark.timeout(1500)
def test_the_default_plan_runs_on_keys_and_ctrl_c_restores_and_sums_up(
        autoscaled: Any, tmp_path: Path) -> None:
    """One workshop proves both halves: every step of the shipped plan runs to its end, then `r`
    repeats the last step and Ctrl-C stops it once its load Job runs, so the restore and the
    summary follow a whole plan for a few seconds more, where a second workshop would cost its
    own start and a step."""
    steps, port, out = plan_steps(), free_port(), tmp_path / "out"
    count = len(steps)
    proc, output = start_cli("workshop", "--web", str(port), "--out", str(out), "--share")
    page: Chromium | None = None
    attendee: Chromium | None = None
    timings: list[str] = []
    verdicts: list[str] = []
    try:
        output.wait_for(f"presenter page on http://127.0.0.1:{port}/", timeout=60)
        said = output.wait_for("attendees' view on http://", timeout=10)
        link = said[said.index("http://"):].split()[0]
        output.wait_for("warning: the attendees' view leaves loopback", timeout=10)
        output.wait_for("scan to open it:", timeout=10)
        base = link.rsplit("/", 2)[0]
        assert not base.startswith("http://127."), link
        for refused in (f"{base}/", f"{base}/events", f"{base}/{'A' * 43}/",
                        f"{base}/{'A' * 43}/events"):
            assert status_of(refused) == 403, refused
        output.wait_for(f"step 1/{count}: {steps[0]['title']} (waiting)", timeout=240)
        page = Chromium(f"http://127.0.0.1:{port}/", width=1024, height=768)
        page.viewport(1024, 768)
        page.wait_for("document.body.dataset.presenter === 'true' && "
                      "document.querySelectorAll('.tile[data-state=ready]').length === 3",
                      60, "the presenter's page with web's three pods")
        attendee = Chromium(link, width=1024, height=768)
        attendee.viewport(1024, 768)
        attendee.wait_for("document.querySelectorAll('.tile[data-state=ready]').length === 3",
                          30, "the attendees' page with web's three pods")
        assert attendee.evaluate("document.body.dataset.presenter === undefined && "
                                 "document.getElementById('keys') === null"), "no keys"
        attendee.evaluate("fetch('control', {method: 'POST', body: 'next'}).then((answer) => "
                          "{ document.body.dataset.posted = String(answer.status); })")
        attendee.wait_for("document.body.dataset.posted === '405'", 10, "the POST refused")

        for number, step in enumerate(steps, 1):
            step_is(page, number, count, "ready", 30)
            for element in ("title", "explain", "watch-text"):
                shown = page.evaluate(text_of(f"step-{element}"))
                assert shown == step[element.split("-")[0]], (number, element, shown)
            assert not (out / step["folder"]).exists(), f"step {number} ran before its key"
            assert not [line for line in output.lines if line.startswith(
                f"chaos-drill: step {number}: {step['title']}: ")], f"step {number} started"
            fits_both(page, f"step {number} before it runs")
            started = time.monotonic()
            page.press("ArrowRight")  # run it
            step_is(page, number, count, "running", 30)
            if number == 1:  # any key but s while a step runs is dropped
                page.press(" ")
                output.wait_for("next: a step is running; s skips it", timeout=10)
            step_is(page, number, count, "done", STEP_SECONDS)
            took = time.monotonic() - started
            summary = check_result(page, out / step["folder"])
            verdicts.append("PASSED" if summary["passed"] else "FAILED")
            failed = [c["detail"] for c in summary["slo_checks"] if not c["passed"]]
            timings.append(f"step {number} {step['folder']}: {took:.1f} s from the key to its "
                           f"result, {span_seconds(summary):.1f} s in its journal; "
                           f"{verdicts[-1]} {failed}")
            assert page.evaluate(f"document.querySelectorAll('#steps li')[{number - 1}]"
                                 ".dataset.verdict") == verdicts[-1]
            fits_both(page, f"step {number}'s result")
            if number == 1:
                shoot(page, "workshop-step.png", tmp_path)
                result = page.evaluate(text_of("step-result"))
                attendee.wait_for(f"{text_of('step-title')} === {step['title']!r} && "
                                  f"{text_of('step-result')} === {result!r}", 10,
                                  "the attendees' step and result")
                attendee.wait_for("document.querySelector('.incident[data-id=\"r5-i1\"]"
                                  "[data-status=recovered]')", 10, "the attendees' incidents")
                pods = page.evaluate(PODS)
                assert len(pods) >= 3, pods
                attendee.wait_for(f"{PODS}.join(' ') === {' '.join(pods)!r}", 10, "the same pods")
                assert fits(attendee), "the attendees' view scrolls at 1024×768"
                shoot(attendee, "workshop-attendees.png", tmp_path)
                page.viewport(1920, 1080)
                shoot(page, "workshop-step-1920.png", tmp_path)
                page.viewport(1024, 768)
            if number == 2:  # as its watch text says, the page names the back-off
                page.wait_for("[...document.querySelectorAll('.incident[data-id=\"r2-i1\"] "
                              ".cause')].some((c) => c.textContent.includes('CrashLoopBackOff'))",
                              10, "why: CrashLoopBackOff on the second restart")
            if number < count:  # s on a step that ran goes on, as space does
                page.press("s" if number == 3 else " ")

        page.press("r")  # the surge again, then Ctrl-C while its Job runs
        output.wait_for(f"{steps[-1]['folder']}-run2/journal.jsonl", timeout=30)
        nth_line(output, "started Job chaos-drill-load-", 2, timeout=120)
        step_is(page, count, count, "running", 10)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=180)
        log = output.finish(30)
        (tmp_path / "workshop.log").write_text(log)  # to read on failure
        page.wait_for("!document.getElementById('summary').hidden && "
                      f"document.querySelectorAll('#summary-table tr').length === {count + 1}",
                      10, "the summary slide")
        rows = "[...document.querySelectorAll('#summary-table tr')].slice(1)"
        assert page.evaluate(f"{rows}.map((row) => row.dataset.verdict)") == \
            verdicts[:-1] + ["STOPPED"]
        assert page.evaluate(f"{rows}.map((row) => row.cells[0].textContent)") == \
            [f"{n}. {s['title']}" for n, s in enumerate(steps, 1)]
        fits_both(page, "the summary")
        shoot(page, "workshop-summary.png", tmp_path)
    finally:
        for browser in (page, attendee):
            if browser is not None:
                browser.close()
        proc.kill()
        proc.wait(timeout=30)
        print("\n".join(timings))
    assert verdicts == ["PASSED"] * count, timings
    assert code == 0, log
    interrupted = log[log.index("SIGINT: stopping; restoring the running step, then the "
                                "summary"):]
    assert "removing the load Job" in interrupted, interrupted
    summary_text = log[log.index("workshop How Kubernetes heals: summary"):]
    for number, step in enumerate(steps[:-1], 1):
        assert f"{number}. {step['title']}: PASSED; recovery " in summary_text, summary_text
    stopped = next(line for line in summary_text.splitlines() if f"  {count}. " in line)
    assert stopped.startswith(f"chaos-drill:   {count}. {steps[-1]['title']}: STOPPED; ") \
        and stopped.endswith("; stopped before its end"), stopped
    assert (out / f"{steps[-1]['folder']}-run2" / "summary.json").exists()
    assert json.loads((out / "workshop.json").read_text())["steps"][-1]["runs"] == 2
    assert_workshop_restored(autoscaled, nodes=2)


def test_a_plan_runs_on_enter_in_the_terminal_alone(autoscaled: Any, tmp_path: Path) -> None:
    """No page opened: Enter in the trainer's terminal runs the step, then shows the summary,
    then ends the workshop; nothing runs before the first Enter."""
    plan, out = tmp_path / "plan.yaml", tmp_path / "out"
    plan.write_text(yaml.safe_dump(one_step_plan("enter", {"service": "web", "port": 80})))
    with running_cli("workshop", str(plan), "--web", str(free_port()), "--out", str(out),
                     keyboard=True) as (proc, output):
        said = run_one_step_on_enter(proc, output, out / "01-enter", timeout=240)
    assert "; served " in said, said
