"""Draws a dashboard's main panels into a PNG with matplotlib, from the same PromQL the dashboard
runs against a real Prometheus, so a reader without Grafana sees what the dashboard shows.

    python -m chaos.monitoring.render docs/dashboard-overview.png --url http://127.0.0.1:9090 \
        --minutes 5

matplotlib comes with the dev extras (`pip install -e '.[dev]'`); the rest of chaos-drill does
not need it.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import (
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
    PercentFormatter,
)

from chaos.drill.fault_types import NAMES
from chaos.errors import ChaosDrillError
from chaos.monitoring import dashboards, query
from chaos.monitoring.process import DEFAULT_PROMETHEUS_PORT, LOOPBACK

OVERVIEW = "chaosdrill-overview"
MAIN_PANELS = (
    "Recovery time quantiles",
    "Ready vs desired replicas",
    "Faults injected",
    "Availability",
)
# Where a fault was injected: the exact time the exporter stamped, one value per fault.
FAULT_TIMES = 'chaosdrill_last_fault_timestamp_seconds{namespace=~".*", workload=~".*"} > 0'
_PALETTE = ("#d62728", "#ff7f0e", "#9467bd", "#2ca02c", "#8c564b", "#17becf", "#e377c2",
            "#7f7f7f", "#bcbd22", "#1f77b4", "#aec7e8")
FAULT_COLOURS = {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(NAMES)}
MAX_POINTS = 400
BUILD_INFO = "chaosdrill_build_info"


@dataclass(frozen=True)
class Line:
    """One series of a time-series panel, named by the target's legend format."""

    label: str
    times: tuple[float, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class Bar:
    """One value of a bar gauge panel."""

    label: str
    value: float


@dataclass(frozen=True)
class Panel:
    """What one dashboard panel shows over the time range."""

    title: str
    description: str
    unit: str
    lines: tuple[Line, ...] = ()
    bars: tuple[Bar, ...] = ()

    @property
    def has_data(self) -> bool:
        finite = [v for line in self.lines for v in line.values if math.isfinite(v)]
        return bool(finite) or any(math.isfinite(bar.value) for bar in self.bars)


@dataclass(frozen=True)
class Marker:
    """A fault injection, drawn as a vertical line on every time series."""

    at: float
    fault: str


def step_for(start: float, end: float) -> float:
    """A query step that gives a graph about MAX_POINTS points, at least one per second."""
    return float(max(1, math.ceil((end - start) / MAX_POINTS)))


def last_scrape(url: str, start: float, end: float) -> float:
    """When the exporter was last scraped in [start, end]; `end` if never. A bar gauge shows
    the values of that moment: after a drill's exporter stops, its series go stale."""
    series = query.query_range(url, BUILD_INFO, start, end, 1.0)
    return max((when for one in series for when, _ in one.points), default=end)


def fetch_panels(
    url: str,
    start: float,
    end: float,
    dashboard_name: str = OVERVIEW,
    titles: Sequence[str] = MAIN_PANELS,
) -> list[Panel]:
    """Run each named panel's queries: range queries over [start, end], instant ones at the
    last scrape in that range."""
    dashboard = dashboards.load_dashboard(dashboard_name)
    by_title = {panel["title"]: panel for panel in dashboard["panels"]}
    missing = [title for title in titles if title not in by_title]
    if missing:
        raise ValueError(f"{dashboard_name} has no panel {', '.join(missing)}")
    at = last_scrape(url, start, end)
    return [_fetch_panel(url, by_title[title], start, end, at) for title in titles]


def _fetch_panel(
    url: str, panel: Mapping[str, Any], start: float, end: float, at: float
) -> Panel:
    lines: list[Line] = []
    bars: list[Bar] = []
    step = step_for(start, end)
    for target in dashboards.panel_queries({"panels": [panel]}):
        promql = dashboards.grafana_to_promql(target.expr)
        if target.instant:
            bars += [
                Bar(dashboards.format_legend(target.legend, sample.labels), sample.value)
                for sample in query.query(url, promql, at=at)
            ]
            continue
        for series in query.query_range(url, promql, start, end, step):
            if not any(math.isfinite(value) for _, value in series.points):
                continue  # a quantile of a fault never injected: NaN throughout, nothing to draw
            times = tuple(when for when, _ in series.points)
            values = tuple(value for _, value in series.points)
            legend = dashboards.format_legend(target.legend, series.labels)
            lines.append(Line(legend, times, values))
    unit = str(panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "short"))
    return Panel(
        title=panel["title"],
        description=panel.get("description", ""),
        unit=unit,
        lines=tuple(sorted(lines, key=lambda line: line.label)),
        bars=tuple(sorted(bars, key=lambda bar: bar.label)),
    )


def fetch_markers(url: str, start: float, end: float) -> list[Marker]:
    """Each fault injection in [start, end], from the distinct values of its timestamp gauge."""
    seen: set[tuple[float, str]] = set()
    for series in query.query_range(url, FAULT_TIMES, start, end, 1.0):
        fault = series.labels.get("fault", "")
        seen.update((value, fault) for _, value in series.points if start <= value <= end)
    return [Marker(at, fault) for at, fault in sorted(seen)]


