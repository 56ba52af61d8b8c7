"""Overlap checks on sample `ip -json -4 route` and `ip -json -4 addr` output: a route or address
of the host holding part of a range a provider adds is found (with the line naming it and the
command removing it); the default route and the provider's own bridge are not."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chaos.cluster import local_checks, network, routes
from chaos.cluster.routes import Clash
from chaos.errors import SetupError

ROUTES: list[dict[str, Any]] = json.loads("""[
 {"dst":"default","gateway":"192.0.2.1","dev":"eth0","flags":[]},
 {"dst":"192.0.2.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"192.0.2.2",
  "flags":[]},
 {"dst":"172.30.0.0/24","dev":"cdrill-kind","protocol":"kernel","scope":"link",
  "prefsrc":"172.30.0.1","flags":["linkdown"]},
 {"dst":"172.16.0.0/12","dev":"tun0","scope":"link","flags":[]}
]""")
LINKS: list[dict[str, Any]] = json.loads("""[
 {"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"addr_info":[
  {"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo"}]},
 {"ifindex":4,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"addr_info":[
  {"family":"inet","local":"192.0.2.2","prefixlen":24,"broadcast":"192.0.2.255",
   "scope":"global","label":"eth0"}]}
]""")
LOCAL_RANGES = (network.SERVICE_CIDR, network.POD_CIDR)


def test_a_route_overlapping_the_kind_subnet_is_found_but_not_our_own_bridge() -> None:
    assert routes.route_clash("172.30.0.0/24", ROUTES, own="cdrill-kind") == Clash(
        "172.30.0.0/24", "172.16.0.0/12 dev tun0 scope link", "ip route del 172.16.0.0/12 dev tun0")
    assert routes.route_clash("172.30.0.0/24", ROUTES[:3], own="cdrill-kind") is None
    assert routes.route_clash("192.0.2.128/25", ROUTES, own="cdrill-kind") == Clash(
        "192.0.2.128/25", "192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.2",
        "ip route del 192.0.2.0/24 dev eth0")
    assert routes.route_clash("10.0.0.0/8", ROUTES, own="x") is None, "the default route is none"


def test_a_plain_host_clashes_with_nothing_the_local_cluster_adds() -> None:
    assert routes.find_clash(LOCAL_RANGES, ROUTES, LINKS, own=network.BRIDGE) is None


def test_a_route_on_the_service_range_is_found_as_ip_prints_it() -> None:
    """The route of the e2e test: on a bridge with no port yet, so the kernel marks it linkdown."""
    vpn = {"dst": "10.96.0.0/12", "dev": "cdrill-test1", "scope": "link", "flags": ["linkdown"]}
    assert routes.find_clash(LOCAL_RANGES, [*ROUTES, vpn], LINKS, own=network.BRIDGE) == Clash(
        "10.96.0.0/12", "10.96.0.0/12 dev cdrill-test1 scope link linkdown",
        "ip route del 10.96.0.0/12 dev cdrill-test1")


@pytest.mark.parametrize("route, held, remove", [
    ({"dst": "10.100.0.0/16", "gateway": "192.0.2.9", "dev": "eth0", "metric": 50, "flags": []},
     "10.100.0.0/16 via 192.0.2.9 dev eth0 metric 50", "ip route del 10.100.0.0/16 dev eth0"),
    ({"dst": "10.0.0.0/8", "dev": "wg0", "scope": "link", "flags": []},
     "10.0.0.0/8 dev wg0 scope link", "ip route del 10.0.0.0/8 dev wg0"),
    ({"type": "blackhole", "dst": "10.96.0.0/12", "flags": []},
     "blackhole 10.96.0.0/12", "ip route del blackhole 10.96.0.0/12"),
    ({"type": "unreachable", "dst": "10.244.7.0/24", "flags": []},
     "unreachable 10.244.7.0/24", "ip route del unreachable 10.244.7.0/24"),
    ({"dst": "10.96.0.10", "dev": "tun0", "scope": "link", "flags": []},
     "10.96.0.10 dev tun0 scope link", "ip route del 10.96.0.10 dev tun0"),
], ids=["inside", "around", "blackhole", "unreachable", "one-address"])
def test_any_route_overlapping_a_range_is_a_clash(route: dict[str, Any], held: str,
                                                 remove: str) -> None:
    found = routes.find_clash(LOCAL_RANGES, [*ROUTES, route], LINKS, own=network.BRIDGE)
    assert found is not None and (found.held, found.remove) == (held, remove)


def test_our_own_bridge_left_from_an_earlier_run_is_no_clash() -> None:
    """A crashed cluster's bridge, its address and its service route: up cleans them away."""
    ours = [{"dst": "10.96.0.0/12", "dev": network.BRIDGE, "scope": "link", "flags": []},
            {"dst": "10.244.0.0/16", "dev": network.BRIDGE, "protocol": "kernel",
             "scope": "link", "prefsrc": "10.244.0.1", "flags": ["linkdown"]}]
    bridge = {"ifindex": 9, "ifname": network.BRIDGE, "addr_info": [
        {"family": "inet", "local": "10.244.0.1", "prefixlen": 16}]}
    assert routes.find_clash(LOCAL_RANGES, [*ROUTES, *ours], [*LINKS, bridge],
                             own=network.BRIDGE) is None


def test_an_address_without_a_route_is_a_clash() -> None:
    """A /32 (another cluster's kube-ipvs0, a VPN's address) makes no route in main."""
    ipvs = {"ifindex": 7, "ifname": "kube-ipvs0", "addr_info": [
        {"family": "inet", "local": "10.96.0.1", "prefixlen": 32}]}
    assert routes.find_clash(LOCAL_RANGES, ROUTES, [*LINKS, ipvs], own=network.BRIDGE) == Clash(
        "10.96.0.0/12", "address 10.96.0.1/32 on kube-ipvs0",
        "ip addr del 10.96.0.1/32 dev kube-ipvs0")


def test_the_pod_range_is_checked_too() -> None:
    lan = {"ifindex": 5, "ifname": "eth1", "addr_info": [
        {"family": "inet", "local": "10.244.3.7", "prefixlen": 24}]}
    found = routes.find_clash(LOCAL_RANGES, ROUTES, [*LINKS, lan], own=network.BRIDGE)
    assert found is not None and found.wanted == network.POD_CIDR


def test_output_that_is_not_ip_json_is_refused_naming_the_command() -> None:
    assert routes.parse_ip_json("", "ip -json -4 route") == []
    with pytest.raises(SetupError, match=r"^cannot read the output of 'ip -json -4 route': "):
        routes.parse_ip_json("default via 192.0.2.1 dev eth0", "ip -json -4 route")


def test_the_local_cluster_refuses_in_one_line_naming_the_route_and_the_fix(
        monkeypatch: pytest.MonkeyPatch) -> None:
    vpn = {"dst": "10.96.0.0/12", "dev": "wg0", "scope": "link", "flags": []}
    monkeypatch.setattr(routes, "_ip_json",
                        lambda what: [*ROUTES, vpn] if what == "route" else LINKS)
    with pytest.raises(SetupError) as refused:
        local_checks.preflight_ranges()
    assert str(refused.value) == (
        "the local cluster's service range 10.96.0.0/12 is taken on this host (10.96.0.0/12 dev "
        "wg0 scope link): remove it ('sudo ip route del 10.96.0.0/12 dev wg0'), or use "
        "--provider kind (the local cluster's ranges are fixed)")
