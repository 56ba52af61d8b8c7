"""`chaos-drill workshop` on the local cluster, driven as a trainer does: headless Chromium at
1024×768 presses the keys on the presenter page; each step waits for them, shows its explanation
and then its results; a second browser on the attendees' link (--share, this machine's own
default-route address) sees the same pods and incidents and no keys, and a request without the
token gets 403; Ctrl-C in the middle of a step restores what it changed and ends with the
summary."""

from __future__ import annotations

import os
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from chaos.cluster import kube
from chaos.drill import restore

from browser import Chromium, needs_chromium
from support import free_port, start_cli

pytestmark = pytest.mark.e2e

SCREENSHOTS = os.environ.get("CHAOS_DRILL_SCREENSHOTS")
"""A folder for the presenter page's screenshots (docs/workshop-step.png is one of them)."""


def drill(name: str, fault: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "chaosdrill.dev/v1alpha1", "kind": "ChaosDrill",
            "metadata": {"name": name, "namespace": "demo"},
            "spec": {"target": {"kind": "Deployment", "name": "web"}, "fault": fault,
                     "rounds": 1, "seed": 7, "recoveryTimeoutSeconds": 120,
                     "probe": {"service": "web", "port": 80, "ratePerSecond": 20},
                     "slo": {"maxRecoverySeconds": 120, "minAvailability": 0}}}


PLAN: dict[str, Any] = {"title": "Two quick steps", "steps": [
    {"title": "A pod is deleted", "explain": "The ReplicaSet replaces the deleted pod.",
     "watch": "A new tile turns green.",
     "drill": drill("ws-pod-kill", {"type": "pod_delete", "gracePeriodSeconds": 0})},
    {"title": "A liveness probe fails", "explain": "The kubelet restarts the container.",
     "watch": "The restart count goes up.",
     "drill": drill("ws-liveness", {"type": "liveness_break"})}]}


def text_of(element: str) -> str:
    return f"document.getElementById({element!r}).textContent"


def step_is(page: Chromium, number: int, status: str, timeout: float) -> None:
    page.wait_for(f"{text_of('step-number')}.startsWith('step {number} of 2 · {status}')",
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


@needs_chromium
def test_a_workshop_runs_on_keys_and_ctrl_c_restores_and_sums_up(autoscaled: Any,
                                                                   tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(PLAN))
    port, out = free_port(), tmp_path / "out"
    proc, output = start_cli("workshop", str(plan), "--web", str(port), "--out", str(out),
                             "--share")
    page: Chromium | None = None
    attendee: Chromium | None = None
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
        output.wait_for("step 1/2: A pod is deleted (waiting)", timeout=240)
        page = Chromium(f"http://127.0.0.1:{port}/", width=1024, height=768)
        page.viewport(1024, 768)
        page.wait_for("document.body.dataset.presenter === 'true' && "
                      f"{text_of('step-title')} === 'A pod is deleted' && "
                      "document.querySelectorAll('.tile[data-state=ready]').length === 3",
                      60, "step 1 with web's three pods")
        assert page.evaluate(text_of("step-explain")) == PLAN["steps"][0]["explain"]
        assert page.evaluate(text_of("step-watch-text")) == PLAN["steps"][0]["watch"]
        step_is(page, 1, "ready", 5)
        assert not (out / "01-ws-pod-kill").exists(), "a step ran before the trainer asked"
        attendee = Chromium(link, width=1024, height=768)
        attendee.viewport(1024, 768)
        attendee.wait_for(f"{text_of('step-title')} === 'A pod is deleted' && "
                          "document.querySelectorAll('.tile[data-state=ready]').length === 3",
                          30, "the attendees' step 1 with web's three pods")
        assert attendee.evaluate("document.body.dataset.presenter === undefined && "
                                 "document.getElementById('keys') === null"), "no keys"
        attendee.evaluate("fetch('control', {method: 'POST', body: 'next'}).then((answer) => "
                          "{ document.body.dataset.posted = String(answer.status); })")
        attendee.wait_for("document.body.dataset.posted === '405'", 10, "the POST refused")

        page.press("ArrowRight")  # run step 1
        step_is(page, 1, "running", 30)
        step_is(page, 1, "done", 180)
        page.wait_for("document.querySelector('.incident[data-id=\"r1-i1\"]"
                      "[data-status=recovered]')", 10, "step 1's incident")
        result = page.evaluate(text_of("step-result"))
        assert result.startswith("PASSED · recovery ") and " s · served " in result, result
        assert fits(page), "the step's view scrolls at 1024×768"
        shoot(page, "workshop-step.png", tmp_path)
        attendee.wait_for("document.querySelector('.incident[data-id=\"r1-i1\"]"
                          "[data-status=recovered]')", 10, "the attendees' incident")
        attendee.wait_for(f"{text_of('step-result')} === {result!r}", 10, "the same result")
        pods = page.evaluate(PODS)
        assert len(pods) >= 3, pods
        attendee.wait_for(f"{PODS}.join(' ') === {' '.join(pods)!r}", 10, "the same pods")
        assert fits(attendee), "the attendees' view scrolls at 1024×768"
        shoot(attendee, "workshop-attendees.png", tmp_path)
        page.viewport(1920, 1080)
        assert fits(page), "the step's view scrolls at 1920×1080"
        shoot(page, "workshop-step-1920.png", tmp_path)
        page.viewport(1024, 768)

        page.press(" ")  # show step 2, without running it
        step_is(page, 2, "ready", 10)
        assert page.evaluate(text_of("step-explain")) == PLAN["steps"][1]["explain"]
        page.press("ArrowRight")  # run step 2, then Ctrl-C while its fault holds
        output.wait_for("removed /www/healthz", timeout=120)
        step_is(page, 2, "running", 10)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=120)
        log = output.finish(30)
        (tmp_path / "workshop.log").write_text(log)  # to read on failure
        page.wait_for("!document.getElementById('summary').hidden && "
                      "document.querySelectorAll('#summary-table tr').length === 3", 10,
                      "the summary slide")
        assert page.evaluate("[...document.querySelectorAll('#summary-table tr')].slice(1)"
                             ".map((row) => row.dataset.verdict)") == ["PASSED", "STOPPED"]
        assert fits(page), "the summary scrolls at 1024×768"
        shoot(page, "workshop-summary.png", tmp_path)
    finally:
        for browser in (page, attendee):
            if browser is not None:
                browser.close()
        proc.kill()
        proc.wait(timeout=30)
    assert code == 0, log
    assert "SIGINT: stopping; restoring the running step, then the summary" in log
    summary = log[log.index("workshop Two quick steps: summary"):]
    assert "1. A pod is deleted: PASSED; recovery " in summary, summary
    assert "2. A liveness probe fails: STOPPED; recovery none; " in summary, summary
    assert summary.rstrip().splitlines()[-2].endswith("; stopped before its end"), summary
    assert (out / "workshop.json").exists() and (out / "02-ws-liveness" / "summary.json").exists()
    found = restore.find(autoscaled, "demo")
    assert found.leftovers == [] and found.unreadable == [], found
    deployment = client.AppsV1Api(autoscaled).read_namespaced_deployment("web", "demo")
    assert deployment.spec.replicas == 3
    kube.wait_for_pods(autoscaled, "demo", "app=web",
                       lambda pods: len(pods) == 3 and all(map(kube.pod_ready, pods)), 90)
