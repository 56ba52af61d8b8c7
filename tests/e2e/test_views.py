"""The live views during real drills on the local cluster: headless Chromium reads the page's
DOM (the victim goes, its replacement comes and turns ready, the phases arrive in order, the page
reconnects after the server restarts), and tmux's capture-pane reads the terminal view."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from chaos.drill.fault_types import TRAFFIC_PHASES, fault_type

from browser import Chromium, needs_chromium
from support import REPO, free_port, start_cli, write_drill

pytestmark = pytest.mark.e2e

PHASES = [p for p in fault_type("pod_delete").phases if p != "injected"]
SCREENSHOTS = os.environ.get("CHAOS_DRILL_SCREENSHOTS")
"""A folder for the page's screenshots at three moments (docs/ keeps the last ones)."""

RECORDER = """(() => {
  // Every rendered state of the tiles and of r2-i1's phases, as the DOM showed them (r2-i1:
  // the drill may inject r1-i1 before the page has reconnected to it).
  window.__log = [];
  const take = () => {
    const tiles = [...document.querySelectorAll('.tile')].map((t) => ({
      uid: t.dataset.uid, name: t.dataset.name, state: t.dataset.state,
      victim: t.dataset.victim, replacement: t.dataset.replacement}));
    const phases = [...document.querySelectorAll('.incident[data-id="r2-i1"] .phase[data-phase]')]
      .map((p) => p.dataset.phase);
    window.__log.push({tiles, phases});
    // The first picture of r2-i1 under way (it lasts about a second), for the screenshot.
    if (!window.__fault && document.querySelector('.incident[data-id="r2-i1"][data-status=open]')
        && document.querySelector('.tile[data-replacement="r2-i1"]')) {
      window.__fault = document.body.innerHTML;
    }
  };
  new MutationObserver(take).observe(document.body,
    {subtree: true, childList: true, attributes: true});
  take();
  return true;
})()"""


def shoot(page: Chromium, name: str, tmp_path: Path) -> None:
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(folder / name)


def stop(proc: subprocess.Popen[bytes], signum: int = signal.SIGINT) -> int:
    proc.send_signal(signum)
    try:
        return proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait(timeout=30)


def check_the_drill_as_the_page_showed_it(log: list[dict[str, Any]], before: set[str]) -> None:
    victims = {t["uid"] for frame in log for t in frame["tiles"] if t["victim"] == "r2-i1"}
    assert len(victims) == 1, "the page never marked one victim of r2-i1"
    victim = victims.pop()
    marked = next(i for i, f in enumerate(log) if any(t["uid"] == victim and t["victim"]
                                                      for t in f["tiles"]))
    gone = next((i for i, f in enumerate(log) if i > marked
                 and victim not in {t["uid"] for t in f["tiles"]}), None)
    assert gone is not None, "the victim's tile never disappeared"
    new = {t["uid"] for frame in log for t in frame["tiles"]
           if t["replacement"] == "r2-i1"}
    assert len(new) == 1 and not new & before, "no new tile marked as r2-i1's replacement"
    replacement = new.pop()
    states = [t["state"] for f in log for t in f["tiles"] if t["uid"] == replacement]
    assert states[-1] == "ready" and states[0] != "ready", states
    # the fault's own phases arrive in order; the traffic phases (the drill probes web's
    # Service) are listed after them, whenever they arrive
    shown = [[p for p in f["phases"] if p not in TRAFFIC_PHASES] for f in log if f["phases"]]
    for earlier, later in zip(shown, shown[1:], strict=False):
        assert later[:len(earlier)] == earlier, (earlier, later)
    assert shown[-1] == PHASES, shown[-1]
    final = [f["phases"] for f in log if f["phases"]][-1]
    assert final == PHASES + list(TRAFFIC_PHASES), final


def serve_watch(port: int) -> tuple[subprocess.Popen[bytes], Any]:
    watch, output = start_cli("watch", "--target", "Deployment/web", "--web", str(port))
    output.wait_for("watching Deployment demo/web", timeout=60)
    return watch, output


def wait_live(page: Chromium, title: str) -> None:
    page.wait_for("document.getElementById('conn').dataset.state === 'live' && "
                  f"document.getElementById('title').textContent === {title!r}", 60,
                  f"{title!r} live")


def wait_gone(page: Chromium) -> None:
    page.wait_for("document.getElementById('conn').dataset.state === 'reconnecting'", 30,
                  "that the server is gone")


READY3 = "document.querySelectorAll('.tile[data-state=ready]').length === 3"


