"""When traffic stopped going to a victim and went to a healthy pod again: the traffic phases
(endpoint_removed, endpoint_added) over 10 rounds of pod_delete and of network_partition on web
(three replicas, local cluster), medians after injected, and how the prober's failed requests
fall around them. Each phase's time is checked against the API server's own stamp on the
EndpointSlice write (managedFields, whole seconds): our wall time must lie in that second or
within MARGIN after it.

Run with `make bench` (or `.venv/bin/pytest tests/bench/test_traffic_bench.py -m bench -s`);
figures go to tests/bench/results/traffic.json."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from chaos.cluster.local import LocalCluster
from chaos.results import read_journal

from support import Figures, run_drill, write_drill

pytestmark = [pytest.mark.bench, pytest.mark.timeout(1200)]

RESULTS = Path(__file__).resolve().parent / "results" / "traffic.json"
ROUNDS = 10
RATE, TIMEOUT = 20, 1.0
MARGIN = 0.5
"""How far after the API's whole-second stamp our wall time of a phase may lie."""
FAULTS: dict[str, dict[str, Any]] = {
    "pod_delete": {"type": "pod_delete"},
    "network_partition": {"type": "network_partition", "durationSeconds": 5},
}


@pytest.fixture(scope="module")
def figures() -> Iterator[Figures]:
    found = Figures()
    yield found
    found.save(RESULTS)


def failed_sends(records: list[Any]) -> list[float]:
    """Monotonic send times of every failed probe request."""
    failed: list[float] = []
    for record in records:
        if record.event == "probe_window":
            zero = record.mono - record.get("seconds") - record.get("start_seconds")
            failed += [zero + at for at, _ in record.get("failed_at") or []]
    return failed


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_traffic_phases_over_ten_rounds(web: Any, cluster: LocalCluster, tmp_path: Path,
                                        figures: Figures, fault: str) -> None:
    path = write_drill(tmp_path, FAULTS[fault], rounds=ROUNDS, intervalSeconds=2,
                       probe={"service": "web", "port": 80, "ratePerSecond": RATE,
                              "timeoutSeconds": TIMEOUT})
    summary = run_drill(cluster, path, tmp_path / "out")
    assert summary.passed, summary.slo_checks
    records = read_journal(tmp_path / "out" / "journal.jsonl")
    injected = {r.get("incident"): r.mono for r in records if r.event == "fault_injected"}
    stamps = {(r.get("incident"), r.get("phase")): r for r in records
              if r.event == "phase" and r.get("phase") in ("endpoint_removed", "endpoint_added")}
    failed = failed_sends(records)
    removed, added, before, after, lags = [], [], 0, 0, []
    for incident in summary.incidents:
        phases = incident.phases
        assert "endpoint_removed" in phases and "endpoint_added" in phases, phases
        removed.append(phases["endpoint_removed"])
        added.append(phases["endpoint_added"])
        for phase in ("endpoint_removed", "endpoint_added"):
            record = stamps[(incident.id, phase)]
            ours = datetime.fromisoformat(record.ts)
            api = datetime.fromisoformat(record.get("api_time"))
            lag = (ours - api).total_seconds()
            assert -0.05 <= lag <= 1 + MARGIN, (incident.id, phase, record.ts, api)
            lags.append(lag)
        start = injected[incident.id]
        out_at = start + phases["endpoint_removed"] + TIMEOUT
        end = start + phases.get("endpoint_added", phases["endpoint_removed"]) + TIMEOUT
        mine = [t for t in failed if start - 0.25 <= t <= end]
        before += sum(1 for t in mine if t <= out_at)
        after += sum(1 for t in mine if t > out_at)
    total = before + after
    print(f"\n{fault}: endpoint_removed median {statistics.median(removed):.3f} s, "
          f"endpoint_added median {statistics.median(added):.3f} s after injected; "
          f"{total} failed requests, {before} sent before endpoint_removed + the probe timeout; "
          f"our wall time {statistics.median(lags):.3f} s (median) after the API's second")
    figures.add(f"{fault}_endpoint_removed", "s", removed)
    figures.add(f"{fault}_endpoint_added", "s", added, failed_requests=total,
                failed_before_removed=before, availability=summary.availability.ratio,
                api_stamp_lag_median_seconds=round(statistics.median(lags), 3))
