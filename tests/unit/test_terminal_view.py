"""The terminal view renders the same snapshot as the page; off a terminal, plain lines only."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from chaos.drill.timeline import Incident
from chaos.view.live import LiveView
from chaos.view.model import ViewModel
from chaos.view.terminal import render

from support import pod


def shown(state: dict[str, Any]) -> str:
    console = Console(file=io.StringIO(), width=160, record=True, color_system=None)
    console.print(render(state))
    return console.export_text()


def test_pods_per_node_incidents_and_availability() -> None:
    model = ViewModel("drill web-pod-kill")
    model.set_workload("Deployment", "web", "demo")
    model.workload_changed(2, 3)
    model.set_drill(5, "pod_delete")
    model.round_started(1)
    model.pod_changed("LISTED", pod("a", node="node-1"), 0.0)
    model.pod_changed("LISTED", pod("b", node="node-2", ready=False), 0.0)
    model.pod_changed("LISTED", pod("c", node="node-2", deleting=True), 0.0)
    incident = Incident("r1-i1", 1, "pod_delete", "demo", "web", "web-c", "c", "node-2")
    incident.mark("injected", 1.0)
    incident.mark("target_gone", 1.012)
    model.incident_opened(incident)
    for ok in (True, False):
        model.probed(ok, 1.0)
    text = shown(model.snapshot())
    lines = text.splitlines()
    assert "drill web-pod-kill  round 1/5 pod_delete  web 2/3 ready" in lines[0]
    header = next(line for line in lines if "node-1" in line)
    assert header.index("node-1") < header.index("node-2")
    assert "web-a ready" in text and "web-b running" in text
    assert "web-c terminating hit r1-i1" in text
    assert "r1-i1 pod_delete web-c: target_gone +12 ms  replacement_created …" in text
    assert "recovering" in text
    assert "50.00% served, 1/2 failed" in text


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    view = LiveView(out)
    model = ViewModel("t")
    model.pod_changed("LISTED", pod("a"), 0.0)

    class NoObserver:
        def add_listener(self, listener: object) -> None:
            raise AssertionError("a given model is not added again")

    view.attach(NoObserver(), "web", model)  # type: ignore[arg-type]
    view.say("r1-i1: recovered in 1.000s [ok]")
    view.close()
    assert out.getvalue() == "chaos-drill: r1-i1: recovered in 1.000s [ok]\n"
