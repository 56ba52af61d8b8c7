"""oom_kill on the real local cluster: the kernel's OOM killer kills the container's main process
(its log names the container's memory cgroup), the API reports OOMKilled and one restart more,
the incident's phases follow in order, and no hog process outlives a drill: not a finished one,
not one stopped by Ctrl-C, not one killed outright (restore kills it by PID, and only it)."""

from __future__ import annotations

import glob
import json
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaos.cluster import kube, memory_hog, node_access
from chaos.cluster.base import MemoryHog
from chaos.cluster.local import LocalCluster
from chaos.drill import restore
from chaos.drill.fault_types import TRAFFIC_PHASES
from chaos.drill.faults.oom_kill import hog_original
from chaos.results import read_journal

from support import (
    FAULTS,
    cli,
    run_drill,
    running_cli,
    stand_in_hog,
    vmstat_oom_kills,
    wait_for_record,
    write_drill,
)

pytestmark = pytest.mark.e2e
HOG_PARTS = {"sh", "tail", "head", "sleep", "setsid", "nsenter"}
"""The commands a hog is made of; the sample app's main process is busybox httpd."""


def web_pods(api: Any) -> dict[str, Any]:
    pods = client.CoreV1Api(api).list_namespaced_pod("demo", label_selector="app=web").items
    return {p.metadata.name: p for p in pods if not p.metadata.deletion_timestamp}


def container_id(pod: Any) -> str:
    return str(pod.status.container_statuses[0].container_id).split("://", 1)[1]


def cgroup_procs(cid: str) -> list[int] | None:
    """The processes in container CID's memory cgroup, as the host sees them; None when it has
    none (the container is gone)."""
    found = glob.glob(f"/sys/fs/cgroup/memory/**/{cid}", recursive=True)
    return [int(p) for p in Path(found[0], "cgroup.procs").read_text().split()] if found else None


def settled_web(api: Any, timeout: float = 60) -> dict[str, list[int]]:
    """Once every web pod is Ready and the container its status names runs (an OOM-killed one
    is reported a moment after it is gone): each pod's container cgroup's processes."""
    deadline = time.monotonic() + timeout
    while True:
        pods = web_pods(api)
        procs = {name: cgroup_procs(container_id(pod)) for name, pod in pods.items()}
        ready = all(kube.pod_ready(pod) for pod in pods.values())
        if ready and len(pods) == 3 and all(found for found in procs.values()):
            return {name: found or [] for name, found in procs.items()}
        assert time.monotonic() < deadline, f"web not settled within {timeout}s: {procs}"
        time.sleep(0.2)


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def runs(pid: int, start: int | None = None) -> bool:
    """PID is a live process (not a zombie), started at START if given."""
    try:
        found = memory_hog.parse_stat(Path(f"/proc/{pid}/stat").read_text())
    except OSError:
        return False
    return found is not None and found[0] != "Z" and start in (None, found[1])


def kernel_oom_kills(cid: str) -> list[str]:
    """The kernel log's OOM kill lines whose memory cgroup is container CID's."""
    log = subprocess.run(["dmesg"], capture_output=True, text=True, check=True, timeout=30)
    return [line for line in log.stdout.splitlines() if "oom-kill:" in line and cid in line]


def hog_pid(text: str) -> int:
    found = re.search(r"started a memory hog \(pid (\d+)\)", text)
    assert found, text
    return int(found.group(1))


def assert_no_hog(api: Any) -> None:
    """Each web container's memory cgroup holds its main process and nothing else."""
    for name, procs in settled_web(api).items():
        assert [command_of(p) for p in procs if command_of(p) in HOG_PARTS] == [], (name, procs)
        assert len(procs) == 1, (name, [(p, command_of(p)) for p in procs])


