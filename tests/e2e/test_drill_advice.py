"""Advice after a real drill: a pod_delete on a one-replica web names "one replica", with the
seconds no pod was Ready checked against the API's own timestamps and the prober's failures."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from chaos.cluster.local import LocalCluster
from chaos.results import read_journal
from chaos.results.weak_spots import finding_lines

from support import FAULTS, run_drill, scale, write_drill

pytestmark = pytest.mark.e2e


def api_seconds_to_ready(out: Path, incident: str) -> float:
    """The replacement's Ready condition time (whole seconds) minus the injection's wall clock."""
    records = read_journal(out / "journal.jsonl")
    injected = next(r for r in records if r.event == "fault_injected"
                    and r.get("incident") == incident)
    ready = next(r for r in records if r.event == "phase" and r.get("incident") == incident
                 and r.get("phase") == "ready")
    return (datetime.fromisoformat(ready.get("api_time"))
            - datetime.fromisoformat(injected.get("api_time"))).total_seconds()


def test_one_replica_pod_delete_advises_replicas_with_the_outage(
        web: Any, cluster: LocalCluster, tmp_path: Path) -> None:
    scale(web, 1)
    try:
        summary = run_drill(cluster, write_drill(tmp_path, FAULTS["pod_delete"]),
                            tmp_path / "out")
    finally:
        scale(web, 3)
    advice = {a.check: a for a in summary.advice}
    assert "replicas" in advice, summary.advice
    assert "endpoints" not in advice, "no other pod was Ready: the failures are the outage's"
    evidence = advice["replicas"].evidence
    incident = summary.incidents[0]
    match = re.fullmatch(rf"{incident.id}: {incident.target_pod} was the only pod; no pod was "
                         r"Ready for ([\d.]+) s; (no request failed|(\d+) requests? failed "
                         r"from \+[\d.]+ s to \+([\d.]+) s)", evidence)
    assert match, evidence
    print("\n".join(finding_lines(summary.advice, "advice")))
    outage, failed = float(match[1]), int(match[3] or 0)
    # a whole-second Ready stamp puts the truth up to 1 s above the API figure; the Deployment's
    # readyReplicas follows the pod's Ready condition a moment later
    by_api = api_seconds_to_ready(tmp_path / "out", incident.id)
    assert incident.recovery_seconds is not None
    print(f"no Ready pod {outage} s; API {by_api} s; recovery {incident.recovery_seconds} s; "
          f"{failed} failed of {summary.availability.requests} requests")
    assert by_api - 1.0 <= outage <= by_api + 1.5, (outage, by_api)
    assert 0 < outage <= incident.recovery_seconds + 1.0
    # the incident's share of the prober's failures, none long after Ready
    assert failed <= summary.availability.failures
    if failed:
        assert float(match[4]) <= incident.recovery_seconds + 1.0
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert {"check": "replicas", "finding": advice["replicas"].finding, "evidence": evidence,
            "fix": advice["replicas"].fix} in written["advice"]
    assert evidence in (tmp_path / "out" / "report.html").read_text().replace("&#x27;", "'")
