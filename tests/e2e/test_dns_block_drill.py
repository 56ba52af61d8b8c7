"""dns_block on the real local cluster: a web pod whose DNS is blocked stays Ready, while the
requests through it to api (called by name) fail, only while the rules are there, which are in
that pod's namespace alone and name the nameserver of its resolv.conf; nothing in kube-system
changes; once lifted, requests through web answer again. Ctrl-C, and SIGKILL then `restore`,
leave no rule of ours in any network namespace on this machine."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaos.cluster.local import LocalCluster
from chaos.drill.fault_types import DNS_PHASES
from chaos.drill.timeline import Incident
from chaos.results import read_journal

from support import (
    cli,
    marked_pods,
    rules_by_address,
    rules_of_ours,
    run_drill,
    run_in,
    running_cli,
    wait_settled,
    write_drill,
)

pytestmark = pytest.mark.e2e

PROBE_TIMEOUT = 3.0
"""Longer than web's own 2 s call to api, so a request through a blocked pod is web's 502 even
if its lookup hung."""
MARGIN = 0.25
SECONDS = 6
INJECTED_LINE = "dropping its DNS queries"


def dns_drill(tmp_path: Path, rounds: int = 1, interval: float = 0) -> Path:
    return write_drill(tmp_path, {"type": "dns_block", "durationSeconds": SECONDS},
                       rounds=rounds, intervalSeconds=interval,
                       probe={"service": "web", "port": 80, "path": "/cgi-bin/api",
                              "ratePerSecond": 20, "timeoutSeconds": PROBE_TIMEOUT})


def kube_system(api: Any) -> dict[str, int]:
    """Each kube-system pod by UID, with its restarts."""
    pods = client.CoreV1Api(api).list_namespaced_pod("kube-system").items
    return {p.metadata.uid: sum(c.restart_count for c in p.status.container_statuses or [])
            for p in pods}


def test_requests_through_a_pod_without_dns_fail_until_lifted(
        web: Any, cluster: LocalCluster, tmp_path: Path) -> None:
    assert rules_of_ours() == {}
    system_before = kube_system(web)
    seen: list[tuple[str, dict[str, list[str]]]] = []

    def listed(incident: Incident) -> None:  # the rules as they are once injected
        seen.append((incident.target_pod, rules_by_address()))

    out = tmp_path / "out"
    summary = run_drill(cluster, dns_drill(tmp_path, rounds=2, interval=5), out,
                        on_inject=listed)
    records = read_journal(out / "journal.jsonl")
    spans = []
    for incident, (victim, rules) in zip(summary.incidents, seen, strict=True):
        phases = incident.phases
        print(f"{victim}: phases {dict(phases)}; rules {rules}")
        assert list(phases) == list(DNS_PHASES) and incident.ordered, phases
        assert SECONDS <= phases["lifted"] <= SECONDS + 1, phases
        assert incident.restart_count == 0
        [(address, lines)] = rules.items()  # one namespace, the victim's
        assert address == client.CoreV1Api(web).read_namespaced_pod(victim, "demo").status.pod_ip
        [server] = [w.split()[1] for w in run_in(web, victim, "cat", "/etc/resolv.conf")
                    .splitlines() if w.startswith("nameserver")]
        for protocol in ("udp", "tcp"):
            rule = (f"-A CHAOS-DRILL-DNS -d {server}/32 -p {protocol} -m {protocol} --dport 53 "
                    "-j DROP")
            assert rule in lines, lines
        assert "-A OUTPUT -j CHAOS-DRILL-DNS" in lines
        # blocked from the injection until the rules' removal ended, before the incident closed
        [injected, closed] = [r for r in records if r.get("incident") == incident.id
                              and r.event in ("fault_injected", "incident_closed")]
        print(f"rules removed within {closed.mono - injected.mono - phases['lifted']:.3f}s")
        spans.append((injected.mono, closed.mono))

    failed: list[tuple[float, str]] = []
    windows = []
    for record in records:
        if record.event == "probe_window":
            zero = record.mono - record.get("seconds") - record.get("start_seconds")
            failed += [(zero + at, kind) for at, kind in record.get("failed_at") or []]
            windows.append((record.mono - record.get("seconds"), record.mono,
                            record.get("requests"), record.get("failures")))
    during = [sum(1 for at, _ in failed if begin - MARGIN <= at <= end + MARGIN)
              for begin, end in spans]
    print(f"availability: {summary.availability}; failures while blocked, per round: {during}")
    assert all(during), "requests through the blocked pod failed in every round"
    assert len(failed) == sum(during), "and only while its DNS was blocked"
    assert {kind for _, kind in failed} == {"http_error"}, "web answered 502, it did not hang"
    # a packet dropped on its way out fails the send itself (EPERM): the lookup fails at once,
    # long before web's 2 s call to api would have timed out
    slowest = summary.availability.latency_max_seconds
    assert slowest is not None and slowest < 1.0, summary.availability
    after = [(n, f) for b, e, n, f in windows if b >= spans[0][1] + MARGIN and e <= spans[1][0]]
    print(f"windows between the rounds (requests, failures): {after}")
    assert after and all(n > 0 and f == 0 for n, f in after), "requests answered once lifted"
    assert rules_of_ours() == {}
    assert marked_pods(web) == []
    assert kube_system(web) == system_before, "kube-system untouched"


def test_ctrl_c_lifts_the_block(web: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with running_cli("run", str(dns_drill(tmp_path)), "--out", str(out)) as (proc, output):
        output.wait_for(INJECTED_LINE, timeout=120)
        during = rules_of_ours()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=90)
    text = output.finish(30)
    print(f"rules while blocked: {during}")
    assert len(during) == 1, during
    assert code == 1, text
    records = read_journal(out / "journal.jsonl")
    assert not any(r.event == "phase" and r.get("phase") == "lifted" for r in records), (
        "Ctrl-C came before the duration ended: it is what lifted the block")
    assert rules_of_ours() == {}
    assert marked_pods(web) == []
    wait_settled(web, 3, timeout=90)


def test_restore_lifts_the_block_after_sigkill(web: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with running_cli("run", str(dns_drill(tmp_path)), "--out", str(out)) as (_, output):
        output.wait_for(INJECTED_LINE, timeout=120)
    output.finish(30)
    left = rules_by_address()
    [victim] = marked_pods(web)
    print(f"left by the killed run: {victim}: {left}")
    [(address, lines)] = left.items()
    assert len(lines) == 4 and all("CHAOS-DRILL-DNS" in line for line in lines), lines
    assert address == client.CoreV1Api(web).read_namespaced_pod(victim, "demo").status.pod_ip
    result = cli("restore", "--namespace", "demo")
    assert result.returncode == 0, result.stderr
    assert f"restoring Pod demo/{victim}: DNS blocked by dns_block" in result.stderr
    assert f"removed 4 iptables lines of ours from pod demo/{victim}" in result.stderr
    assert rules_of_ours() == {}
    assert marked_pods(web) == []
    wait_settled(web, 3, timeout=90)
    assert "nothing left to restore" in cli("restore", "--namespace", "demo").stderr
