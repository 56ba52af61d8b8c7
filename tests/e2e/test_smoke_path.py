"""The short smoke path on the real cluster: `deploy --no-wait`, then a drill at once. The drill
waits for its target before it probes (no request fails before the fault for a workload still
coming up), and after the recovery it still measures the probe window that holds it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaos.cluster.local import LocalCluster
from chaos.results.journal import read_journal

from support import FAULTS, cli, run_drill, write_drill

pytestmark = pytest.mark.e2e


def test_a_drill_straight_after_deploy_no_wait(web: Any, cluster: LocalCluster,
                                              tmp_path: Path) -> None:
    client.CoreV1Api(web).delete_collection_namespaced_pod(
        "demo", label_selector="app=web", grace_period_seconds=0)
    deployed = cli("deploy", "--no-wait")
    assert deployed.returncode == 0, deployed.stderr[-2000:]
    assert "not waited for" in deployed.stderr
    out = tmp_path / "out"
    summary = run_drill(cluster, write_drill(tmp_path, FAULTS["pod_delete"]), out)
    assert summary.passed, summary.slo_checks
    records = read_journal(out / "journal.jsonl")
    injected = next(r.mono for r in records if r.event == "fault_injected")
    ready = next(r.mono for r in records if r.event == "phase" and r.get("phase") == "ready")
    windows = [r for r in records if r.event == "probe_window"]
    assert windows
    slot_zero = windows[0].mono - windows[0].get("start_seconds") - windows[0].get("seconds")
    failed = [slot_zero + at for w in windows for at, _ in w.get("failed_at")]
    assert not [at for at in failed if at < injected], (injected, failed)
    assert windows[-1].mono >= ready, (windows[-1], ready)
