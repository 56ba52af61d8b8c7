"""A drill whose results folder fills up mid-drill (a real tmpfs, really full): it stops
injecting, puts the workload back, and exits 2 with one line naming the journal and the fix."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from chaos.drill import restore
from chaos.results import read_journal

from support import REPO, Output, error_line, pids_with_argument, wait_for_record, write_drill

pytestmark = pytest.mark.e2e

ROUNDS = 5


def mount(where: Path) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(where)],
                   check=True, capture_output=True, timeout=30)


def unmount(where: Path) -> None:
    """Unmounts WHERE; lazily if something still holds it, so the mount never stays."""
    done = subprocess.run(["umount", str(where)], capture_output=True, timeout=30)
    if done.returncode != 0:
        subprocess.run(["umount", "-l", str(where)], check=True, capture_output=True, timeout=30)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted afterwards whatever happened."""
    where = tmp_path / "disk"
    where.mkdir()
    mount(where)
    try:
        yield where
    finally:
        unmount(where)
    assert not os.path.ismount(where)


def fill(disk: Path) -> None:
    """Takes every byte left on DISK (down to single bytes), as a full disk has none."""
    with open(disk / "filler", "wb", buffering=0) as filler:
        for size in (65536, 4096, 256, 16, 1):
            try:
                while True:
                    filler.write(b"\0" * size)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error


def event_counts(api: Any, reason: str) -> dict[str, tuple[str, int]]:
    """demo's Events of REASON: uid -> (message, count); a repeated Event bumps its count."""
    found = client.CoreV1Api(api).list_namespaced_event(
        "demo", field_selector=f"reason={reason}").items
    return {e.metadata.uid: (e.message or "", e.count or 1) for e in found}


def new_events(before: dict[str, tuple[str, int]], after: dict[str, tuple[str, int]],
               needle: str) -> int:
    """How many Events holding NEEDLE came between BEFORE and AFTER."""
    return sum(count - before.get(uid, ("", 0))[1]
               for uid, (message, count) in after.items() if needle in message)


def scaled_to(api: Any, replicas: int, before: Any, until: str) -> int:
    """How often demo/web's spec.replicas became REPLICAS after BEFORE (the Deployment as read)
    up to resource version UNTIL, as the API server's watch replays every change it stored."""
    count, last, since = 0, before.spec.replicas, before.metadata.resource_version
    changes = watch.Watch()
    for event in changes.stream(client.AppsV1Api(api).list_namespaced_deployment, "demo",
                                field_selector="metadata.name=web", resource_version=since,
                                timeout_seconds=30, _request_timeout=40):
        deployment = event["object"]
        if deployment.spec.replicas != last:
            count += deployment.spec.replicas == replicas
        last = deployment.spec.replicas
        if deployment.metadata.resource_version == until:
            changes.stop()
            return count
    pytest.fail(f"the watch from {since} never reached {until}")


def test_a_full_disk_stops_the_drill_restores_and_exits_2_in_one_line(
        web: Any, small_disk: Path, tmp_path: Path) -> None:
    drill = write_drill(tmp_path, {"type": "scale", "replicas": 5}, rounds=ROUNDS,
                        intervalSeconds=2)
    out = small_disk / "out"
    journal = out / "journal.jsonl"
    apps = client.AppsV1Api(web)
    before = apps.read_namespaced_deployment("web", "demo")
    faults_before = event_counts(web, "ChaosDrillFault")
    proc = subprocess.Popen([sys.executable, "-m", "chaos", "run", str(drill), "--out", str(out)],
                            cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = Output(proc.stdout.fileno()), Output(proc.stderr.fileno())
    try:
        wait_for_record(journal, lambda r: r.event == "fault_injected", timeout=180)
        fill(small_disk)
        filled = time.monotonic()
        code = proc.wait(timeout=240)
        took = time.monotonic() - filled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    errors, printed = stderr.finish(timeout=30), stdout.finish(timeout=30)
    assert code == 2, errors
    message = error_line(errors, f"cannot write the journal to {journal}: No space left on "
                         "device", "free space or pass --out DIR", "chaos-drill restore")

    on_disk = read_journal(journal)  # whole lines only: the partial one was cut off
    journaled = sum(1 for r in on_disk if r.event == "fault_injected")
    assert 1 <= journaled < ROUNDS, "it stopped after the failure, rounds short of the end"
    assert "drill_finished" not in [r.event for r in on_disk], "written after the failure"
    # every fault the cluster saw is in the journal on disk: none came after the failed write.
    # (The controller's ScalingReplicaSet Events are no count: it drops them for an object
    # after a burst of 25, which a long test session reaches.)
    deployment = apps.read_namespaced_deployment("web", "demo")
    assert scaled_to(web, 5, before, deployment.metadata.resource_version) == journaled
    assert new_events(faults_before, event_counts(web, "ChaosDrillFault"), "e2e") == journaled

    assert deployment.spec.replicas == 3, message
    assert restore.ANNOTATION not in (deployment.metadata.annotations or {})
    leases = client.CoordinationV1Api(web).list_namespaced_lease(
        "demo", label_selector="app.kubernetes.io/managed-by=chaos-drill").items
    assert leases == [], "the run's Leases are released"
    probers = client.CoreV1Api(web).list_namespaced_pod(
        "demo", label_selector=f"{restore.PROBER_LABEL}=true").items
    assert probers == [], "no prober pod left"
    assert pids_with_argument(str(out)) == [], "no process of the run is left"

    print(f"{journaled} of {ROUNDS} rounds injected; exit 2 {took:.1f} s after the disk filled")
    assert not list(out.glob("*.partial")), "no half-written result file"
    if not (out / "summary.json").exists():  # the usual case: the disk is still full
        assert "results could not be written; measured until the journal failed:" in printed
        assert "probes" in printed and "incidents" in printed, printed
