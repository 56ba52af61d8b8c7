"""Where the prober runs: from a restricted prober pod in the drill's namespace (spec.probe.from:
cluster) it reports availability and latency as the host's does, and its pod is gone after the
run, after Ctrl-C, and (through `restore`) after a SIGKILL."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaos.drill import restore
from chaos.results import read_journal

from support import FAULTS, cli, running_cli, write_drill

pytestmark = pytest.mark.e2e

PROBE = {"service": "web", "port": 80, "ratePerSecond": 20, "timeoutSeconds": 2}
PROBER_SELECTOR = f"{restore.PROBER_LABEL}=true"


def prober_pods(api: Any) -> list[str]:
    pods = client.CoreV1Api(api).list_namespaced_pod("demo", label_selector=PROBER_SELECTOR,
                                                     _request_timeout=30).items
    return [p.metadata.name for p in pods]


def wait_no_prober_pod(api: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (left := prober_pods(api)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert prober_pods(api) == [], f"prober pods left: {left}"


def journal(out: Path) -> list[Any]:
    return read_journal(next(out.rglob("journal.jsonl")))


def test_probe_from_the_cluster_reports_availability_and_latency(web: Any,
                                                                 tmp_path: Path) -> None:
    drill = write_drill(tmp_path, FAULTS["pod_delete"], probe={**PROBE, "from": "cluster"})
    result = cli("run", str(drill), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "from pod demo/chaosdrill-prober-" in result.stderr
    records = journal(tmp_path / "out")
    [started] = [r for r in records if r.event == "probe_started"]
    assert started.get("origin") == "cluster" and started.get("setting") == "cluster"
    # one machine, one clock: the pod's slot 0, put on the run's clock from the pod's wall time,
    # falls after the run began and before the pod's first line arrived (the bound's two ends)
    [begun] = [r for r in records if r.event == "drill_started"]
    slot_zero = float(started.get("slot_zero_mono"))
    bound = float(started.get("skew_bound_seconds"))
    assert begun.mono < slot_zero <= started.mono, (begun.mono, slot_zero, started.mono)
    assert 0 <= bound < 10, bound
    windows = [r for r in records if r.event == "probe_window"]
    assert len(windows) >= 2  # a one-round drill on a settled workload lasts about 2 s
    assert [w.get("start_seconds") for w in windows] == sorted(w.get("start_seconds")
                                                                for w in windows)
    summary = json.loads(next((tmp_path / "out").rglob("summary.json")).read_text())
    availability = summary["availability"]
    assert availability["requests"] == sum(int(w.get("requests")) for w in windows)
    probed = sum(float(w.get("seconds")) for w in windows)
    assert availability["requests"] >= 20 * probed * 0.9, (availability["requests"], probed)
    assert availability["latency_p50_seconds"] is not None
    assert availability["latency_p50_seconds"] <= availability["latency_p99_seconds"]
    wait_no_prober_pod(web)


def test_auto_probes_from_the_host_where_it_answers(web: Any, tmp_path: Path) -> None:
    drill = write_drill(tmp_path, FAULTS["pod_delete"], probe=PROBE)
    result = cli("run", str(drill), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "from the host" in result.stderr
    [started] = [r for r in journal(tmp_path / "out") if r.event == "probe_started"]
    assert (started.get("origin"), started.get("setting")) == ("host", "auto")
    assert prober_pods(web) == []


def long_drill(tmp_path: Path) -> Path:
    return write_drill(tmp_path, FAULTS["pod_delete"], rounds=3, intervalSeconds=20,
                       probe={**PROBE, "from": "cluster"})


def test_ctrl_c_removes_the_prober_pod(web: Any, tmp_path: Path) -> None:
    with running_cli("run", str(long_drill(tmp_path)), "--out",
                     str(tmp_path / "out")) as (proc, output):
        output.wait_for("from pod demo/chaosdrill-prober-", timeout=180)
        assert len(prober_pods(web)) == 1
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    output.finish(timeout=30)
    assert prober_pods(web) == [], "the run's end deletes its prober pod before it exits"
    assert any(r.event == "drill_finished" for r in journal(tmp_path / "out"))


def test_restore_removes_a_prober_pod_left_by_sigkill(web: Any, tmp_path: Path) -> None:
    with running_cli("run", str(long_drill(tmp_path)), "--out",
                     str(tmp_path / "out")) as (proc, output):
        output.wait_for("from pod demo/chaosdrill-prober-", timeout=180)
    [left] = prober_pods(web)
    result = cli("restore", "--namespace", "demo")
    assert result.returncode == 0, result.stderr
    assert f"demo/{left}" in result.stderr
    wait_no_prober_pod(web)
    assert "nothing left to restore" in cli("restore", "--namespace", "demo").stderr
