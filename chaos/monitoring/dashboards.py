"""The Grafana dashboards (dashboards/*.json, the single source of truth) read as Prometheus
runs them: each panel's queries with Grafana's variables put in, and the metrics they name."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.monitoring import DASHBOARDS_DIR

# What Grafana puts in place of its variables for "All" over a short drill; a drill's events are
# seconds apart, so a one-minute rate window keeps each of them visible in the rates.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "${datasource}": "prometheus",
    "$namespace": ".*",
    "$workload": ".*",
}
_METRIC_NAME = re.compile(r"\bchaosdrill[_:][a-z0-9_:]*[a-z0-9_]")
_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


@dataclass(frozen=True)
class PanelQuery:
    """One query of a dashboard as written, with Grafana's variables still in it."""

    panel: str
    expr: str
    legend: str
    instant: bool


def dashboard_files() -> list[Path]:
    """The Grafana dashboards, one JSON file each."""
    return sorted(DASHBOARDS_DIR.glob("*.json"))


def load_dashboard(name: str) -> dict[str, Any]:
    """A dashboard of dashboards/ by file stem, for example "chaosdrill-overview"."""
    dashboard: dict[str, Any] = json.loads((DASHBOARDS_DIR / f"{name}.json").read_text())
    return dashboard


def panel_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    """Every panel target of a dashboard, collapsed rows included, then its annotations."""
    panels = list(dashboard.get("panels", []))
    panels += [inner for panel in panels for inner in panel.get("panels", [])]  # collapsed rows
    found = [
        PanelQuery(
            panel=panel["title"],
            expr=target["expr"],
            legend=target.get("legendFormat", ""),
            instant=bool(target.get("instant", False)),
        )
        for panel in panels
        for target in panel.get("targets", [])
        if target.get("expr")
    ]
    found += [
        PanelQuery(panel=f"annotation {item.get('name', '')}", expr=item["expr"], legend="",
                   instant=False)
        for item in dashboard.get("annotations", {}).get("list", [])
        if item.get("expr")
    ]
    return found


def dashboard_queries(dashboard: Mapping[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard: its panels' targets, then its annotations."""
    return [found.expr for found in panel_queries(dashboard)]


def variable_queries(dashboard: Mapping[str, Any]) -> list[str]:
    """The PromQL behind each `label_values(selector, label)` template variable."""
    found = []
    for variable in dashboard.get("templating", {}).get("list", []):
        match = _LABEL_VALUES.match(variable.get("definition", ""))
        if match:
            found.append(f"group by ({match['label']}) ({match['selector']})")
    return found


def grafana_to_promql(expr: str, variables: Mapping[str, str] = GRAFANA_VARIABLES) -> str:
    """Put values in place of Grafana's variables; a variable left over is an error."""
    for variable, value in variables.items():
        expr = expr.replace(variable, value)
    if "$" in expr:
        raise ValueError(f"unsubstituted variable in {expr}")
    return expr


def metric_names(expr: str) -> set[str]:
    """The chaosdrill_ metrics and chaosdrill: recorded series a PromQL expression names."""
    return set(_METRIC_NAME.findall(expr))


def format_legend(legend: str, labels: Mapping[str, str]) -> str:
    """Grafana's legend format: `{{label}}` becomes that label's value."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m[1], ""), legend)
