"""The faults that act below the API, on kind (the session's cluster, tests/kind/conftest.py):
network_partition, packet_loss and dns_block write their iptables rules in a web pod's namespace
through `docker exec NODE nsenter`, oom_kill's memory hog runs inside the node's container. Each
drill's phases come in order, availability is measured through web by the prober pod, and
nothing of ours is left (no rule in any network namespace on this machine, listed from the host,
which sees the kind pods' namespaces too; no hog) after a drill, after Ctrl-C, or after SIGKILL
and `restore --provider kind`."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaos.cluster import dockerd, node_access
from chaos.drill import restore
from chaos.drill.fault_types import (
    DNS_PHASES,
    LOSS_PHASES,
    PARTITION_PHASES,
    RESTART_PHASES,
    TRAFFIC_PHASES,
)
from chaos.drill.faults.oom_kill import hog_original
from chaos.drill.timeline import Incident
from chaos.results.summary import Summary

from support import (
    FAULTS,
    KindSession,
    cli,
    marked_pods,
    rules_by_address,
    rules_of_ours,
    run_drill,
    running_cli,
    stand_in_hog,
    vmstat_oom_kills,
    wait_for_record,
    wait_settled,
    write_drill,
)

pytestmark = [pytest.mark.e2e, pytest.mark.kind, pytest.mark.timeout(900)]

SECONDS = 5
"""packet_loss's and dns_block's durationSeconds (the shortest the spec takes)."""
CUT_SECONDS = 8
"""network_partition's: on kind the cut is in place 2-5 s after `injected` on 2 busy cores
(each entry into the pod's namespace is a `docker exec`), and `not_ready` must come before
`lifted`."""


def say(message: str) -> None:
    print(f"[kind faults] {message}", flush=True)


def probe(path: str = "/", timeout: float = 1.0) -> dict[str, Any]:
    """Through web from a prober pod (kind's Service range is not the host's to reach)."""
    return {"service": "web", "port": 80, "path": path, "ratePerSecond": 20,
            "timeoutSeconds": timeout, "from": "cluster"}


def drill(provider: Any, tmp_path: Path, fault: dict[str, Any], path: str = "/",
          timeout: float = 1.0) -> tuple[Summary, list[tuple[str, dict[str, list[str]]]]]:
    """One round of FAULT on web, probed through web; the summary, and the victim with the
    rules of ours on this machine as they were once it was injected."""
    seen: list[tuple[str, dict[str, list[str]]]] = []

    def listed(incident: Incident) -> None:
        seen.append((incident.target_pod, rules_by_address()))

    assert rules_of_ours() == {}
    spec = write_drill(tmp_path, fault, probe=probe(path, timeout),
                       slo={"maxRecoverySeconds": 60, "minAvailability": 0})
    summary = run_drill(provider, spec, tmp_path / "out", say=say, on_inject=listed)
    print(f"availability: {summary.availability}")
    assert summary.availability.requests > 0, "the prober pod probed web"
    return summary, seen


def in_victims_namespace(api: Any, seen: list[tuple[str, dict[str, list[str]]]],
                         check: Callable[[list[str]], bool]) -> None:
    """Once injected, one namespace on this machine held rules of ours: the victim's, whose pod
    IP it has, and CHECK holds for its rules."""
    [(victim, rules)] = seen
    [(address, lines)] = rules.items()
    print(f"{victim}: {lines}")
    pod = client.CoreV1Api(api).read_namespaced_pod(victim, "demo")
    assert address == pod.status.pod_ip
    assert check(lines), lines


def assert_nothing_left(api: Any) -> None:
    assert rules_of_ours() == {}
    assert marked_pods(api) == []


def test_network_partition(kind_web: Any, kind_up: KindSession, tmp_path: Path) -> None:
    summary, seen = drill(kind_up.provider, tmp_path,
                          {"type": "network_partition", "durationSeconds": CUT_SECONDS})
    assert summary.passed, summary.slo_checks
    [incident] = summary.incidents
    phases = incident.phases
    print(f"phases: {dict(phases)}")
    assert list(phases) == list(PARTITION_PHASES) and incident.ordered, phases
    assert CUT_SECONDS <= phases["lifted"] <= CUT_SECONDS + 1, phases
    assert incident.restart_count == 0, "the liveness probe got through: no restart"
    in_victims_namespace(kind_web, seen, lambda lines: "-A INPUT -j CHAOS-DRILL-PART" in lines
                         and "-A OUTPUT -j CHAOS-DRILL-PART-OUT" in lines)
    availability = summary.availability
    assert 0 < availability.failures < availability.requests, (
        "the requests the Service sent the cut-off pod failed, and only those")
    assert availability.http_errors == 0, "nothing answered for the cut-off pod"
    assert_nothing_left(kind_web)


def test_ctrl_c_lifts_the_cut(kind_web: Any, tmp_path: Path) -> None:
    assert rules_of_ours() == {}
    out = tmp_path / "out"
    spec = write_drill(tmp_path, {"type": "network_partition", "durationSeconds": 120},
                       probe=probe())
    with running_cli("run", str(spec), "--provider", "kind", "--out",
                     str(out)) as (proc, output):
        wait_for_record(out / "journal.jsonl", lambda r: r.event == "phase"
                        and r.get("phase") == "endpoint_removed", timeout=120)
        during = rules_of_ours()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=90)
    text = output.finish(30)
    print(f"rules while cut off: {during}")
    assert len(during) == 1, during
    assert code == 1, text
    assert_nothing_left(kind_web)
    wait_settled(kind_web, 3, timeout=90)


NETWORK_FAULTS = {
    "network_partition": ({"type": "network_partition", "durationSeconds": 120}, "cut off", 6),
    "packet_loss": ({"type": "packet_loss", "lossPercent": 50, "durationSeconds": 120},
                    "losing packets", 6),
    "dns_block": ({"type": "dns_block", "durationSeconds": 120}, "DNS blocked", 4),
}
"""Each network fault's drill, what a restore calls it, and the fewest iptables lines it writes
(two chains with their jumps, or one for dns_block's single nameserver)."""


def rules_in_place(least: int, timeout: float) -> dict[str, list[str]]:
    """Rules of ours in one namespace, at least LEAST lines of them, within TIMEOUT seconds (on
    kind each goes in through a `docker exec`); what was listed last."""
    deadline = time.monotonic() + timeout
    found = rules_by_address()
    while not (len(found) == 1 and len(next(iter(found.values()))) >= least):
        if time.monotonic() > deadline:
            pytest.fail(f"no {least} rule lines of ours in one namespace in {timeout}s: {found}")
        time.sleep(0.2)
        found = rules_by_address()
    return found


@pytest.mark.parametrize("fault", list(NETWORK_FAULTS))
def test_restore_lifts_the_rules_after_sigkill(fault: str, kind_web: Any, kind_up: KindSession,
                                               tmp_path: Path) -> None:
    """A drill killed outright leaves its rules; `restore` through another provider (the
    kubeconfig one, on the same cluster) skips them naming kind; `restore --provider kind`
    lifts them."""
    spec_fault, done, least = NETWORK_FAULTS[fault]
    assert rules_of_ours() == {}
    out = tmp_path / "out"
    spec = write_drill(tmp_path, spec_fault, probe=probe())
    with running_cli("run", str(spec), "--provider", "kind", "--out", str(out)):
        wait_for_record(out / "journal.jsonl", lambda r: r.event == "fault_injected",
                        timeout=120)
        rules_in_place(least, timeout=60)
        if fault == "network_partition":  # the whole cut is in once the pod left the Service
            wait_for_record(out / "journal.jsonl", lambda r: r.event == "phase"
                            and r.get("phase") == "endpoint_removed", timeout=120)
    left = rules_by_address()
    [victim] = marked_pods(kind_web)
    print(f"left by the killed run: {victim}: {left}")
    [(address, lines)] = left.items()
    assert len(lines) >= least and address == client.CoreV1Api(
        kind_web).read_namespaced_pod(victim, "demo").status.pod_ip, lines

    elsewhere = cli("restore", "--namespace", "demo", "--provider", "kubeconfig",
                    "--kubeconfig", str(kind_up.provider.kubeconfig()))
    assert elsewhere.returncode == 1, elsewhere.stderr
    [skipped] = [line for line in elsewhere.stderr.splitlines()
                 if f"skipped Pod demo/{victim}: {done} by {fault}" in line]
    assert skipped.endswith("on the kind provider, and only that provider can reach its network "
                            "namespace: run 'chaos-drill restore --provider kind' where that "
                            "cluster runs"), skipped
    assert rules_by_address() == left

    result = cli("restore", "--namespace", "demo", "--provider", "kind")
    assert result.returncode == 0, result.stderr
    assert f"restoring Pod demo/{victim}: {done} by {fault}" in result.stderr
    assert f"removed {len(lines)} iptables lines of ours from pod demo/{victim}" in result.stderr
    assert_nothing_left(kind_web)
    wait_settled(kind_web, 3, timeout=90)
    again = cli("restore", "--namespace", "demo", "--provider", "kind")
    assert "nothing left to restore" in again.stderr, again.stderr


def test_packet_loss(kind_web: Any, kind_up: KindSession, tmp_path: Path) -> None:
    summary, seen = drill(kind_up.provider, tmp_path,
                          {"type": "packet_loss", "lossPercent": 50, "durationSeconds": SECONDS})
    assert summary.passed, summary.slo_checks
    [incident] = summary.incidents
    phases = incident.phases
    print(f"phases: {dict(phases)}")
    assert [p for p in phases if p in LOSS_PHASES] == list(LOSS_PHASES) and incident.ordered
    assert SECONDS <= phases["lifted"] <= SECONDS + 1 and phases["ready"] >= phases["lifted"]
    assert incident.restart_count == 0
    in_victims_namespace(kind_web, seen, lambda lines: any(
        "CHAOS-DRILL-LOSS" in line and "--probability 0.5" in line for line in lines))
    # a lost packet waits for TCP's retransmission, at least 200 ms later
    slowest = summary.availability.latency_max_seconds
    assert slowest is not None and slowest >= 0.2, summary.availability
    assert_nothing_left(kind_web)


def test_dns_block(kind_web: Any, kind_up: KindSession, tmp_path: Path) -> None:
    """Requests through web's /cgi-bin/api (web calls api by name) fail on the blocked pod,
    with web's 502, while it stays Ready."""
    dns_ip = client.CoreV1Api(kind_web).read_namespaced_service(
        "kube-dns", "kube-system").spec.cluster_ip
    summary, seen = drill(kind_up.provider, tmp_path,
                          {"type": "dns_block", "durationSeconds": SECONDS},
                          path="/cgi-bin/api", timeout=3.0)
    assert summary.passed, summary.slo_checks
    [incident] = summary.incidents
    phases = incident.phases
    print(f"phases: {dict(phases)}")
    assert list(phases) == list(DNS_PHASES) and incident.ordered, phases
    assert incident.restart_count == 0
    in_victims_namespace(kind_web, seen, lambda lines: "-A OUTPUT -j CHAOS-DRILL-DNS" in lines
                         and f"-A CHAOS-DRILL-DNS -d {dns_ip}/32 -p udp -m udp --dport 53 "
                         "-j DROP" in lines)
    availability = summary.availability
    assert 0 < availability.failures == availability.http_errors, availability
    assert_nothing_left(kind_web)


def kernel_oom_kills(container_id: str) -> list[str]:
    """The kernel log's OOM kill lines whose cgroup is container CONTAINER_ID's."""
    log = subprocess.run(["dmesg"], capture_output=True, text=True, check=True, timeout=30)
    return [line for line in log.stdout.splitlines()
            if "oom-kill:" in line and container_id in line]


def test_oom_kill(kind_web: Any, kind_up: KindSession, tmp_path: Path) -> None:
    """The kernel OOM-kills the main process (its log names the container's cgroup) and the
    kubelet restarts it, in phase order. The API's reason is printed: on kind it may be Error
    rather than OOMKilled (docs/drills.md), so the kernel's log is the evidence checked, and
    the drill's own count of the kernel's kills must match it and /proc/vmstat's rise."""
    spec = write_drill(tmp_path, FAULTS["oom_kill"], probe=probe(),
                       slo={"maxRecoverySeconds": 30, "minAvailability": 0})
    counted = vmstat_oom_kills()
    summary = run_drill(kind_up.provider, spec, tmp_path / "out", say=say)
    kills_counted = vmstat_oom_kills() - counted
    print(f"availability: {summary.availability}")
    assert summary.passed, summary.slo_checks
    [incident] = summary.incidents
    own = [p for p in incident.phases if p not in TRAFFIC_PHASES]
    print(f"phases: {dict(incident.phases)}; exit reason {incident.exit_reason}; the kernel "
          f"OOM-killed {incident.kernel_oom_kills}")
    assert own == list(RESTART_PHASES) and incident.ordered, incident.phases
    status = client.CoreV1Api(kind_web).read_namespaced_pod(
        incident.target_pod, "demo").status.container_statuses[0]
    killed = status.last_state.terminated
    assert killed.reason == incident.exit_reason and killed.exit_code == 137, killed
    kills = kernel_oom_kills(killed.container_id.split("://", 1)[1])
    assert kills and "task=busybox" in kills[0], kills
    assert incident.kernel_oom_kills == kills_counted == len(kills), "as the kernel counts"
    seen = dockerd.run("exec", incident.node, "sh", "-c", "journalctl -u containerd --since "
                       "-2min --no-pager | grep -i oom || true", timeout=30)
    print(f"the node's containerd on OOM: {seen.strip() or 'nothing'}")
    assert summary.availability.requests > 0
    assert marked_pods(kind_web) == []


def hog_left(node: str, pid: int) -> bool:
    """Whether a live process PID (as the node's /proc numbers it) still runs in NODE."""
    state = dockerd.run("exec", node, "sh", "-c", f"cut -d ' ' -f 3 /proc/{pid}/stat 2>/dev/null "
                        "|| true", timeout=30).strip()
    return state not in ("", "Z")


@pytest.mark.parametrize("fault", ["packet_loss", "dns_block", "oom_kill"])
def test_ctrl_c_restores_what_the_fault_changed(fault: str, kind_web: Any,
                                                tmp_path: Path) -> None:
    """Ctrl-C right after the injection: packet_loss's and dns_block's rules are lifted,
    oom_kill's hog (run in the node's container) is killed; nothing of ours is left on any pod,
    exit 1."""
    assert rules_of_ours() == {}
    out = tmp_path / "out"
    spec = write_drill(tmp_path, {"packet_loss": {"type": "packet_loss", "lossPercent": 50,
                                                  "durationSeconds": 60},
                                  "dns_block": {"type": "dns_block", "durationSeconds": 60},
                                  "oom_kill": FAULTS["oom_kill"]}[fault],
                       rounds=3, intervalSeconds=2, probe=probe())
    with running_cli("run", str(spec), "--provider", "kind", "--out",
                     str(out)) as (proc, output):
        injected = wait_for_record(out / "journal.jsonl",
                                   lambda r: r.event == "fault_injected", timeout=120)
        if fault == "oom_kill":
            said = output.wait_for("started a memory hog (pid ", timeout=60)
        during = rules_of_ours()
        deadline = time.monotonic() + 60  # on kind each rule goes in through a `docker exec`
        while fault != "oom_kill" and not during and time.monotonic() < deadline:
            time.sleep(0.2)
            during = rules_of_ours()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=90)
    text = output.finish(30)
    assert code == 1, text
    assert "SIGINT: stopping" in text, text
    if fault != "oom_kill":
        assert len(during) == 1, during
    else:
        pid = int(said.split("started a memory hog (pid ", 1)[1].split(")", 1)[0])
        assert not hog_left(injected.get("node"), pid), f"hog pid {pid} left running"
    assert_nothing_left(kind_web)
    wait_settled(kind_web, 3, timeout=120)


def test_restore_kills_a_hog_left_by_a_killed_oom_drill(kind_web: Any, kind_up: KindSession
                                                        ) -> None:
    """What an oom_kill drill killed outright leaves when its hog outlives it: a hog process in
    the node's container and the record on its pod. `restore` through another provider skips
    it naming kind; `restore --provider kind` kills that very process and clears the record."""
    wait_settled(kind_web, 3, timeout=120)
    core = client.CoreV1Api(kind_web)
    pod = core.list_namespaced_pod("demo", label_selector="app=web").items[0]
    container = str(pod.status.container_statuses[0].container_id).split("://", 1)[1]
    node = pod.spec.node_name
    hog, launcher = stand_in_hog(node_access.in_node_container(node), container)
    try:
        record = restore.Record("0ddba11", "oom_kill", hog_original("kind", hog), "laptop", 1,
                                "2026-01-01T00:00:00+00:00", "demo/chaos-drill-run-0ddba11")
        restore.mark_pod(kind_web, pod.metadata.name, "demo", record)
        assert hog_left(node, hog.pid)
        elsewhere = cli("restore", "--namespace", "demo", "--provider", "kubeconfig",
                        "--kubeconfig", str(kind_up.provider.kubeconfig()))
        assert elsewhere.returncode == 1, elsewhere.stderr
        assert (f"skipped Pod demo/{pod.metadata.name}: its memory hog (pid {hog.pid} on node "
                f"{node}) was started by oom_kill run 0ddba11 on the kind provider") \
            in elsewhere.stderr, elsewhere.stderr
        assert hog_left(node, hog.pid)
        done = cli("restore", "--namespace", "demo", "--provider", "kind")
        assert done.returncode == 0, done.stderr
        assert f"killed memory hog pid {hog.pid} on node {node}" in done.stderr, done.stderr
        assert not hog_left(node, hog.pid)
        annotations = core.read_namespaced_pod(pod.metadata.name, "demo").metadata.annotations
        assert restore.ANNOTATION not in (annotations or {})
    finally:
        if hog_left(node, hog.pid):
            dockerd.run("exec", node, "sh", "-c", f"kill -9 -{hog.pid} 2>/dev/null || :",
                        timeout=30)
        launcher.wait(timeout=30)
