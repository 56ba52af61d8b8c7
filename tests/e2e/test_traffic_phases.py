"""Traffic phases on the real local cluster: a pod_delete drill on web with a probe shows when
its Service stopped and resumed sending traffic to the victim, checked against kube-proxy's
iptables rules (the KUBE-SEP chain of each pod IP), the slices' own write times (managedFields)
and the prober's failures."""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaos.cluster.local import LocalCluster
from chaos.drill.timeline import Incident
from chaos.results import JournalRecord, read_journal

from support import FAULTS, run_drill, write_drill

pytestmark = pytest.mark.e2e

POLL_SECONDS = 0.05
KUBE_PROXY_LAG = 2.0
"""kube-proxy (minSyncPeriod 0) rewrites its rules within this of the slice change."""
WATCH_MARGIN = 0.25
WATCHES_APART = 0.05
"""How far apart two watches (the pods', the slices') may deliver what happened in one order."""
PROBE_TIMEOUT = 1.0


class ProxyRules:
    """Samples which pod IPs kube-proxy's nat table sends demo/web's traffic to (a KUBE-SEP
    chain per endpoint), with the monotonic time of each sample."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, set[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ProxyRules:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            rules = subprocess.run(
                ["iptables-save", "-t", "nat"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout
            at = time.monotonic()
            ips = {
                line.split(" -s ")[1].split("/")[0]
                for line in rules.splitlines()
                if line.startswith("-A KUBE-SEP-") and '"demo/web:http"' in line and " -s " in line
            }
            self.samples.append((at, ips))

    def first(self, after: float, holds: Any) -> float | None:
        """The first sample after AFTER whose IP set HOLDS(ips) is true."""
        return next((at for at, ips in self.samples if at > after and holds(ips)), None)


def pod_ips(api: Any) -> dict[str, str]:
    pods = client.CoreV1Api(api).list_namespaced_pod("demo", label_selector="app=web").items
    return {p.metadata.name: p.status.pod_ip for p in pods if p.status.pod_ip}


def failed_slots(records: list[JournalRecord]) -> list[float]:
    """The scheduled time (run's monotonic clock) of every failed probe slot."""
    failed = []
    for record in records:
        if record.event == "probe_window":
            slot_zero = record.mono - record.get("seconds") - record.get("start_seconds")
            failed += [slot_zero + at for at, _ in record.get("failed_at") or []]
    return failed


def test_pod_delete_leaves_rotation_and_the_replacement_enters_it(
    web: Any, cluster: LocalCluster, tmp_path: Path
) -> None:
    before = pod_ips(web)
    drill = write_drill(
        tmp_path,
        FAULTS["pod_delete"],
        probe={"service": "web", "port": 80, "ratePerSecond": 50, "timeoutSeconds": PROBE_TIMEOUT},
    )
    with ProxyRules() as proxy:
        summary = run_drill(cluster, drill, tmp_path / "out")
        # kube-proxy may write the replacement's rules after the drill has ended: keep looking
        # (the comparison below uses the first sample that shows them)
        now = pod_ips(web)
        deadline = time.monotonic() + 15
        while (not proxy.samples or not set(now.values()) <= proxy.samples[-1][1]) \
                and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
    assert summary.passed, summary.slo_checks
    [result] = summary.incidents
    phases = result.phases
    print(f"phases: {dict(phases)}")
    assert list(phases)[-2:] == ["endpoint_removed", "endpoint_added"], phases
    assert 0 < phases["endpoint_removed"] < phases["endpoint_added"]
    # the replacement enters rotation once Ready, not before, and soon after; the pod and its
    # slice come on two watches, whose events may reach us a few ms apart in either order
    ready, added = phases["ready"], phases["endpoint_added"]
    assert ready - WATCHES_APART <= added <= ready + 1.0, phases
    assert result.ordered

    records = read_journal(tmp_path / "out" / "journal.jsonl")
    [injected] = [r for r in records if r.event == "fault_injected"]
    assert injected.get("service") == "web"
    marks = {r.get("phase"): r for r in records if r.event == "phase"}
    incident = Incident("x", 1, "pod_delete", "demo", "web", "", service="web")
    incident.mark("injected", injected.mono, datetime.fromisoformat(injected.get("api_time")))
    for phase in ("endpoint_removed", "endpoint_added"):
        stamp = marks[phase].get("api_time")
        assert stamp, f"{phase} carries the slice's write time"
        incident.mark(phase, marks[phase].mono, datetime.fromisoformat(stamp))
        check = incident.api_cross_check(last_phase=phase)
        assert check is not None
        assert check.agrees, check.detail()
        print(check.detail())

    # kube-proxy's view: the victim's KUBE-SEP chain goes, the replacement's comes
    victim_ip = before[result.target_pod]
    replacement = marks["replacement_created"].get("pod")
    replacement_ip = pod_ips(web)[replacement]
    start = injected.mono
    gone = proxy.first(start, lambda ips: victim_ip not in ips)
    came = proxy.first(start, lambda ips: replacement_ip in ips)
    assert gone is not None and came is not None, proxy.samples[-3:]
    removed_at = start + phases["endpoint_removed"]
    added_at = start + phases["endpoint_added"]
    print(
        f"kube-proxy: victim's rules gone +{gone - start:.3f} s (endpoint_removed "
        f"+{phases['endpoint_removed']:.3f} s), replacement's rules +{came - start:.3f} s "
        f"(endpoint_added +{phases['endpoint_added']:.3f} s)"
    )
    assert removed_at - WATCH_MARGIN <= gone <= removed_at + KUBE_PROXY_LAG
    assert added_at - WATCH_MARGIN <= came <= added_at + KUBE_PROXY_LAG

    # the prober's failures: only while the dead pod could still get traffic
    for slot in failed_slots(records):
        assert start - WATCH_MARGIN <= slot <= gone + PROBE_TIMEOUT + WATCH_MARGIN, (
            slot - start,
            gone - start,
        )
