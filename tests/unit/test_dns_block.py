"""dns_block: the rules it writes and removes, the nameservers it blocks, where it is refused
and its restore records (how a pod that stayed ready is followed: test_partition.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chaos.cluster.incluster import InClusterProvider
from chaos.cluster.kube import Workload
from chaos.cluster.kubeconfig import KubeconfigCluster
from chaos.cluster.local import LocalCluster
from chaos.drill import partition, restore
from chaos.drill.fault_types import fault_type
from chaos.drill.faults import FaultContext
from chaos.drill.faults.dns_block import DnsBlock, nameservers
from chaos.drill.loading import load_drill
from chaos.drill.targeting import PodInfo
from chaos.errors import FaultError, RestoreError

from support import REPO, StandInNamespace, pod

DRILL = REPO / "manifests/drills/web-dns-block.yaml"
LISTING = """-P INPUT ACCEPT
-P OUTPUT ACCEPT
-N CHAOS-DRILL-DNS
-A OUTPUT -j CHAOS-DRILL-DNS
-A OUTPUT -d 10.0.0.9/32 -j ACCEPT
-A CHAOS-DRILL-DNS -d 10.96.0.10/32 -p udp -m udp --dport 53 -j DROP
-A CHAOS-DRILL-DNS -d 10.96.0.10/32 -p tcp -m tcp --dport 53 -j DROP
"""


def test_only_dns_to_the_nameservers_is_dropped_in_a_chain_hooked_first_in_output() -> None:
    commands = [" ".join(c) for c in partition.dns_block_commands(["10.96.0.10", "10.0.0.53"])]
    assert commands == [
        "iptables -w 5 -N CHAOS-DRILL-DNS",
        "iptables -w 5 -A CHAOS-DRILL-DNS -d 10.96.0.10 -p udp --dport 53 -j DROP",
        "iptables -w 5 -A CHAOS-DRILL-DNS -d 10.96.0.10 -p tcp --dport 53 -j DROP",
        "iptables -w 5 -A CHAOS-DRILL-DNS -d 10.0.0.53 -p udp --dport 53 -j DROP",
        "iptables -w 5 -A CHAOS-DRILL-DNS -d 10.0.0.53 -p tcp --dport 53 -j DROP",
        "iptables -w 5 -I OUTPUT 1 -j CHAOS-DRILL-DNS",
    ]
    assert not any("INPUT" in c for c in commands), "answers are never touched"


def test_lifting_removes_the_dns_chain_and_its_jump_only() -> None:
    assert [" ".join(c[3:]) for c in partition.lift_commands(LISTING)] == [
        "-D OUTPUT -j CHAOS-DRILL-DNS",
        "-F CHAOS-DRILL-DNS",
        "-X CHAOS-DRILL-DNS",
    ]
    assert len(partition.ours(LISTING)) == 4
    assert "-A OUTPUT -d 10.0.0.9/32 -j ACCEPT" not in partition.ours(LISTING)


def test_blocking_lifts_what_an_earlier_cut_left_first(tmp_path: Path) -> None:
    namespace = StandInNamespace(tmp_path, LISTING)
    said = partition.block_dns(namespace, ["10.96.0.10"])
    assert said == "dropping its DNS queries (udp and tcp port 53) to 10.96.0.10"
    ran = namespace.calls()
    assert ran.index("-X CHAOS-DRILL-DNS") < ran.index("-N CHAOS-DRILL-DNS")
    assert ran[-1] == "-I OUTPUT 1 -j CHAOS-DRILL-DNS"


def cluster_dns(calls: list[int]) -> Callable[[], str]:
    def read() -> str:
        calls.append(1)
        return "10.96.0.10"
    return read


def test_the_nameservers_are_the_cluster_dns_then_the_pods_own() -> None:
    calls: list[int] = []
    assert nameservers("demo/web-a", {}, cluster_dns(calls)) == ["10.96.0.10"]
    extra = {"dnsPolicy": "ClusterFirst", "dnsConfig": {"nameservers": ["10.0.0.53", "10.96.0.10"]}}
    assert nameservers("demo/web-a", extra, cluster_dns(calls)) == ["10.96.0.10", "10.0.0.53"]
    calls.clear()
    own = {"dnsPolicy": "None", "dnsConfig": {"nameservers": ["10.0.0.53"]}}
    assert nameservers("demo/web-a", own, cluster_dns(calls)) == ["10.0.0.53"]
    assert calls == [], "the cluster DNS is not read for a pod that does not use it"


def test_a_pod_off_the_cluster_dns_is_refused_in_one_line() -> None:
    with pytest.raises(FaultError) as caught:
        nameservers("demo/web-a", {"dnsPolicy": "Default"}, cluster_dns([]))
    assert str(caught.value) == (
        "dns_block cannot block pod demo/web-a's DNS: its dnsPolicy is Default (its node's "
        "resolver, not the cluster DNS); target pods with dnsPolicy ClusterFirst")
    with pytest.raises(FaultError, match="no nameserver"):
        nameservers("demo/web-a", {"dnsPolicy": "None"}, cluster_dns([]))


def test_a_pod_with_an_ipv6_nameserver_is_refused_rather_than_left_half_blocked() -> None:
    v6 = {"dnsPolicy": "ClusterFirst", "dnsConfig": {"nameservers": ["fd00::53"]}}
    with pytest.raises(FaultError) as caught:
        nameservers("demo/web-a", v6, cluster_dns([]))
    assert str(caught.value) == (
        "dns_block cannot block pod demo/web-a's DNS: its nameserver fd00::53 is IPv6 and its "
        "rules are IPv4 (iptables) only; target pods whose nameservers are all IPv4")


def context(pods: dict[str, dict[str, Any]]) -> FaultContext:
    workload = Workload("Deployment", "web", "demo", {"app": "web"})
    return FaultContext(None, LocalCluster(), load_drill(DRILL), workload, print, pods)


def test_targets_find_each_victims_nameservers_and_refuse_a_host_network_pod() -> None:
    own = pod("a")
    own["spec"].update(dnsPolicy="None", dnsConfig={"nameservers": ["10.0.0.53"]})
    fault = DnsBlock()
    [target] = fault.targets(context({"a": own}), [PodInfo.from_dict(own)])
    assert target.pod is not None and fault.servers == {"a": ["10.0.0.53"]}
    on_node = pod("b")
    on_node["spec"]["hostNetwork"] = True
    with pytest.raises(FaultError) as caught:
        DnsBlock().targets(context({"b": on_node}), [PodInfo.from_dict(on_node)])
    assert str(caught.value) == (
        "dns_block cannot act on pod demo/web-b: it uses hostNetwork, so its network namespace "
        "is node node-1's; target pods with a network of their own")


def test_it_is_refused_where_no_pod_network_is_reachable() -> None:
    dns_block = fault_type("dns_block")
    with pytest.raises(FaultError) as caught:
        dns_block.check_provider(KubeconfigCluster())
    assert str(caught.value) == (
        "dns_block needs root in a pod's network namespace on its node, which the kubeconfig "
        "provider lacks: use pod_delete")
    with pytest.raises(FaultError, match="^dns_block needs .* which the in-cluster provider"):
        dns_block.check_provider(InClusterProvider())
    dns_block.check_provider(LocalCluster())


def test_its_pods_are_restored_through_the_provider_that_blocked_them() -> None:
    data = {"run": "abc", "fault": "dns_block", "original": "local", "host": "h", "pid": 1,
            "at": "t"}
    record = restore.Record.parse(json.dumps(data), "Pod")
    assert "dns_block" in restore.CUT_OFF
    left = restore.Leftover(restore.PARTITIONED_POD, "web-1", "demo", record)
    with pytest.raises(RestoreError, match="only that provider can reach its network namespace"):
        restore.undo(None, left, provider=None)
    with pytest.raises(RestoreError, match="not the provider that cut it off"):
        restore.Record.parse(json.dumps({**data, "original": None}), "Pod")


def test_the_example_drill_probes_through_web_to_api() -> None:
    drill = load_drill(DRILL)
    assert drill.fault.type == "dns_block" and drill.fault.duration_seconds == 10
    assert drill.probe is not None and drill.probe.path == "/cgi-bin/api"
    assert drill.probe.timeout_seconds > 2, "longer than web's own 2 s call to api: a 502"
