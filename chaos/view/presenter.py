"""The workshop presenter's state machine: which step of the lesson plan is shown, whether it waits,
runs or is done, and what each run gave. Pure: the trainer's keys (on the page or the terminal)
become `press` calls, and the command runs the step `press` asks for; the page and the terminal
draw `to_dict()`.

    next    (→, space, Enter)  run the shown step if it has not run; else show the next step,
                               and after the last one the summary; on the summary, end
    repeat  (r)                run the shown step again
    skip    (s)                show the next step without running this one; while it runs,
                               stop it (it restores) and move on
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from chaos.drill.plan import Plan
from chaos.results.summary import Summary

KEYS = ("next", "repeat", "skip")
WAITING, RUNNING, DONE, SKIPPED = "waiting", "running", "done", "skipped"


@dataclass(frozen=True)
class StepResult:
    """What one run of a step gave: the numbers the summary slide shows."""

    verdict: str
    """PASSED, FAILED, STOPPED (interrupted or skipped while running) or ERROR."""
    recoveries: tuple[float | None, ...] = ()
    """Each incident's recovery in seconds, None for one that never recovered."""
    scale_in: tuple[float, ...] = ()
    """load only: each incident's way back to its replicas, in seconds."""
    availability: float | None = None
    longest_outage: float = 0.0
    detail: str = ""
    out: str = ""


def result_of(summary: Summary, out: str) -> StepResult:
    verdict = "STOPPED" if summary.aborted else "PASSED" if summary.passed else "FAILED"
    failed = [check.name for check in summary.slo_checks if not check.passed]
    detail = (summary.abort_reason or "stopped before its end" if summary.aborted
              else "; ".join(f"failed {name}" for name in failed))
    return StepResult(
        verdict, tuple(i.recovery_seconds for i in summary.incidents),
        tuple(i.scale_in_seconds for i in summary.incidents if i.scale_in_seconds is not None),
        summary.availability.ratio, summary.availability.longest_outage_seconds, detail, out)


@dataclass
class Lesson:
    """The plan's steps, the one shown (`index`), each one's status and its last result."""

    plan: Plan
    index: int = 0
    status: list[str] = field(default_factory=list)
    results: list[StepResult | None] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)
    summary: bool = False
    """The summary slide is shown."""
    ended: bool = False
    skip_asked: bool = False

    def __post_init__(self) -> None:
        count = len(self.plan.steps)
        self.status = self.status or [WAITING] * count
        self.results = self.results or [None] * count
        self.runs = self.runs or [0] * count

    @property
    def running(self) -> bool:
        return not self.summary and self.status[self.index] == RUNNING

    def press(self, key: str) -> int | None:
        """Handles one key; returns the index of the step to run now, if any. While a step runs,
        only skip does something (asks the command to stop it: `skip_asked`)."""
        if key not in KEYS:
            raise ValueError(f"unknown key {key!r}; one of {', '.join(KEYS)}")
        if self.running:
            self.skip_asked = self.skip_asked or key == "skip"
            return None
        if self.summary:
            self.ended = self.ended or key == "next"
            return None
        if key == "repeat" or (key == "next" and self.status[self.index] == WAITING):
            return self.index
        if key == "skip" and self.status[self.index] == WAITING:
            self.status[self.index] = SKIPPED
        self._advance()
        return None

    def started(self, index: int) -> None:
        self.index, self.summary = index, False
        self.status[index] = RUNNING
        self.runs[index] += 1
        self.skip_asked = False

    def finished(self, index: int, result: StepResult) -> None:
        """The step's run ended; a skip asked while it ran moves on at once."""
        self.status[index] = DONE
        self.results[index] = result
        if self.skip_asked:
            self.skip_asked = False
            self._advance()

    def interrupted(self) -> None:
        """Ctrl-C: the summary, and the end."""
        self.summary = self.ended = True

    def _advance(self) -> None:
        if self.index + 1 < len(self.plan.steps):
            self.index += 1
        else:
            self.summary = True

    def to_dict(self) -> dict[str, Any]:
        """What the page draws: the plan, the shown step, each step's status and numbers."""
        steps = []
        for number, step in enumerate(self.plan.steps):
            result = self.results[number]
            steps.append({"title": step.title, "explain": step.explain, "watch": step.watch,
                          "fault": step.drill.fault.type, "rounds": step.drill.rounds,
                          "status": self.status[number], "runs": self.runs[number],
                          "result": _plain(result) if result else None})
        return {"title": self.plan.title, "index": self.index, "summary": self.summary,
                "ended": self.ended, "steps": steps}

    def summary_lines(self) -> list[str]:
        """The summary slide as lines for the terminal."""
        lines = [f"workshop {self.plan.title}: summary"]
        for number, step in enumerate(self.plan.steps, 1):
            result = self.results[number - 1]
            lines.append(f"  {number}. {step.title}: " + (
                describe(result) if result else self.status[number - 1]))
        return lines


def _plain(result: StepResult) -> dict[str, Any]:
    """RESULT as JSON has it (lists, not tuples), so the page and workshop.json agree."""
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in asdict(result).items()}


def seconds(value: float | None) -> str:
    return "none" if value is None else f"{value:.2f} s"


def describe(result: StepResult) -> str:
    """One line of a step's numbers: verdict, each recovery, availability, longest outage."""
    parts = [result.verdict]
    if result.recoveries:
        parts.append("recovery " + ", ".join(seconds(r) for r in result.recoveries))
    if result.scale_in:
        parts.append("back in " + ", ".join(seconds(s) for s in result.scale_in))
    if result.availability is not None:
        parts.append(f"served {result.availability:.2%}, longest outage "
                     f"{result.longest_outage:.2f} s")
    if result.detail:
        parts.append(result.detail)
    return "; ".join(parts)
