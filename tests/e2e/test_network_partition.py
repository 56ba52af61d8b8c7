"""network_partition on the real local cluster: a web pod cut off by iptables in its network
namespace leaves the Service and rejoins once lifted, in phase order, without a restart; the
prober's failures fall while it was still in rotation; and no rule of ours is left in any network
namespace on this machine after the drill, after Ctrl-C, or after SIGKILL and `restore`.
packet_loss, on the same path, slows requests down and is lifted the same way."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from chaos.cluster import kube
from chaos.cluster.local import LocalCluster
from chaos.drill.fault_types import LOSS_PHASES, PARTITION_PHASES
from chaos.results import read_journal

from support import (
    cli,
    marked_pods,
    rules_of_ours,
    run_drill,
    running_cli,
    wait_for_record,
    write_drill,
)

pytestmark = pytest.mark.e2e

PROBE_TIMEOUT = 1.0
MARGIN = 0.25


def wait_web_ready(api: Any) -> None:
    kube.wait_for_pods(api, "demo", "app=web",
                       lambda found: len(found) == 3 and all(map(kube.pod_ready, found)), 90)


def partition_drill(tmp_path: Path, seconds: int) -> Path:
    return write_drill(tmp_path, {"type": "network_partition", "durationSeconds": seconds},
                       probe={"service": "web", "port": 80, "ratePerSecond": 20,
                              "timeoutSeconds": PROBE_TIMEOUT})


def test_a_cut_off_pod_leaves_rotation_and_rejoins_once_lifted(
        web: Any, cluster: LocalCluster, tmp_path: Path) -> None:
    assert rules_of_ours() == {}
    summary = run_drill(cluster, partition_drill(tmp_path, 6), tmp_path / "out")
    assert summary.passed, summary.slo_checks
    [incident] = summary.incidents
    phases = incident.phases
    print(f"phases: {dict(phases)}; availability: {summary.availability}")
    assert list(phases) == list(PARTITION_PHASES) and incident.ordered, phases
    assert 6.0 <= phases["lifted"] <= 7.0, phases
    assert incident.restart_count == 0, "the liveness probe got through: no restart"
    check = incident.api_cross_check
    assert check is not None and "agrees" in check and "DISAGREES" not in check, check

    records = read_journal(tmp_path / "out" / "journal.jsonl")
    [injected] = [r for r in records if r.event == "fault_injected"]
    removed = injected.mono + phases["endpoint_removed"]
    failed = []
    for record in records:
        if record.event == "probe_window":
            zero = record.mono - record.get("seconds") - record.get("start_seconds")
            failed += [zero + at for at, _ in record.get("failed_at") or []]
    assert failed, "requests the Service sent the cut-off pod failed"
    for slot in failed:  # only those sent while it was still in rotation
        assert injected.mono - MARGIN <= slot <= removed + PROBE_TIMEOUT + MARGIN, (
            slot - injected.mono, phases)
    assert rules_of_ours() == {}
    assert marked_pods(web) == []


def test_ctrl_c_lifts_the_cut(web: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with running_cli("run", str(partition_drill(tmp_path, 120)), "--out",
                     str(out)) as (proc, output):
        wait_for_record(out / "journal.jsonl", lambda r: r.event == "phase"
                        and r.get("phase") == "endpoint_removed", timeout=120)
        during = rules_of_ours()
        print(f"rules while cut off: {during}")
        assert len(during) == 1, during
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=90)
    text = output.finish(30)
    assert code == 1, text
    assert rules_of_ours() == {}
    assert marked_pods(web) == []
    wait_web_ready(web)


def test_restore_lifts_the_cut_after_sigkill(web: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with running_cli("run", str(partition_drill(tmp_path, 120)), "--out",
                     str(out)) as (proc, output):
        wait_for_record(out / "journal.jsonl", lambda r: r.event == "phase"
                        and r.get("phase") == "endpoint_removed", timeout=120)
    output.finish(30)
    left = rules_of_ours()
    [victim] = marked_pods(web)
    print(f"left by the killed run: {victim}: {left}")
    assert len(left) == 1 and len(next(iter(left.values()))) >= 6, left
    result = cli("restore", "--namespace", "demo")
    assert result.returncode == 0, result.stderr
    assert f"restoring Pod demo/{victim}: cut off by network_partition" in result.stderr
    assert "iptables lines of ours" in result.stderr
    assert rules_of_ours() == {}
    assert marked_pods(web) == []
    wait_web_ready(web)
    assert "nothing left to restore" in cli("restore", "--namespace", "demo").stderr


def test_packet_loss_slows_requests_until_lifted(
        web: Any, cluster: LocalCluster, tmp_path: Path) -> None:
    path = write_drill(tmp_path, {"type": "packet_loss", "lossPercent": 50, "durationSeconds": 6},
                       probe={"service": "web", "port": 80, "ratePerSecond": 20,
                              "timeoutSeconds": PROBE_TIMEOUT})
    summary = run_drill(cluster, path, tmp_path / "out")
    assert summary.passed, summary.slo_checks
    [incident] = summary.incidents
    phases = incident.phases
    print(f"phases: {dict(phases)}; availability: {summary.availability}")
    assert [p for p in phases if p in LOSS_PHASES] == list(LOSS_PHASES) and incident.ordered
    assert 6.0 <= phases["lifted"] <= 7.0 and phases["ready"] >= phases["lifted"], phases
    assert incident.restart_count == 0
    # a lost packet waits for TCP's retransmission, at least 200 ms later: some requests took
    # that long (most still answer within the probe's timeout, so they need not fail)
    slowest = summary.availability.latency_max_seconds
    assert slowest is not None and slowest >= 0.2, summary.availability
    assert rules_of_ours() == {}
    assert marked_pods(web) == []
