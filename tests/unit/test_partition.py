"""network_partition: the iptables rules it writes and removes, its restore records, how its
incidents are followed, and where it is refused."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from chaos.cluster.kubeconfig import KubeconfigCluster
from chaos.drill import partition, restore
from chaos.drill.fault_types import fault_type
from chaos.drill.loading import load_drill
from chaos.drill.timeline import Incident
from chaos.errors import FaultError, RestoreError, SpecError
from chaos.observe.tracker import Tracker

from support import REPO, StandInNamespace, pod

WEB = {
    "spec": {
        "containers": [
            {
                "name": "web",
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
            }
        ]
    }
}

LISTING = """-P INPUT ACCEPT
-P FORWARD ACCEPT
-P OUTPUT ACCEPT
-N CHAOS-DRILL-PART
-N CHAOS-DRILL-PART-OUT
-A INPUT -j CHAOS-DRILL-PART
-A INPUT -j CHAOS-DRILL-PART
-A OUTPUT -j CHAOS-DRILL-PART-OUT
-A CHAOS-DRILL-PART -i lo -j RETURN
-A CHAOS-DRILL-PART -j DROP
-A CHAOS-DRILL-PART-OUT -o lo -j RETURN
-A CHAOS-DRILL-PART-OUT -j DROP
-A OUTPUT -d 10.0.0.9/32 -j ACCEPT
"""


def test_the_liveness_probe_of_the_sample_app_is_let_through_by_path() -> None:
    liveness = partition.liveness_of(WEB, None, ["10.88.0.1", "10.88.0.1"])
    assert liveness == partition.Liveness(("10.88.0.1",), 8080, "/healthz")
    commands = [" ".join(c) for c in partition.cut_commands(liveness)]
    assert commands[0] == "iptables -w 5 -N CHAOS-DRILL-PART"
    assert (
        "iptables -w 5 -A CHAOS-DRILL-PART -s 10.88.0.1 -p tcp --dport 8080 -m string "
        "--algo bm --string GET /healthz  -j RETURN"
    ) in commands
    assert "iptables -w 5 -I INPUT 1 -j CHAOS-DRILL-PART" in commands
    assert "iptables -w 5 -I OUTPUT 1 -j CHAOS-DRILL-PART-OUT" in commands
    # each chain ends in DROP, right before its jump is hooked in
    for chain in (partition.CHAIN_IN, partition.CHAIN_OUT):
        drop = commands.index(f"iptables -w 5 -A {chain} -j DROP")
        assert commands[drop + 1].endswith(f"-j {chain}")


def test_with_probes_dropped_or_no_liveness_only_loopback_passes() -> None:
    assert partition.liveness_of(WEB, None, []) is None
    exec_probe = {"spec": {"containers": [{"name": "a", "livenessProbe": {"exec": {}}}]}}
    assert partition.liveness_of(exec_probe, None, ["10.0.0.1"]) is None
    commands = partition.cut_commands(None)
    returns = [c for c in commands if c[-1] == "RETURN"]
    assert [c[5:7] for c in returns] == [["-i", "lo"], ["-o", "lo"]]


def test_the_gateway_is_where_the_kubelet_probes_from() -> None:
    assert partition.gateway("default via 10.88.0.1 dev eth0 \n") == ["10.88.0.1"]
    assert partition.gateway("") == []


def test_lifting_removes_exactly_our_rules_even_a_jump_hooked_twice() -> None:
    commands = [" ".join(c[3:]) for c in partition.lift_commands(LISTING)]
    assert commands == [
        "-D INPUT -j CHAOS-DRILL-PART",
        "-D INPUT -j CHAOS-DRILL-PART",
        "-D OUTPUT -j CHAOS-DRILL-PART-OUT",
        "-F CHAOS-DRILL-PART",
        "-X CHAOS-DRILL-PART",
        "-F CHAOS-DRILL-PART-OUT",
        "-X CHAOS-DRILL-PART-OUT",
    ]
    assert "-A OUTPUT -d 10.0.0.9/32 -j ACCEPT" not in partition.ours(LISTING)
    assert len(partition.ours(LISTING)) == 9
    assert partition.lift_commands("-P INPUT ACCEPT\n") == []


def test_a_cut_enters_the_namespace_once_per_batch(tmp_path: Path) -> None:
    """Lifting what was left, the default route, the cut: each batch of rules is one entry (on
    kind each is a `docker exec`), its commands run in order with their arguments whole."""
    namespace = StandInNamespace(tmp_path, LISTING)
    entries: list[str] = []

    def run(command: Any) -> str:
        entries.append(command[0])
        return "" if command[0] == "ip" else namespace(command)

    said = partition.cut(run, WEB, None, False)
    assert said == "dropping all its traffic"  # no default route in this stand-in
    assert entries == ["iptables", "sh", "ip", "sh"]
    lifted = [" ".join(c[3:]) for c in partition.lift_commands(LISTING)]
    cut = [" ".join(c[3:]) for c in partition.cut_commands(None)]
    assert namespace.calls() == ["-S", *lifted, *cut]


def test_a_batch_stops_at_the_first_command_that_fails_and_names_it(tmp_path: Path) -> None:
    liveness = partition.Liveness(("10.244.1.1",), 8080, "/healthz")
    commands = partition.cut_commands(liveness)
    namespace = StandInNamespace(tmp_path, fail="-w 5 -N CHAOS-DRILL-PART-OUT")
    with pytest.raises(RuntimeError) as failed:
        partition.run_all(namespace, commands)
    assert str(failed.value) == ("iptables -w 5 -N CHAOS-DRILL-PART-OUT: iptables: "
                                 "CHAOS-DRILL-PART-OUT says no")
    wanted = [" ".join(c[3:]) for c in commands]
    assert namespace.calls() == wanted[:wanted.index("-N CHAOS-DRILL-PART-OUT") + 1]
    assert "-A CHAOS-DRILL-PART -s 10.244.1.1 -p tcp --dport 8080 -m string --algo bm " \
           "--string GET /healthz  -j RETURN" in namespace.calls(), "the path's space is kept"


def record_text(**fields: Any) -> str:
    data = {
        "run": "abc",
        "fault": "network_partition",
        "original": "local",
        "host": "h",
        "pid": 1,
        "at": "t",
        **fields,
    }
    return json.dumps(data)


def test_a_cut_off_pod_is_its_own_kind_of_leftover_undone_by_its_provider() -> None:
    record = restore.Record.parse(record_text(), "Pod")
    left = restore.Leftover(restore.PARTITIONED_POD, "web-1", "demo", record)
    assert left.describe().startswith("Pod demo/web-1: cut off by network_partition run abc")
    with pytest.raises(RestoreError) as caught:
        restore.undo(None, left, provider=None)
    assert str(caught.value) == (
        "skipped Pod demo/web-1: cut off by network_partition run abc on the local provider, "
        "and only that provider can reach its network namespace: run 'chaos-drill restore "
        "--provider local' where that cluster runs"
    )
    with pytest.raises(RestoreError, match="not the provider that cut it off"):
        restore.Record.parse(record_text(original=None), "Pod")


@pytest.mark.parametrize(("fault", "done"), [("network_partition", "cut off"),
                                             ("packet_loss", "losing packets"),
                                             ("dns_block", "DNS blocked")])
def test_a_restore_names_what_each_network_fault_did(fault: str, done: str) -> None:
    record = restore.Record.parse(record_text(fault=fault), "Pod")
    left = restore.Leftover(restore.PARTITIONED_POD, "web-1", "demo", record)
    assert left.describe().startswith(f"Pod demo/web-1: {done} by {fault} run abc")


def test_a_cut_off_pod_is_followed_until_lifted_ready_and_in_rotation() -> None:
    seen: list[str] = []
    tracker = Tracker(on_phase=lambda inc, phase, mono, api: seen.append(phase), service="web")
    tracker.pod_event("LISTED", pod("a"), 0.0)
    endpoint = {"targetRef": {"kind": "Pod", "uid": "a"}, "conditions": {"ready": True}}
    ready_slice = {"metadata": {"uid": "s"}, "endpoints": [endpoint]}
    not_ready = {
        "metadata": {"uid": "s"},
        "endpoints": [{**endpoint, "conditions": {"ready": False}}],
    }
    tracker.slice_event("LISTED", ready_slice, 0.0)
    incident = Incident("r1-i1", 1, "network_partition", "demo", "web", "web-a", "a")
    incident.mark("injected", 10.0, datetime.fromisoformat("2026-01-01T00:00:00.5+00:00"))
    tracker.follow(incident, incident.follow)
    tracker.pod_event("MODIFIED", pod("a", ready=False), 11.0)
    tracker.slice_event("MODIFIED", not_ready, 11.01)
    tracker.pod_event("MODIFIED", pod("a"), 12.0)  # Ready before the lift does not count
    assert "ready" not in incident.phases
    tracker.mark(incident, "lifted", 20.0)
    tracker.pod_event("MODIFIED", pod("a"), 21.0)
    assert not incident.settled
    tracker.slice_event("MODIFIED", ready_slice, 21.01)
    assert seen == ["not_ready", "endpoint_removed", "lifted", "ready", "endpoint_added"]
    assert incident.settled and incident.is_ordered()
    assert incident.recovery_seconds == 11.0


def test_it_is_refused_without_a_pod_network_and_without_a_probe(tmp_path: Path) -> None:
    with pytest.raises(FaultError) as caught:
        fault_type("network_partition").check_provider(KubeconfigCluster())
    assert str(caught.value) == (
        "network_partition needs root in a pod's network namespace on its node, which the "
        "kubeconfig provider lacks: use liveness_break"
    )
    drill = (REPO / "manifests/drills/web-network-partition.yaml").read_text()
    path = tmp_path / "drill.yaml"
    path.write_text(
        drill.replace(
            "  probe: {service: web, port: 80, path: /, ratePerSecond: 20}\n", ""
        ).replace(", minAvailability: 0.95", "")
    )
    with pytest.raises(SpecError, match="network_partition needs spec.probe"):
        load_drill(path)
    assert (
        load_drill(REPO / "manifests/drills/web-network-partition.yaml").fault.duration_seconds
        == 10
    )


def test_packet_loss_drops_a_share_at_random_in_chains_of_its_own() -> None:
    liveness = partition.liveness_of(WEB, None, ["10.88.0.1"])
    commands = [" ".join(c) for c in partition.cut_commands(liveness, 0.3)]
    assert (
        "iptables -w 5 -A CHAOS-DRILL-LOSS -m statistic --mode random --probability 0.3000 "
        "-j DROP" in commands
    )
    assert "iptables -w 5 -I OUTPUT 1 -j CHAOS-DRILL-LOSS-OUT" in commands
    assert not any("CHAOS-DRILL-PART" in c for c in commands)
    listing = "-N CHAOS-DRILL-LOSS\n-A INPUT -j CHAOS-DRILL-LOSS\n-A CHAOS-DRILL-LOSS -j DROP\n"
    assert [" ".join(c[3:]) for c in partition.lift_commands(listing)] == [
        "-D INPUT -j CHAOS-DRILL-LOSS",
        "-F CHAOS-DRILL-LOSS",
        "-X CHAOS-DRILL-LOSS",
    ]
    record = restore.Record.parse(record_text(fault="packet_loss"), "Pod")
    found = restore.Findings()
    restore._sort("Pod", [_pod_with(record.to_json())], found)
    assert found.leftovers[0].kind == restore.PARTITIONED_POD


def _pod_with(annotation: str) -> Any:
    class Meta:
        name, namespace = "web-1", "demo"
        labels: dict[str, str] = {}
        annotations = {restore.ANNOTATION: annotation}

    class Obj:
        metadata = Meta()

    return Obj()


@pytest.mark.parametrize("fault", ["packet_loss", "dns_block"])
def test_a_pod_that_stayed_ready_through_the_fault_is_ready_once_lifted(fault: str) -> None:
    seen: list[str] = []
    tracker = Tracker(on_phase=lambda inc, phase, mono, api: seen.append(phase))
    tracker.pod_event("LISTED", pod("a"), 0.0)
    incident = Incident("r1-i1", 1, fault, "demo", "web", "web-a", "a")
    incident.mark("injected", 10.0)
    tracker.follow(incident, incident.follow)
    tracker.pod_event("MODIFIED", pod("a"), 12.0)
    assert seen == [], "Ready before the lift does not count"
    tracker.mark(incident, "lifted", 20.0)
    assert seen == ["lifted", "ready"] and incident.recovery_seconds == 10.0
    assert incident.api_times.get("ready") is None