def draw(panels: Sequence[Panel], markers: Sequence[Marker], out: Path, title: str) -> None:
    """Lay the panels out two by two, as a dashboard would, and write a PNG."""
    figure = Figure(figsize=(13, 8.5), dpi=100, layout="constrained")
    figure.suptitle(title, fontsize=14, fontweight="bold")
    axes_grid = figure.subplots(2, 2)
    origin = _origin(panels, markers)
    for axes, panel in zip(axes_grid.flat, panels, strict=False):
        if panel.bars:
            _draw_bars(axes, panel)
        else:
            _draw_lines(axes, panel, markers, origin)
        axes.set_title(panel.title, loc="left", fontsize=11, fontweight="bold")
        if not panel.has_data:
            axes.text(0.5, 0.5, "No data", transform=axes.transAxes, ha="center", color="grey")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, format="png")


def _origin(panels: Sequence[Panel], markers: Sequence[Marker]) -> float:
    times = [t for panel in panels for line in panel.lines for t in line.times]
    times += [marker.at for marker in markers]
    return min(times, default=0.0)


def _draw_lines(axes: Axes, panel: Panel, markers: Sequence[Marker], origin: float) -> None:
    for line in panel.lines:
        xs = [t - origin for t in line.times]
        is_slo = line.label == "SLO"
        axes.plot(
            xs,
            line.values,
            label=line.label,
            linewidth=1.2 if is_slo else 1.8,
            linestyle="--" if is_slo else "-",
            color="black" if is_slo else None,
            drawstyle="steps-post" if panel.unit == "short" else "default",
        )
    marked: set[str] = set()
    for marker in markers:
        axes.axvline(
            marker.at - origin,
            color=FAULT_COLOURS.get(marker.fault, "grey"),
            linewidth=0.8,
            linestyle=":",
            label=None if marker.fault in marked else f"{marker.fault} injected",
        )
        marked.add(marker.fault)
    _format_axes(axes, panel)
    axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{int(x) // 60}:{int(x) % 60:02d}"))
    axes.set_xlabel("time since the first sample (m:ss)")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="best", ncols=2)


def _format_axes(axes: Axes, panel: Panel) -> None:
    if panel.unit == "percentunit":
        axes.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=1))
        lowest = min((v for line in panel.lines for v in line.values if math.isfinite(v)),
                     default=0.9)
        axes.set_ylim(max(0.0, lowest - 0.02), 1.005)
    elif panel.unit == "s":
        # Recoveries of a second or two sit far below a 30 s SLO: a log scale shows both.
        axes.set_yscale("log")
        axes.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axes.yaxis.set_minor_formatter(NullFormatter())
        axes.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g} s"))
        axes.set_ylabel("seconds (log scale)")
    else:
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylim(bottom=0)
        top = max((v for line in panel.lines for v in line.values if math.isfinite(v)),
                  default=1.0)
        axes.set_ylim(top=top * 1.15 + 0.5)


def _draw_bars(axes: Axes, panel: Panel) -> None:
    labels = [bar.label for bar in panel.bars]
    values = [bar.value for bar in panel.bars]
    colours = [FAULT_COLOURS.get(label, "#1f77b4") for label in labels]
    drawn = axes.barh(labels, values, color=colours)
    axes.bar_label(drawn, fmt="%g", padding=3)
    axes.invert_yaxis()
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlim(0, max(values, default=1.0) * 1.2 + 0.5)
    axes.set_xlabel("faults injected (counter, at the end of the range)")
    axes.grid(True, axis="x", alpha=0.3)


def render(url: str, out: Path, start: float, end: float) -> list[Panel]:
    """Query the overview's main panels over [start, end] and draw them into `out`."""
    panels = fetch_panels(url, start, end)
    markers = fetch_markers(url, start, end)
    panels = [_clip(panel, markers) for panel in panels]
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(end))
    draw(panels, markers, out, f"chaos-drill self-healing overview ({stamp})")
    return panels


def _clip(panel: Panel, markers: Sequence[Marker]) -> Panel:
    """Drop the empty stretch before the first data, so a short drill fills the width."""
    first = [
        t for line in panel.lines for t, v in zip(line.times, line.values, strict=True)
        if math.isfinite(v)
    ]
    first += [marker.at for marker in markers]
    if not first or not panel.lines:
        return panel
    begin = min(first) - 5
    lines = tuple(
        Line(line.label, *_after(line, begin)) for line in panel.lines
    )
    return Panel(panel.title, panel.description, panel.unit, lines, panel.bars)


def _after(line: Line, begin: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    kept = [(t, v) for t, v in zip(line.times, line.values, strict=True) if t >= begin]
    return tuple(t for t, _ in kept), tuple(v for _, v in kept)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.monitoring.render", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--url", default=f"http://{LOOPBACK}:{DEFAULT_PROMETHEUS_PORT}",
                        help="the Prometheus to query (default http://127.0.0.1:9090)")
    parser.add_argument("--minutes", type=float, default=15.0,
                        help="how far back from --end to look (default 15)")
    parser.add_argument("--end", type=float, help="unix time the range ends (default now)")
    args = parser.parse_args(argv)
    end = args.end if args.end is not None else time.time()
    try:
        panels = render(args.url, args.out, end - args.minutes * 60, end)
    except (ChaosDrillError, ValueError) as error:
        print(f"chaos.monitoring.render: error: {error}", file=sys.stderr)
        return 2
    empty = [panel.title for panel in panels if not panel.has_data]
    if empty:
        print(f"chaos.monitoring.render: no data for {', '.join(empty)}: run a drill with "
              "--metrics-port while this Prometheus scrapes it", file=sys.stderr)
        return 1
    print(f"chaos.monitoring.render: wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
