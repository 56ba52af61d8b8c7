"""The CI smoke path, step by step: `cluster up`, `deploy`, then a one-round pod_delete drill
with a probe, each timed by its own `--timings` (its steps from its progress lines), median of
CYCLES fresh clusters, on the local cluster and on kind.

Run with `make bench` (or `.venv/bin/pytest tests/bench/test_smoke_bench.py -m bench -s`);
figures merge into tests/bench/results/smoke.json."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import FAULTS, Figures, cli, write_drill

pytestmark = pytest.mark.bench

RESULTS = Path(__file__).resolve().parent / "results" / "smoke.json"
CYCLES = 5
COMMANDS = ("up", "deploy", "drill")


@pytest.fixture(scope="module")
def figures() -> Iterator[Figures]:
    found = Figures()
    yield found
    found.save(RESULTS)


def timed(tmp_path: Path, name: str, *args: str) -> dict[str, Any]:
    """ARGS run by the CLI with --timings; its timings."""
    path = tmp_path / f"{name}.json"
    result = cli(*args, "--timings", str(path))
    assert result.returncode == 0, result.stderr[-3000:]
    timings: dict[str, Any] = json.loads(path.read_text())
    return timings


def cycle(provider: str, tmp_path: Path) -> dict[str, dict[str, Any]]:
    """One fresh cluster through the smoke path; the timings of each command."""
    down = cli("cluster", "down", "--provider", provider)
    assert down.returncode == 0, down.stderr[-3000:]
    drill = write_drill(tmp_path, FAULTS["pod_delete"])
    return {
        "up": timed(tmp_path, "up", "cluster", "up", "--provider", provider),
        "deploy": timed(tmp_path, "deploy", "deploy", "--provider", provider),
        "drill": timed(tmp_path, "drill", "run", str(drill), "--provider", provider,
                       "--out", str(tmp_path / "out")),
    }


def step_medians(runs: list[dict[str, Any]], top: int = 5) -> dict[str, float]:
    """The median of each step over RUNS, for the TOP steps by median."""
    seconds: dict[str, list[float]] = {}
    for run in runs:
        for step in run["steps"]:
            seconds.setdefault(step["step"], []).append(step["seconds"])
    medians = {name: round(statistics.median(s), 3) for name, s in seconds.items()}
    return dict(sorted(medians.items(), key=lambda item: -item[1])[:top])


@pytest.mark.parametrize("provider", ["local", "kind"])
def test_smoke_path_step_by_step(provider: str, figures: Figures, cluster_lock: None,
                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    cycles = [cycle(provider, tmp_path_factory.mktemp(f"{provider}-{n}"))
              for n in range(CYCLES)]
    totals = [sum(c[name]["total_seconds"] for name in COMMANDS) for c in cycles]
    figures.add(f"{provider}_smoke_total", "s", totals)
    for name in COMMANDS:
        runs = [c[name] for c in cycles]
        figures.add(f"{provider}_smoke_{name}", "s", [r["total_seconds"] for r in runs],
                    longest_steps=step_medians(runs))
    down = cli("cluster", "down", "--provider", provider)
    assert down.returncode == 0, down.stderr[-3000:]
