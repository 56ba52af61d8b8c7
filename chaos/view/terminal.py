"""The terminal rendering of the view model's snapshot (rich): a header with the drill's progress,
pods per node, the incidents with their phases, and the availability strip."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

STYLES = {"pending": "bright_black", "creating": "yellow", "running": "blue",
          "ready": "bold green", "terminating": "bold red", "failed": "magenta"}
GLYPHS = {"pending": "\u25cc", "creating": "\u25d4", "running": "\u25d1", "ready": "\u25cf",
          "terminating": "\u2715", "failed": "!"}
INCIDENTS_SHOWN = 4
STRIP_WIDTH = 60


def duration(value: int) -> str:
    """Milliseconds as the page shows them: '840 ms', '2.31 s'."""
    return f"{value} ms" if value < 1000 else f"{value / 1000:.2f} s"


def header(state: dict[str, Any]) -> Text:
    w, p = state["workload"], state["progress"]
    text = Text(state["title"], style="bold")
    lesson = state.get("lesson")
    if lesson and not lesson["summary"]:
        step = lesson["steps"][lesson["index"]]
        text.append(f"  step {lesson['index'] + 1}/{len(lesson['steps'])} {step['title']} "
                    f"({step['status']})")
    if state["mode"] == "watch":
        text.append("  watching, no faults")
    elif p["rounds"]:
        text.append(f"  round {p['round']}/{p['rounds']} {p['fault']}")
    if "desired" in w:
        text.append(f"  {w['name']} {w.get('ready', 0)}/{w['desired']} ready")
    if p["verdict"]:
        text.append(f"  {p['verdict']}", style="bold green" if p["verdict"] == "PASSED"
                    else "bold red")
    return text


def pods_table(state: dict[str, Any]) -> Table:
    """One column per node; each pod a line: glyph, name, state, restarts, victim or new."""
    names = [n["name"] for n in state["nodes"] if n["name"]]
    if any(not p["node"] for p in state["pods"]):
        names.append("")
    table = Table(expand=True, show_edge=False, pad_edge=False)
    ready = {n["name"]: n["ready"] for n in state["nodes"]}
    for name in names:
        title = name or "not scheduled"
        table.add_column(title if ready.get(name, True) else f"{title} NotReady",
                         overflow="fold", ratio=1)
    cells = []
    for name in names:
        cell = Text()
        for pod in (p for p in state["pods"] if p["node"] == name):
            if cell:
                cell.append("\n")
            style = STYLES[pod["state"]]
            cell.append(f"{GLYPHS[pod['state']]} {pod['name']} ", style=style)
            cell.append(pod["state"], style=style)
            if pod["restarts"]:
                cell.append(f" \u21bb{pod['restarts']}")
            if pod["victim"]:
                cell.append(f" hit {pod['victim']}", style="reverse")
            elif pod["replacement"]:
                cell.append(f" new {pod['replacement']}", style="bold")
        cells.append(cell)
    if cells:
        table.add_row(*cells)
    return table


def incident_lines(state: dict[str, Any]) -> Text:
    text = Text()
    for incident in state["incidents"][-INCIDENTS_SHOWN:]:
        if text:
            text.append("\n")
        status = incident["status"]
        style = {"recovered": "green", "open": "yellow"}.get(status, "bold red")
        text.append(f"{incident['id']} {incident['fault']} {incident['target']}", style="bold")
        if incident.get("origin") == "observed":
            text.append(" observed", style="reverse")
        text.append(": ", style="bold")
        reached = {p["name"]: p["ms"] for p in incident["phases"]}
        for phase in incident["expected"][1:]:
            if phase in reached:
                text.append(f"{phase} +{duration(reached[phase])}  ")
            else:
                text.append(f"{phase} \u2026  ", style="bright_black")
        outcome = (f"recovered in {duration(incident['recovery_ms'])}" if status == "recovered"
                   else "NOT recovered" if status == "not recovered" else "recovering")
        text.append(outcome, style=style)
        for cause in incident.get("causes", []):
            text.append(f"\n  why: {cause}", style="bold yellow")
    return text or Text("no incident yet", style="bright_black")


def availability_line(state: dict[str, Any]) -> Text:
    a = state["availability"]
    text = Text("availability ")
    for mark in a["recent"][-STRIP_WIDTH:]:
        text.append("\u2588" if mark == "1" else "\u2581", style="green" if mark == "1" else "red")
    ratio = "n/a" if a["ratio"] is None else f"{a['ratio']:.2%}"
    text.append(f" {ratio} served, {a['failures']}/{a['requests']} failed, longest outage "
                f"{a['longest_outage_seconds']:.2f} s")
    return text


def render(state: dict[str, Any]) -> RenderableType:
    parts: list[RenderableType] = [header(state), pods_table(state), incident_lines(state)]
    if state["availability"]["requests"]:
        parts.append(availability_line(state))
    return Group(*parts)
