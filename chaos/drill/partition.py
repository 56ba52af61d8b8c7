"""iptables rules in a pod's network namespace that cut it off (network_partition: two chains
of our own, CHAOS-DRILL-PART from INPUT and CHAOS-DRILL-PART-OUT from OUTPUT) or drop a share of
its packets at random (packet_loss: CHAOS-DRILL-LOSS and CHAOS-DRILL-LOSS-OUT), so listing and
removing them is exact. Only loopback and, unless `probes: true`, the kubelet's liveness probe
from the node get through: readiness fails, the pod leaves the Service, and its container is not
restarted. dns_block's chain, CHAOS-DRILL-DNS from OUTPUT, drops only the pod's DNS queries (udp
and tcp to port 53 of its nameservers). Command lists are built here; a provider with PodNetwork
runs them on the node, each batch of rules in one entry into the namespace."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CHAIN_IN = "CHAOS-DRILL-PART"
CHAIN_OUT = "CHAOS-DRILL-PART-OUT"
LOSS_IN = "CHAOS-DRILL-LOSS"
LOSS_OUT = "CHAOS-DRILL-LOSS-OUT"
DNS_OUT = "CHAOS-DRILL-DNS"
CHAINS = {CHAIN_IN: "INPUT", CHAIN_OUT: "OUTPUT", LOSS_IN: "INPUT", LOSS_OUT: "OUTPUT",
          DNS_OUT: "OUTPUT"}
"""Each chain of ours and the built-in chain that jumps to it."""
IPTABLES = ("iptables", "-w", "5")
DNS_PORT = "53"
HANDSHAKE_BYTES = 120
"""Packets up to this length (SYN, ACK, FIN: no HTTP request fits) of a probe's connection pass,
so the liveness request can follow; a readiness request is longer and is dropped."""

Run = Callable[[Sequence[str]], str]
"""Runs one command in the pod's network namespace; its output."""


@dataclass(frozen=True)
class Liveness:
    """The kubelet's liveness probe to let through: from SOURCES to PORT, and for httpGet only
    the requests for PATH (readiness may share the port)."""

    sources: tuple[str, ...]
    port: int
    path: str | None


def liveness_of(
    pod: Mapping[str, Any], container: str | None, sources: Sequence[str]
) -> Liveness | None:
    """The liveness probe of CONTAINER (or the first) as a Liveness; None for none or exec."""
    containers = pod.get("spec", {}).get("containers") or []
    spec: Mapping[str, Any] = next(
        (c for c in containers if container in (None, c.get("name"))), {}
    )
    probe = spec.get("livenessProbe") or {}
    action = probe.get("httpGet") or probe.get("tcpSocket")
    if not action or not sources:
        return None
    port = action.get("port")
    if isinstance(port, str):  # a named port
        named = {p.get("name"): p.get("containerPort") for p in spec.get("ports") or []}
        port = named.get(port)
    if not isinstance(port, int):
        return None
    path = probe["httpGet"].get("path", "/") if "httpGet" in probe else None
    return Liveness(tuple(dict.fromkeys(sources)), port, path)


def gateway(route: str) -> list[str]:
    """The pod's default gateway from `ip -4 route show default`: the node's side of its link,
    where the kubelet's probes come from."""
    words = route.split()
    return [words[words.index("via") + 1]] if "via" in words[:-1] else []


def cut_commands(liveness: Liveness | None, loss: float | None = None) -> list[list[str]]:
    """The commands that create both chains and hook them in first; with LOSS (0 to 1) they
    drop that share of the packets at random, not all."""
    rules_in: list[list[str]] = [["-i", "lo"]]
    rules_out: list[list[str]] = [["-o", "lo"]]
    if liveness is not None:
        for source in liveness.sources:
            tcp_in = ["-s", source, "-p", "tcp", "--dport", str(liveness.port)]
            if liveness.path is None:
                rules_in.append(tcp_in)
            else:
                rules_in += [
                    [*tcp_in, "-m", "length", "--length", f"0:{HANDSHAKE_BYTES}"],
                    [*tcp_in, "-m", "string", "--algo", "bm", "--string", f"GET {liveness.path} "],
                ]
            rules_out.append(["-d", source, "-p", "tcp", "--sport", str(liveness.port)])
    commands: list[list[str]] = []
    drop = ["-j", "DROP"]
    if loss is not None:
        drop = ["-m", "statistic", "--mode", "random", "--probability", f"{loss:.4f}", *drop]
    chains = (CHAIN_IN, CHAIN_OUT) if loss is None else (LOSS_IN, LOSS_OUT)
    for chain, rules in zip(chains, (rules_in, rules_out), strict=True):
        commands.append([*IPTABLES, "-N", chain])
        commands += [[*IPTABLES, "-A", chain, *rule, "-j", "RETURN"] for rule in rules]
        commands.append([*IPTABLES, "-A", chain, *drop])
        commands.append([*IPTABLES, "-I", CHAINS[chain], "1", "-j", chain])
    return commands


