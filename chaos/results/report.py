"""report.html: one self-contained page (inline CSS and SVG, no scripts, nothing fetched) with
the verdict, the SLO checks, an incidents table and a timeline chart per incident."""

from __future__ import annotations

from html import escape
from itertools import pairwise

from chaos.drill.timeline import all_phases
from chaos.results.availability import Availability
from chaos.results.incidents import IncidentResult
from chaos.results.slo import SloCheck
from chaos.results.summary import Summary
from chaos.results.weak_spots import Finding

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
th { background: #f3f3f3; }
.pass { color: #17692c; font-weight: bold; }
.fail { color: #b3261e; font-weight: bold; }
svg text { font: 11px system-ui, sans-serif; }
.observed { border: 1px solid currentColor; border-radius: 3px; padding: 0 4px;
  font-size: 11px; text-transform: uppercase; }
.cause { color: #8a4b00; font-weight: bold; }
.events { font-size: 12px; color: #555; }
"""
_PHASE_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#e15759")
_CHART_WIDTH = 440
_LABEL_WIDTH = 150
_ROW_HEIGHT = 18


def render_report(summary: Summary) -> str:
    """The whole report page for summary; every value from the journal is escaped."""
    title = f"chaos-drill {summary.namespace}/{summary.drill}"
    scale = max((max(i.phases.values(), default=0.0) for i in summary.incidents), default=0.0)
    scale = max(scale, 1.0)
    charts = "\n".join(_incident_chart(incident, scale) for incident in summary.incidents)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{_CSS}</style></head>
<body>
<h1>{escape(title)}: {_verdict(summary.passed)}</h1>
{_overview(summary)}
<h2>SLO checks</h2>
{_checks_table(summary.slo_checks)}
<h2>Advice</h2>
{_advice_table(summary.advice)}
<h2>Incidents</h2>
{_incidents_table(summary.incidents)}
<h2>Timelines</h2>
<p>Each bar is one phase, from the previous phase to this one; seconds after injection.</p>
{charts or "<p>No incidents.</p>"}
</body></html>
"""


def _verdict(passed: bool) -> str:
    return '<span class="pass">PASSED</span>' if passed else '<span class="fail">FAILED</span>'


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f} s"


def _overview(summary: Summary) -> str:
    recovery, availability = summary.recovery, summary.availability
    ratio = "—" if availability.ratio is None else f"{availability.ratio:.2%}"
    rows = [
        ("Fault", summary.fault),
        ("Started", summary.started or "—"),
        ("Finished", summary.finished or "—"),
        ("Aborted", f"yes: {summary.abort_reason or '?'}" if summary.aborted else "no"),
        ("Recoveries", f"{recovery.count}; median {_seconds(recovery.median)}, "
         f"p95 {_seconds(recovery.p95)}, max {_seconds(recovery.max)}"),
        ("Availability", f"{ratio} of {availability.requests} requests "
         f"({availability.failures} failed{_kinds(availability)}); longest outage "
         f"{_seconds(availability.longest_outage_seconds)}"),
        ("Probe latency", f"p50 {_seconds(availability.latency_p50_seconds)}, "
         f"p90 {_seconds(availability.latency_p90_seconds)}, "
         f"p99 {_seconds(availability.latency_p99_seconds)}, "
         f"max {_seconds(availability.latency_max_seconds)} (from each request's scheduled "
         "time)"),
    ]
    if summary.scale_downs:
        rows.append(("Scale-downs", "pods their controller removed, not incidents: "
                     + "; ".join(summary.scale_downs)))
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _kinds(availability: Availability) -> str:
    """The failures by kind, those there were: ': 3 timeouts, 1 unsent'."""
    kinds = (("HTTP 5xx", availability.http_errors),
             ("connection errors", availability.connection_errors),
             ("timeouts", availability.timeouts), ("unsent", availability.unsent))
    seen = ", ".join(f"{count} {name}" for name, count in kinds if count)
    return f": {seen}" if seen else ""


def _checks_table(checks: tuple[SloCheck, ...]) -> str:
    rows = "".join(
        f"<tr><td>{escape(c.name)}</td><td>{_verdict(c.passed)}</td><td>{escape(c.detail)}</td></tr>"
        for c in checks
    )
    return f"<table><tr><th>Check</th><th>Result</th><th>Detail</th></tr>{rows}</table>"


def _advice_table(advice: tuple[Finding, ...]) -> str:
    if not advice:
        return "<p>No advice: nothing in this run points at a weak spot.</p>"
    rows = "".join(f"<tr><td>{escape(a.finding)}</td><td>{escape(a.evidence)}</td>"
                   f"<td>{escape(a.fix)}</td></tr>" for a in advice)
    header = "<tr><th>Finding</th><th>Evidence from this run</th><th>Fix</th></tr>"
    return f"<table>{header}{rows}</table>"


def _incidents_table(incidents: tuple[IncidentResult, ...]) -> str:
    header = "".join(
        f"<th>{name}</th>"
        for name in ("Incident", "Round", "Target pod", "Node", "Recovery", "Restarts", "Notes")
    )
    rows = "".join(_incident_row(incident) for incident in incidents)
    return f"<table><tr>{header}</tr>{rows}</table>"


def _label(incident: IncidentResult) -> str:
    """A mark on an incident chaos-drill did not inject."""
    return ' <span class="observed">observed</span>' if incident.origin == "observed" else ""


def _incident_row(incident: IncidentResult) -> str:
    notes = [incident.reason or ""] if incident.recovery_seconds is None else []
    if incident.exit_reason:
        notes.append(f"container exited: {incident.exit_reason}")
    if incident.kernel_oom_kills is not None:
        notes.append(oom_note(incident.kernel_oom_kills, incident.exit_reason))
    if incident.detail:
        notes.append(incident.detail)
    if incident.timing:
        notes.append(incident.timing)
    if not incident.ordered:
        notes.append("phases seen out of order")
    if incident.api_cross_check:
        notes.append(incident.api_cross_check)
    cells = (
        str(incident.round) if incident.origin != "observed" else "—",
        incident.target_pod,
        incident.node or "—",
        _seconds(incident.recovery_seconds),
        str(incident.restart_count),
        "; ".join(note for note in notes if note),
    )
    causes = "".join(f'<div class="cause">why: {escape(c)}</div>' for c in incident.causes)
    return (f"<tr><td>{escape(incident.id)}{_label(incident)}</td>"
            + "".join(f"<td>{escape(cell)}</td>" for cell in cells[:-1])
            + f"<td>{escape(cells[-1])}{causes}</td></tr>")


def _incident_chart(incident: IncidentResult, scale: float) -> str:
    """Horizontal bars, one row per phase after injected in the order they came (the traffic
    phases among the others), on a shared time scale."""
    seen = sorted(incident.phases.items(), key=lambda item: item[1])
    bars = [
        _bar(row, phase, start, end, scale, _phase_colour(incident.fault, phase))
        for row, ((_, start), (phase, end)) in enumerate(pairwise(seen))
    ]
    height = _ROW_HEIGHT * (len(bars) + 2)
    heading = f"{incident.id}: {incident.target_pod} ({_seconds(incident.recovery_seconds)})"
    return (
        f"<h3>{escape(heading)}{_label(incident)}</h3>\n"
        + "".join(f'<p class="cause">why: {escape(c)}</p>\n' for c in incident.causes)
        + f'<svg xmlns="http://www.w3.org/2000/svg" width="{_LABEL_WIDTH + _CHART_WIDTH + 60}" '
        f'height="{height}" role="img" aria-label="{escape(heading)}">'
        + "".join(bars)
        + _axis(len(bars), scale)
        + "</svg>\n"
        + _events(incident)
    )


def _events(incident: IncidentResult) -> str:
    """The Kubernetes events about its pods during the incident, in arrival order."""
    items = "".join(
        f"<li>+{float(e['at']):.3f} s {escape(str(e['reason']))} {escape(str(e['pod']))}: "
        f"{escape(str(e['message']))}</li>" for e in incident.events)
    return f'<ul class="events">{items}</ul>' if items else ""


def _phase_colour(fault: str, phase: str) -> str:
    """The same phase gets the same colour in every chart."""
    return _PHASE_COLOURS[all_phases(fault).index(phase) % len(_PHASE_COLOURS)]


def _bar(row: int, phase: str, start: float, end: float, scale: float, colour: str) -> str:
    """One phase's bar; its colour follows the phase, so charts compare at a glance."""
    y = row * _ROW_HEIGHT
    x = _LABEL_WIDTH + max(0.0, min(start, end)) / scale * _CHART_WIDTH
    width = max(1.0, abs(end - start) / scale * _CHART_WIDTH)
    label = f"{phase}: {end - start:.3f} s (at {end:.3f} s)"
    return (
        f'<text x="0" y="{y + 13}">{escape(phase)}</text>'
        f'<rect x="{x:.1f}" y="{y + 3}" width="{width:.1f}" height="{_ROW_HEIGHT - 6}" '
        f'fill="{colour}"><title>{escape(label)}</title></rect>'
        f'<text x="{x + width + 4:.1f}" y="{y + 13}">{end - start:.3f} s</text>'
    )


def _axis(rows: int, scale: float) -> str:
    y = rows * _ROW_HEIGHT + 4
    parts = [
        f'<line x1="{_LABEL_WIDTH}" y1="{y}" x2="{_LABEL_WIDTH + _CHART_WIDTH}" y2="{y}" '
        'stroke="#888"/>'
    ]
    for tick in range(5):
        seconds = scale * tick / 4
        x = _LABEL_WIDTH + _CHART_WIDTH * tick / 4
        parts.append(
            f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 4}" stroke="#888"/>'
            f'<text x="{x:.1f}" y="{y + 16}" text-anchor="middle">{seconds:.1f} s</text>'
        )
    return "".join(parts)


def oom_note(kills: int, exit_reason: str | None) -> str:
    """What the kernel says of an oom_kill incident, beside the runtime's exit reason."""
    if kills == 0:
        return "the kernel logged no OOM kill in the container"
    said = f"the kernel OOM-killed {kills} process{'es' if kills > 1 else ''} in the container"
    if exit_reason and exit_reason != "OOMKilled":
        said += f" (the runtime reported {exit_reason}: it missed the OOM event)"
    return said