def test_the_kernel_oom_kills_the_main_process_and_the_kubelet_restarts_it(
        web: Any, cluster: LocalCluster, tmp_path: Path) -> None:
    before = web_pods(web)
    lines: list[str] = []
    path = write_drill(tmp_path, FAULTS["oom_kill"], slo={"maxRecoverySeconds": 30})
    counted = vmstat_oom_kills()
    summary = run_drill(cluster, path, tmp_path / "out", say=lines.append)
    kills_counted = vmstat_oom_kills() - counted
    assert summary.passed, (summary.slo_checks, lines)
    [incident] = summary.incidents
    own = [p for p in incident.phases if p not in TRAFFIC_PHASES]
    assert own == ["injected", "container_exited", "restarted", "ready"], incident.phases
    assert incident.ordered and incident.exit_reason == "OOMKilled"
    old = before[incident.target_pod]
    status = client.CoreV1Api(web).read_namespaced_pod(
        incident.target_pod, "demo").status.container_statuses[0]
    assert status.restart_count == old.status.container_statuses[0].restart_count + 1
    assert status.last_state.terminated.reason == "OOMKilled"
    assert status.last_state.terminated.container_id == old.status.container_statuses[0]\
        .container_id
    # the first kill is the main process's; pieces still allocating as the namespace goes may
    # be killed after it
    kills = kernel_oom_kills(container_id(old))
    assert kills and "constraint=CONSTRAINT_MEMCG" in kills[0], kills
    assert re.search(r"task=(\S+),", kills[0]).group(1) not in HOG_PARTS, kills  # type: ignore[union-attr]
    assert incident.kernel_oom_kills == kills_counted, "as many as the kernel's own count"
    assert f"pod {incident.target_pod}: the kernel's log shows {kills_counted} OOM kill(s)" in (
        "\n".join(lines))
    data = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert data["incidents"][0]["exit_reason"] == "OOMKilled"
    # two of three pods serve throughout; the third fails until its readiness probe (1 s)
    # takes it out of the Service
    assert data["availability"]["requests"] > 0 and data["availability"]["ratio"] >= 0.75
    closed = [r for r in read_journal(tmp_path / "out" / "journal.jsonl")
              if r.event == "incident_closed"]
    assert closed[0].get("exit_reason") == "OOMKilled"
    assert not runs(hog_pid("\n".join(lines)))
    assert_no_hog(web)
    assert restore.ANNOTATION not in (client.CoreV1Api(web).read_namespaced_pod(
        incident.target_pod, "demo").metadata.annotations or {})


def test_ctrl_c_mid_drill_leaves_no_hog(web: Any, tmp_path: Path) -> None:
    path = write_drill(tmp_path, FAULTS["oom_kill"], rounds=3, intervalSeconds=2)
    out = tmp_path / "out"
    with running_cli("run", str(path), "--out", str(out)) as (proc, output):
        wait_for_record(out / "journal.jsonl", lambda r: r.event == "fault_injected", 120)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=90)
    text = output.finish(30)
    assert code == 1, text
    assert "SIGINT: stopping" in text
    assert not runs(hog_pid(text)), text
    assert_no_hog(web)
    assert all(restore.ANNOTATION not in (p.metadata.annotations or {})
               for p in web_pods(web).values())
    records = read_journal(out / "journal.jsonl")
    assert sum(r.event == "fault_injected" for r in records) == 1
    assert records[-1].event == "drill_finished" and records[-1].get("aborted") is True


def on_node(cluster: LocalCluster, pod: Any) -> node_access.NodeAccess:
    return node_access.on_host(pod.spec.node_name, cluster._node(pod.spec.node_name).socket)


def test_restore_after_a_sigkill_kills_a_hog_left_running_and_only_it(
        web: Any, cluster: LocalCluster) -> None:
    core = client.CoreV1Api(web)
    settled_web(web)  # an earlier test's OOM-killed container may still be reported running
    first, second = list(web_pods(web).values())[:2]
    hog, launcher = stand_in_hog(on_node(cluster, first), container_id(first))
    other, other_launcher = stand_in_hog(on_node(cluster, second), container_id(second))
    try:
        for pod, recorded in ((first, hog), (second, MemoryHog(
                other.node, other.pid, other.start + 1, other.container_id, 1))):
            record = restore.Record("0ddba11", "oom_kill", hog_original("local", recorded),
                                    "laptop", 1, "2026-01-01T00:00:00+00:00",
                                    "demo/chaos-drill-run-0ddba11")
            restore.mark_pod(web, pod.metadata.name, "demo", record)
        assert runs(hog.pid, hog.start)  # the record's run Lease does not exist: a dead run
        done = cli("restore", "--namespace", "demo")
        assert done.returncode == 0, done.stderr
        assert f"killed memory hog pid {hog.pid} on node {hog.node}" in done.stderr
        assert launcher.wait(timeout=30) == -signal.SIGKILL
        assert not runs(hog.pid)
        # the second record's start time is not its process's: a PID taken by another
        assert runs(other.pid, other.start), "restore killed a process its record did not name"
        assert f"killed memory hog pid {other.pid}" not in done.stderr
        for pod in (first, second):
            annotations = core.read_namespaced_pod(pod.metadata.name, "demo").metadata.annotations
            assert restore.ANNOTATION not in (annotations or {})
    finally:
        for started, process in ((hog, launcher), (other, other_launcher)):
            if runs(started.pid, started.start):  # its process group, by the PID it reported
                subprocess.run(["kill", "-9", "--", f"-{started.pid}"], timeout=30, check=False)
            process.wait(timeout=30)