def dns_block_commands(servers: Sequence[str]) -> list[list[str]]:
    """The commands that create CHAOS-DRILL-DNS, dropping udp and tcp to port 53 of each of
    SERVERS (the pod's nameservers), and hook it in first in OUTPUT. The pod's queries leave it
    addressed to the nameserver as written in its resolv.conf (a Service's ClusterIP is
    translated only on the node's side), so matching that address is exact."""
    commands = [[*IPTABLES, "-N", DNS_OUT]]
    for server in servers:
        for protocol in ("udp", "tcp"):
            commands.append([*IPTABLES, "-A", DNS_OUT, "-d", server, "-p", protocol,
                             "--dport", DNS_PORT, "-j", "DROP"])
    commands.append([*IPTABLES, "-I", CHAINS[DNS_OUT], "1", "-j", DNS_OUT])
    return commands


def ours(listing: str) -> list[str]:
    """Our rules in an `iptables -S` LISTING, one line each: the chains and the jumps."""
    return [
        line
        for line in listing.splitlines()
        if any(f" {chain}" in f" {line} " or line.endswith(chain) for chain in CHAINS)
    ]


def lift_commands(listing: str) -> list[list[str]]:
    """The commands that remove every rule of ours an `iptables -S` LISTING shows (a jump
    inserted twice is deleted twice), then our chains."""
    commands = []
    for line in listing.splitlines():
        words = line.split()
        if (
            len(words) == 4
            and words[0] == "-A"
            and words[1] in CHAINS.values()
            and words[2] == "-j"
            and words[3] in CHAINS
        ):
            commands.append([*IPTABLES, "-D", words[1], "-j", words[3]])
    present = [chain for chain in CHAINS if f"-N {chain}" in listing.splitlines()]
    for chain in present:
        commands += [[*IPTABLES, "-F", chain], [*IPTABLES, "-X", chain]]
    return commands


def batch(commands: Sequence[Sequence[str]]) -> list[str]:
    """One command running COMMANDS in order in one entry into the pod's namespace (on kind each
    entry is a `docker exec` on its node); it stops at the first that fails, with one line on
    stderr naming it and its error."""
    lines = ["set -f"]  # the error in $out is split into words, never expanded as a glob
    for command in commands:
        quoted = shlex.join(command)
        lines.append(f"out=$({quoted} 2>&1) || {{ echo {shlex.quote(quoted)}: $out >&2; "
                     "exit 1; }")
    return ["sh", "-c", "\n".join(lines)]


def run_all(run: Run, commands: Sequence[Sequence[str]]) -> None:
    """COMMANDS through RUN as one batch; nothing when there are none."""
    if commands:
        run(batch(commands))


def cut(
    run: Run,
    pod: Mapping[str, Any],
    container: str | None,
    drop_probes: bool,
    loss: float | None = None,
) -> str:
    """Cuts the pod off, or with LOSS drops that share of its packets (what is left of an
    earlier cut goes first); says what got through."""
    lift(run)
    sources = [] if drop_probes else gateway(run(["ip", "-4", "route", "show", "default"]))
    liveness = liveness_of(pod, container, sources)
    run_all(run, cut_commands(liveness, loss))
    share = "all" if loss is None else f"{loss:.0%} of"
    if liveness is None:
        return f"dropping {share} its traffic"
    return (
        f"dropping {share} its traffic but the liveness probe from "
        f"{', '.join(liveness.sources)} to port {liveness.port}"
    )


def block_dns(run: Run, servers: Sequence[str]) -> str:
    """Drops the pod's DNS queries to SERVERS (what is left of an earlier cut goes first); says
    what it dropped."""
    lift(run)
    run_all(run, dns_block_commands(servers))
    return f"dropping its DNS queries (udp and tcp port {DNS_PORT}) to {', '.join(servers)}"


def lift(run: Run) -> int:
    """Removes every rule of ours from the pod's namespace; how many lines it found."""
    listing = run([*IPTABLES, "-S"])
    run_all(run, lift_commands(listing))
    return len(ours(listing))
