"""The CI smoke path, step by step: `cluster up`, `deploy --no-wait`, then a one-round
pod_delete drill with a probe, each timed by its own `--timings` (its steps from its progress
lines), median of CYCLES fresh clusters, on the local cluster, on kind and on a one-node kind
cluster (`--kind-workers 0`, keyed kind1). On kind each cycle also times plain
`kind create cluster` with the same node image and config, in the same Docker engine, as the
reference `cluster up` is compared with.

Run with `make bench` (or `.venv/bin/pytest tests/bench/test_smoke_bench.py -m bench -s`);
figures merge into tests/bench/results/smoke.json."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaos.cluster import kind
from chaos.cluster.kind import KindCluster
from chaos.images.node import NODE_IMAGE

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


def cycle(variant: str, tmp_path: Path) -> dict[str, dict[str, Any]]:
    """One fresh cluster through the smoke path; the timings of each command. VARIANT: local,
    kind (three nodes) or kind-1 (one node: --kind-workers 0)."""
    provider = variant.split("-")[0]
    size = ("--kind-workers", "0") if variant == "kind-1" else ()
    down = cli("cluster", "down", "--provider", provider)
    assert down.returncode == 0, down.stderr[-3000:]
    drill = write_drill(tmp_path, FAULTS["pod_delete"])
    timings = {
        "up": timed(tmp_path, "up", "cluster", "up", "--provider", provider, *size),
        "deploy": timed(tmp_path, "deploy", "deploy", "--no-wait", "--provider", provider),
        "drill": timed(tmp_path, "drill", "run", str(drill), "--provider", provider,
                       "--out", str(tmp_path / "out")),
    }
    if provider == "kind":
        timings["plain_kind_create"] = {"total_seconds": plain_kind_create()}
    return timings


def plain_kind_create() -> float:
    """Seconds `kind create cluster` takes alone, with the node image and config `up` used, in
    the engine and network `up` set up (the cluster `up` made deleted first). No --wait: the
    node image has no default CNI (`up` installs its own), so its nodes are never Ready before
    one is in place; the reference is the shorter for it."""
    ours = KindCluster()
    ours._kind(*kind.delete_command(ours.cluster_name)[1:])
    config = ours.state / "cluster.yaml"
    began = time.perf_counter()
    ours._kind(*kind.create_command(ours.cluster_name, config, NODE_IMAGE)[1:])
    return time.perf_counter() - began


def step_medians(runs: list[dict[str, Any]], top: int = 5) -> dict[str, float]:
    """The median of each step over RUNS, for the TOP steps by median."""
    seconds: dict[str, list[float]] = {}
    for run in runs:
        for step in run["steps"]:
            seconds.setdefault(step["step"], []).append(step["seconds"])
    medians = {name: round(statistics.median(s), 3) for name, s in seconds.items()}
    return dict(sorted(medians.items(), key=lambda item: -item[1])[:top])


@pytest.mark.parametrize("variant", ["local", "kind", "kind-1"])
def test_smoke_path_step_by_step(variant: str, figures: Figures, cluster_lock: None,
                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    cycles = [cycle(variant, tmp_path_factory.mktemp(f"{variant}-{n}"))
              for n in range(CYCLES)]
    key = variant.replace("-", "")  # kind1: the one-node cluster
    totals = [sum(c[name]["total_seconds"] for name in COMMANDS) for c in cycles]
    figures.add(f"{key}_smoke_total", "s", totals)
    for name in COMMANDS:
        runs = [c[name] for c in cycles]
        figures.add(f"{key}_smoke_{name}", "s", [r["total_seconds"] for r in runs],
                    longest_steps=step_medians(runs))
    if variant != "local":
        plain = [c["plain_kind_create"]["total_seconds"] for c in cycles]
        figures.add(f"{key}_plain_create", "s", plain,
                    note="kind create cluster alone, same image and config, no --wait")
        ratio = (statistics.median([c["up"]["total_seconds"] for c in cycles])
                 / statistics.median(plain))
        figures.add(f"{key}_up_to_plain_create_ratio", "x", [ratio],
                    note="median cluster up / median plain kind create")
    down = cli("cluster", "down", "--provider", variant.split("-")[0])
    assert down.returncode == 0, down.stderr[-3000:]
