"""The local cluster's address plan: each node hands out pod IPs from its own slice of the pod
range, never the bridge's gateway, and the service range is apart from the pod range."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from chaos.cluster import layout, network

POD_NET = ipaddress.ip_network(network.POD_CIDR)
NODES = range(1, layout.NODE_COUNT + 1)


def addresses(index: int) -> set[ipaddress.IPv4Address]:
    start, end = (ipaddress.IPv4Address(a) for a in network.node_range(index))
    assert start <= end
    return {ipaddress.IPv4Address(i) for i in range(int(start), int(end) + 1)}


def bridge(config: dict[str, Any]) -> dict[str, Any]:
    (plugin,) = config["plugins"]
    assert isinstance(plugin, dict)
    return plugin


def ipam(config: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = bridge(config)["ipam"]
    return result


def test_node_range_is_the_nodes_own_slash_24() -> None:
    assert network.node_range(1) == ("10.244.1.2", "10.244.1.254")
    assert network.node_range(2) == ("10.244.2.2", "10.244.2.254")


@pytest.mark.parametrize("index", [*NODES, 254])
def test_node_range_stays_inside_the_pod_range(index: int) -> None:
    found = addresses(index)
    assert all(a in POD_NET for a in found)
    assert ipaddress.IPv4Address(network.GATEWAY) not in found
    assert len(found) == 253


def test_node_ranges_do_not_overlap() -> None:
    seen: set[ipaddress.IPv4Address] = set()
    for index in [*NODES, 3, 254]:
        found = addresses(index)
        assert not found & seen, f"node {index} overlaps an earlier node"
        seen |= found


def test_pod_and_service_ranges_are_apart() -> None:
    assert not POD_NET.overlaps(ipaddress.ip_network(network.SERVICE_CIDR))
    assert ipaddress.IPv4Address(network.GATEWAY) in POD_NET


@pytest.mark.parametrize("index", NODES)
def test_cni_config_uses_the_bridge_and_the_nodes_range(index: int, tmp_path: Path) -> None:
    config = network.cni_config(index, tmp_path / f"node-{index}")
    plugin = bridge(config)
    assert plugin["type"] == "bridge" and plugin["bridge"] == network.BRIDGE
    assert plugin["isGateway"] is True and plugin["ipMasq"] is False
    (subnet,) = ipam(config)["ranges"][0]
    start, end = network.node_range(index)
    assert subnet == {"subnet": network.POD_CIDR, "rangeStart": start, "rangeEnd": end,
                      "gateway": network.GATEWAY}
    assert ipam(config)["dataDir"] == str(tmp_path / f"node-{index}" / "ipam")


def test_cni_configs_keep_separate_ipam_stores(tmp_path: Path) -> None:
    """host-local tracks leases in dataDir: a shared one would let nodes reuse each other's."""
    stores = {ipam(network.cni_config(i, tmp_path / f"node-{i}"))["dataDir"] for i in NODES}
    assert len(stores) == len(NODES)
