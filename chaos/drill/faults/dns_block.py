"""dns_block: the victim pods lose the cluster DNS for spec.fault.durationSeconds: a chain of
iptables rules in each pod's own network namespace (chaos.drill.partition, CHAOS-DRILL-DNS from
OUTPUT) drops udp and tcp to port 53 of the nameservers the kubelet wrote in its resolv.conf
(for dnsPolicy ClusterFirst, the default, the ClusterIP of Service kube-system/kube-dns; a pod
with dnsPolicy Default, or with an IPv6 nameserver, is refused). Nothing in kube-system is
changed: the Service is only read. The pod stays Ready (its own probes need no DNS) while
whatever it calls by name fails; with web calling api by name, requests through web's
/cgi-bin/api fail, then answer again once lifted. Lifted after the duration and on any stop;
each pod is marked first, so `chaos-drill restore` removes the rules after a SIGKILL. Needs a
provider with PodNetwork (local, kind)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaos.cluster import kube
from chaos.drill import partition
from chaos.drill.faults import FaultContext, FaultTarget
from chaos.drill.faults.network_partition import NetworkPartition
from chaos.drill.partition import Run
from chaos.drill.targeting import PodInfo
from chaos.errors import FaultError

CLUSTER_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet")


def nameservers(name: str, spec: Mapping[str, Any], cluster_dns: Callable[[], str]) -> list[str]:
    """The nameservers the kubelet writes in the resolv.conf of pod NAME (namespace/name) with
    SPEC: the cluster DNS (CLUSTER_DNS()) for dnsPolicy ClusterFirst, the default, then
    spec.dnsConfig's; for dnsPolicy None only those. A FaultError naming the pod for dnsPolicy
    Default (its node's resolver, not the cluster DNS) or no nameserver at all."""
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "Default":
        raise FaultError(f"dns_block cannot block pod {name}'s DNS: its dnsPolicy is Default "
                         "(its node's resolver, not the cluster DNS); target pods with "
                         "dnsPolicy ClusterFirst")
    servers = [cluster_dns()] if policy in CLUSTER_POLICIES else []
    servers += (spec.get("dnsConfig") or {}).get("nameservers") or []
    if not servers:
        raise FaultError(f"dns_block cannot block pod {name}'s DNS: it has no nameserver "
                         "(dnsPolicy None and no dnsConfig.nameservers)")
    for server in servers:  # else its queries would go on to that server, unblocked
        if ipaddress.ip_address(server).version == 6:
            raise FaultError(f"dns_block cannot block pod {name}'s DNS: its nameserver {server} "
                             "is IPv6 and its rules are IPv4 (iptables) only; target pods "
                             "whose nameservers are all IPv4")
    return list(dict.fromkeys(servers))


def cluster_dns_ip(api: Any) -> str:
    """The ClusterIP of the cluster DNS Service (read only); FaultError if there is none."""
    namespace, name = kube.DNS_SERVICE
    try:
        service = client.CoreV1Api(api).read_namespaced_service(name, namespace)
    except ApiException as error:
        raise FaultError(f"dns_block needs the cluster DNS Service {namespace}/{name} for its "
                         f"ClusterIP, and reading it failed: {error.status} {error.reason}; "
                         "install CoreDNS as kube-dns") from None
    address = service.spec.cluster_ip
    if not address or address == "None":
        raise FaultError(f"dns_block needs a ClusterIP on Service {namespace}/{name}, which "
                         "has none")
    return str(address)


class DnsBlock(NetworkPartition):
    def __init__(self) -> None:
        super().__init__()
        self.servers: dict[str, list[str]] = {}

    def targets(self, ctx: FaultContext, victims: Sequence[PodInfo]) -> list[FaultTarget]:
        """Each victim's nameservers, found before anything is injected (or a refusal)."""
        found = super().targets(ctx, victims)
        cluster: list[str] = []

        def cluster_dns() -> str:
            if not cluster:
                cluster.append(cluster_dns_ip(ctx.api))
            return cluster[0]

        for pod in victims:
            spec = ctx.pod_status.get(pod.uid, {}).get("spec") or {}
            self.servers[pod.uid] = nameservers(f"{pod.namespace}/{pod.name}", spec, cluster_dns)
        return found

    def rules(self, ctx: FaultContext, target: FaultTarget, run: Run) -> str:
        assert target.pod is not None
        return partition.block_dns(run, self.servers[target.pod.uid])
