"""docs/reference/metrics.md: every metric family of chaos.monitoring.metrics, registered on a fresh
registry and read back: name as scraped, type, labels, help and a histogram's buckets."""

from __future__ import annotations

import dataclasses
from typing import Any

from prometheus_client import CollectorRegistry

from chaos.monitoring.metrics import INCIDENT_RESULTS, PROBE_RESULTS, _register
from chaos.monitoring.metrics_server import DEFAULT_METRICS_PORT
from chaos.reference.markdown import code, header, table


def scraped_name(family: Any) -> str:
    # prometheus_client keeps a family's name, type, labels and buckets in these attributes;
    # a counter's samples are scraped with `_total` after the family's name.
    name = str(family._name)
    return f"{name}_total" if family._type == "counter" else name


def buckets(family: Any) -> str:
    bounds = getattr(family, "_upper_bounds", None) if family._type == "histogram" else None
    return ", ".join(f"{bound:g}" for bound in bounds if bound != float("inf")) if bounds else ""


def rows() -> list[list[str]]:
    families = _register(CollectorRegistry(auto_describe=True))
    found = [getattr(families, field.name) for field in dataclasses.fields(families)]
    return [[code(scraped_name(family)), str(family._type),
             ", ".join(family._labelnames), str(family._documentation), buckets(family)]
            for family in sorted(found, key=scraped_name)]


def render() -> str:
    intro = (f"What `--metrics-port PORT` serves on `http://127.0.0.1:PORT/metrics` (the "
             f"operator and `chaos-drill monitor` use {DEFAULT_METRICS_PORT}). Labels are "
             f"bounded: pod names and UIDs go to the journal, never to a label. `result` is "
             f"one of {', '.join(code(r) for r in INCIDENT_RESULTS)} for incidents and "
             f"{', '.join(code(r) for r in PROBE_RESULTS)} for probe requests; `fault` is a "
             f"fault name (see [faults](faults.md)); `phase` a phase of that fault's timeline. "
             f"Every known fault × result series exists at 0 from the start; no `_created` "
             f"series are exported.")
    lines = header("Metrics", "chaos/metrics.py", intro)
    lines += table(["metric", "type", "labels", "help", "buckets (seconds)"], rows())
    return "\n".join(lines).rstrip() + "\n"
