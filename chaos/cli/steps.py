"""Where a command's time goes: each progress line starts a step that lasts until the next one;
lines carry the time since the command began (unless a view shows them its own way), the end
names the longest steps, and `--timings FILE` writes every step as JSON."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaos.cluster.base import Progress

LONGEST = 3
"""How many of the longest steps the last line names."""


class StepClock:
    def __init__(self, say: Progress, clock: Callable[[], float] = time.monotonic,
                 stamp: bool = True) -> None:
        self._say = say
        self._stamp = stamp
        self._clock = clock
        self.began = clock()
        self.steps: list[dict[str, Any]] = []

    def __call__(self, message: str) -> None:
        now = self._clock() - self.began
        self._close(now)
        self.steps.append({"step": message, "start_seconds": round(now, 3)})
        self._say(f"[{now:6.1f}s] {message}" if self._stamp else message)

    def _close(self, now: float) -> None:
        if self.steps and "seconds" not in self.steps[-1]:
            self.steps[-1]["seconds"] = round(now - self.steps[-1]["start_seconds"], 3)

    def finish(self, what: str, timings: str | None = None) -> dict[str, Any]:
        """Ends the last step, says the total and the longest steps, and writes the timings to
        the file TIMINGS if given; returns them."""
        total = self._clock() - self.began
        self._close(total)
        longest = sorted(self.steps, key=lambda s: -s["seconds"])[:LONGEST]
        named = ", ".join(f"{s['step']} {s['seconds']:.1f}s" for s in longest)
        self._say(f"{what} in {total:.1f}s" + (f"; longest: {named}" if named else ""))
        result = {"command": what, "total_seconds": round(total, 3), "steps": self.steps}
        if timings:
            Path(timings).write_text(json.dumps(result, indent=1) + "\n")
        return result
