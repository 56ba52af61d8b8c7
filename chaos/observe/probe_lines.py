"""The lines `python -m chaos.observe.prober` prints, read back: one JSON object per line, a
`started` line with the wall time of slot 0, one window a second, a `stopped` line on SIGTERM.
Anything else is garbage, ignored (and counted by the reader)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chaos.observe.prober import ProbeWindow


@dataclass(frozen=True)
class ProbeLine:
    """One output line: kind started, window or stopped, with its object; or garbage."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


def parse_line(line: str | bytes) -> ProbeLine:
    """What one output line of `python -m chaos.observe.prober` says; never raises."""
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return ProbeLine("garbage")
    if not isinstance(data, dict):
        return ProbeLine("garbage")
    event = data.get("event")
    if event == "started" and isinstance(data.get("wall"), int | float):
        return ProbeLine("started", data)
    if event == "stopped":
        return ProbeLine("stopped", data)
    numbers = ("seconds", "requests", "failures", "longest_outage_seconds")
    if event in (None, "window") and all(isinstance(data.get(key), int | float) for key in numbers):
        return ProbeLine("window", data)
    return ProbeLine("garbage")


def window_from(data: dict[str, Any]) -> ProbeWindow | None:
    """A window line as the prober's ProbeWindow; None when its fields do not fit."""
    try:
        return ProbeWindow.from_dict(data)
    except (TypeError, ValueError, AttributeError):
        return None


def slot_outcomes(data: dict[str, Any], rate: float) -> list[bool]:
    """Each slot of a window line in order, True when ok: its failed_at offsets place the
    failures; any failure they do not place goes last."""
    requests, failures = int(data["requests"]), int(data["failures"])
    outcomes, start = [True] * requests, float(data.get("start_seconds") or 0.0)
    for entry in data.get("failed_at") or []:
        if requests and isinstance(entry, list) and entry and isinstance(entry[0], int | float):
            outcomes[min(requests - 1, max(0, round((entry[0] - start) * rate)))] = False
    for index in reversed(range(requests)):
        if outcomes.count(False) >= failures:
            break
        outcomes[index] = False
    return outcomes