@needs_chromium
def test_the_page_shows_a_drill_live_and_reconnects(web: Any, tmp_path: Path) -> None:
    """The page opens on a watch, reconnects to the drill that replaces it on the same port,
    then to a watch again; it records every DOM state, and the drill's must show the victim
    going, its replacement coming and turning Ready, and the phases arriving in order."""
    port = free_port()
    path = write_drill(tmp_path, {"type": "pod_delete", "gracePeriodSeconds": 2},
                       rounds=2, intervalSeconds=6)
    watch, watched = serve_watch(port)
    page = Chromium(f"http://127.0.0.1:{port}/")
    proc: subprocess.Popen[bytes] | None = None
    try:
        wait_live(page, "watching Deployment demo/web")
        page.wait_for(READY3, 60, "three Ready pods")
        assert page.evaluate("document.querySelectorAll('.incident').length") == 0
        page.evaluate(RECORDER)
        before = set(page.evaluate("[...document.querySelectorAll('.tile')]"
                                   ".map((t) => t.dataset.uid)"))
        assert stop(watch) == 0, watched.finish(30)
        wait_gone(page)

        proc, output = start_cli("run", str(path), "--out", str(tmp_path / "out"), "--web",
                                 str(port))
        line = output.wait_for("live page on", timeout=60)
        assert line.endswith(f"live page on http://127.0.0.1:{port}/")
        wait_live(page, "drill e2e")
        page.wait_for("document.querySelector('.incident[data-id=\"r1-i1\"]"
                      "[data-status=recovered]') && !document.querySelector("
                      "'.tile[data-state=terminating]') && " + READY3, 90, "steady after r1")
        shoot(page, "live-view-steady.png", tmp_path)
        page.wait_for("document.querySelector('#progress[data-verdict=PASSED]')", 120,
                      "the verdict")
        page.wait_for(READY3 + " && document.querySelectorAll('.tile').length === 3", 30,
                      "three pods at the end")
        shoot(page, "live-view-recovered.png", tmp_path)
        check_the_drill_as_the_page_showed_it(page.evaluate("window.__log"), before)
        assert proc.wait(timeout=60) == 0, output.finish(30)
        wait_gone(page)
        assert page.evaluate("document.querySelector('#progress').dataset.verdict") == "PASSED"
        # the server is gone, so nothing redraws: the page shows the moment it kept of r2-i1
        assert page.evaluate("!!window.__fault"), "the page never showed r2-i1 under way"
        page.evaluate("document.body.innerHTML = window.__fault; document.querySelectorAll("
                      "'.elapsed').forEach((e) => e.classList.remove('elapsed')); true")
        shoot(page, "live-view-fault.png", tmp_path)

        watch, watched = serve_watch(port)
        wait_live(page, "watching Deployment demo/web")
        page.wait_for(READY3, 30, "three Ready pods")
        assert stop(watch, signal.SIGKILL) == -signal.SIGKILL
        wait_gone(page)
    finally:
        page.close()
        for child in (watch, proc):
            if child is not None:
                child.kill()
                child.wait(timeout=30)


class Tmux:
    """A tmux server of our own (its own socket) running one command in a pane."""

    def __init__(self, command: str, width: int = 200, height: int = 60) -> None:
        self.socket = f"chaos-drill-test-{os.getpid()}"
        # pytest's COLUMNS and LINES (80x24) would reach the pane and pin its programs' width
        self.run("new-session", "-d", "-s", "drill", "-x", str(width), "-y", str(height),
                 f"unset COLUMNS LINES; {command}")

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=30, check=True).stdout

    def capture(self) -> str:
        return self.run("capture-pane", "-p", "-t", "drill")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=30)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed: run 'make apt'")
def test_the_terminal_view_shows_the_same_moments(web: Any, tmp_path: Path) -> None:
    path = write_drill(tmp_path, {"type": "pod_delete", "gracePeriodSeconds": 2})
    done = tmp_path / "exit-code"
    command = (f"cd {REPO} && {sys.executable} -m chaos run {path} --out {tmp_path / 'out'}; "
               f"echo $? > {done}; sleep 600")
    tmux = Tmux(command)
    frames: list[str] = []
    try:
        deadline = time.monotonic() + 180
        while not done.exists() or not done.read_text().strip():
            assert time.monotonic() < deadline, "the drill did not end:\n" + (frames or [""])[-1]
            frames.append(tmux.capture())
            time.sleep(0.05)
        frames.append(tmux.capture())
    finally:
        tmux.close()
        (tmp_path / "frames.txt").write_text("\n=====\n".join(frames))  # to read on failure
    last = frames[-1]
    assert done.read_text().strip() == "0", last
    assert "chaos-drill: r1-i1: recovered" in last, last
    assert any("web 3/3 ready" in f and "round 1/1 pod_delete" in f for f in frames)
    assert any("terminating hit r1-i1" in f for f in frames), "no frame showed the victim"
    assert any("new r1-i1" in f for f in frames), "no frame showed the replacement"
    assert any(line.count("ready new r1-i1") for f in frames for line in f.splitlines()), \
        "no frame showed the replacement Ready"
    incident = next(line for line in last.splitlines() if line.startswith("r1-i1 pod_delete"))
    positions = [incident.index(f"{phase} +") for phase in PHASES]
    assert positions == sorted(positions) and "recovered in" in incident, incident
    assert any("availability" in f and "served" in f for f in frames)
