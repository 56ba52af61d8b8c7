"""Whether this host already holds an address range a provider is about to add: a route or an
address of its own (`ip -json -4 route`, `ip -json -4 addr`) overlapping it, leaving out the
default route and the provider's own bridge. Both providers refuse to start on a clash: their
routes would replace the host's, and `down` would then delete them."""

from __future__ import annotations

import ipaddress
import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chaos.errors import SetupError

ROUTE_FIELDS = (("gateway", "via"), ("dev", "dev"), ("protocol", "proto"), ("scope", "scope"),
                ("prefsrc", "src"), ("metric", "metric"))
"""The fields of a route as `ip route` prints them, in its order, with its words."""


@dataclass(frozen=True)
class Clash:
    """A range a provider wants, the route or address on the host that holds part of it (as `ip`
    prints it), and the command that removes that one."""

    wanted: str
    held: str
    remove: str


def describe_route(route: Mapping[str, Any]) -> str:
    """One route of `ip -json route` as `ip route` prints it."""
    words = [] if route.get("type", "unicast") == "unicast" else [str(route["type"])]
    words.append(str(route.get("dst", "")))
    for field, word in ROUTE_FIELDS:
        if field in route:
            words += [word, str(route[field])]
    return " ".join(words + [str(flag) for flag in route.get("flags", [])])


def _remove_route(route: Mapping[str, Any]) -> str:
    kind = route.get("type", "unicast")
    words = ["ip", "route", "del", *([] if kind == "unicast" else [str(kind)]), str(route["dst"])]
    return " ".join(words + (["dev", str(route["dev"])] if "dev" in route else []))


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def route_clash(wanted: str, routes: Sequence[Mapping[str, Any]], own: str) -> Clash | None:
    """The first route of ROUTES (`ip -json -4 route`) whose destination overlaps WANTED, leaving
    out the default route and those on OWN (our bridge, left from an earlier run)."""
    target = ipaddress.ip_network(wanted)
    for route in routes:
        destination = _network(str(route.get("dst", "default")))
        if route.get("dev") == own or destination is None:  # "default" is no network
            continue
        if destination.version == target.version and destination.overlaps(target):
            return Clash(wanted, describe_route(route), _remove_route(route))
    return None


def address_clash(wanted: str, links: Sequence[Mapping[str, Any]], own: str) -> Clash | None:
    """The first address of LINKS (`ip -json -4 addr`) whose network overlaps WANTED, on any
    interface but OWN (a /32 makes no route, but the host answers on it)."""
    target = ipaddress.ip_network(wanted)
    for link in links:
        name = str(link.get("ifname", ""))
        if name == own:
            continue
        for info in link.get("addr_info", []):
            address = f"{info.get('local')}/{info.get('prefixlen')}"
            network = _network(address)
            if network is not None and network.version == target.version and (
                    network.overlaps(target)):
                return Clash(wanted, f"address {address} on {name}",
                             f"ip addr del {address} dev {name}")
    return None


def find_clash(wanted: Sequence[str], routes: Sequence[Mapping[str, Any]],
               links: Sequence[Mapping[str, Any]], own: str) -> Clash | None:
    """The first of WANTED's ranges that a route, else an address, of the host holds part of."""
    for cidr in wanted:
        found = route_clash(cidr, routes, own) or address_clash(cidr, links, own)
        if found:
            return found
    return None


def parse_ip_json(text: str, command: str) -> list[dict[str, Any]]:
    """The output of COMMAND (`ip -json ...`) as a list of objects; a SetupError when it is
    not one."""
    try:
        found = json.loads(text or "[]")
    except ValueError:
        found = None
    if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
        raise SetupError(f"cannot read the output of '{command}': run 'make setup' (installs "
                         "Debian's iproute2)")
    return found


def _ip_json(*args: str) -> list[dict[str, Any]]:
    command = ["ip", "-json", "-4", *args]
    out = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout
    return parse_ip_json(out, " ".join(command))


def host_clash(wanted: Sequence[str], own: str) -> Clash | None:
    """find_clash on this host's IPv4 routes (main table) and addresses."""
    return find_clash(wanted, _ip_json("route"), _ip_json("addr"), own)
