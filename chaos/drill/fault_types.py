"""Every fault chaos-drill knows, declared once: its name, its incident's phases, how the
tracker follows the incident, the provider capability it needs and the class that injects it.

The drill schema's enum (checked by a test), the CLI's `faults` listing, the timeline phases,
the metric labels and the tracker's dispatch all derive from FAULTS. Adding a fault is one
module in chaos/drill/faults/ and one line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from chaos.cluster.base import (
    CAPABILITY_NAMES,
    ClusterProvider,
    ContainerRuntime,
    NodeControl,
    PodNetwork,
)
from chaos.errors import FaultError


class Follow(Enum):
    """How an incident is followed to recovery."""

    REPLACEMENT = "replacement"
    """The target pod goes and its controller creates a new one."""
    RESTART = "restart"
    """The same pod's container restarts in place."""
    SCALE = "scale"
    """The workload reaches a new replica count."""
    AUTOSCALE = "scale-out"
    """The workload's HorizontalPodAutoscaler scales it out, then back in."""
    ISOLATION = "cut-off"
    """The same pod is cut off, leaves rotation, and rejoins once the fault is lifted."""
    DEGRADED = "degradation"
    """The same pod works worse for a while; Ready once the fault is lifted."""


REPLACEMENT_PHASES: tuple[str, ...] = (
    "injected", "target_gone", "replacement_created", "scheduled", "started", "ready")
"""target_gone is the moment the pod stops counting: deletion or eviction seen by the watch."""

RESTART_PHASES: tuple[str, ...] = ("injected", "container_exited", "restarted", "ready")

SCALE_PHASES: tuple[str, ...] = ("injected", "replicas_created", "scheduled", "started", "ready")
"""Each phase is when the last of the new pods reached it."""

LOAD_PHASES: tuple[str, ...] = (
    "injected", "utilization_above_target", "scale_decided", "replicas_created", "ready",
    "scaled_in")
"""The HPA's status shows the CPU above target, then a desiredReplicas above the replicas at
injection; every new pod exists, then all are Ready; after the load, back to where it began."""

TRAFFIC_PHASES: tuple[str, ...] = ("endpoint_removed", "endpoint_added")
"""From the probed Service's EndpointSlices, for an incident about a pod the Service selects:
the victim is no longer ready in any slice (traffic stopped going to it), then its
replacement, or itself, is ready in one again. They follow every fault's own phases, in time
rather than phase order (a pod's endpoint may go before or after its deletion is seen)."""

PARTITION_PHASES: tuple[str, ...] = (
    "injected", "not_ready", *TRAFFIC_PHASES[:1], "lifted", "ready", *TRAFFIC_PHASES[1:])
"""Readiness fails, the Service drops the pod; after durationSeconds the runner lifts the fault
(lifted), the pod is Ready and in rotation again."""

LOSS_PHASES: tuple[str, ...] = ("injected", "lifted", "ready")
"""Packets are dropped until the runner lifts the fault; then the pod is Ready (at once, if it
never stopped being). Should readiness fail meanwhile, the traffic phases show it."""

DNS_PHASES: tuple[str, ...] = LOSS_PHASES
"""The pod loses the cluster DNS until the runner lifts the fault; it stays Ready (its probes
need no DNS), so it is ready at once when lifted. What fails meanwhile is what it calls by name:
the prober through it shows that."""

NODE_DOWN_PHASES: tuple[str, ...] = ("injected", "node_not_ready", *REPLACEMENT_PHASES[1:])
"""A node goes down; its pods are marked for deletion only after the node is NotReady."""


LIFTED = "lifted"
"""A fault with this phase lasts spec.fault.durationSeconds; the runner then lifts it (the
fault's restore) and marks the phase."""


@dataclass(frozen=True)
class FaultType:
    """One fault as the rest of chaos-drill sees it."""

    name: str
    summary: str
    follow: Follow
    phases: tuple[str, ...]
    factory: str
    """module:Class under chaos.drill.faults, imported only when a drill uses the fault."""
    needs: type[Any] | None = None
    """The provider capability (a protocol in chaos.cluster.base) it cannot work without."""
    instead: str = ""
    """The fault to suggest on a provider that lacks `needs`."""
    node_action: str = ""
    """"cordon" or "stop" for faults that act on a whole node (chaos.drill.node_guard decides
    which nodes they may touch); empty for the others."""

    @property
    def lifted_after_duration(self) -> bool:
        return LIFTED in self.phases

    @property
    def capability(self) -> str:
        return CAPABILITY_NAMES[self.needs] if self.needs else "the Kubernetes API only"

    def check_provider(self, provider: ClusterProvider) -> None:
        """A one-line FaultError when PROVIDER lacks what this fault needs."""
        if self.needs is not None and not isinstance(provider, self.needs):
            raise FaultError(f"{self.name} needs {self.capability}, which the {provider.name} "
                             f"provider lacks: use {self.instead}")


FAULTS: tuple[FaultType, ...] = (
    FaultType("pod_delete", "deletes pods; their controller replaces them",
              Follow.REPLACEMENT, REPLACEMENT_PHASES, "pod_delete:PodDelete"),
    FaultType("container_kill", "SIGKILLs a container; the kubelet restarts it in place",
              Follow.RESTART, RESTART_PHASES, "container_kill:ContainerKill",
              ContainerRuntime, "liveness_break"),
    FaultType("oom_kill", "fills a container's memory limit; the kernel OOM-kills it, the "
              "kubelet restarts it", Follow.RESTART, RESTART_PHASES, "oom_kill:OomKill",
              ContainerRuntime, "liveness_break"),
    FaultType("liveness_break", "fails the liveness probe; the kubelet restarts the container",
              Follow.RESTART, RESTART_PHASES, "liveness_break:LivenessBreak"),
    FaultType("scale", "sets the replica count; restored afterwards",
              Follow.SCALE, SCALE_PHASES, "scale:Scale"),
    FaultType("node_drain", "cordons a node and evicts its pods; uncordoned afterwards",
              Follow.REPLACEMENT, REPLACEMENT_PHASES, "node_drain:NodeDrain",
              node_action="cordon"),
    FaultType("node_stop", "takes a whole node down; started again afterwards",
              Follow.REPLACEMENT, NODE_DOWN_PHASES, "node_stop:NodeStop",
              NodeControl, "node_drain", node_action="stop"),
    FaultType("load", "a bounded traffic surge from a Job; the HPA scales out, then back in",
              Follow.AUTOSCALE, LOAD_PHASES, "load:Load"),
    FaultType("network_partition", "cuts pods off the network for a while; readiness takes "
              "them out of the Service", Follow.ISOLATION, PARTITION_PHASES,
              "network_partition:NetworkPartition", PodNetwork, "liveness_break"),
    FaultType("packet_loss", "drops a share of pods' packets for a while",
              Follow.DEGRADED, LOSS_PHASES, "packet_loss:PacketLoss", PodNetwork,
              "liveness_break"),
    FaultType("dns_block", "blocks pods' DNS (port 53 to the cluster DNS) for a while; what "
              "they call by name fails", Follow.DEGRADED, DNS_PHASES, "dns_block:DnsBlock",
              PodNetwork, "pod_delete"),
)

OBSERVED: tuple[str, ...] = ("pod_delete", "container_kill", "node_stop")
"""The faults whose phases follow a disruption chaos-drill did not cause (chaos.observe.
disruptions): a pod deleted or evicted, a container that exited, a node gone NotReady."""

NAMES: tuple[str, ...] = tuple(fault.name for fault in FAULTS)
"""The one spelling of every fault name: CLI, spec, journal and metric labels use these."""

PHASES_BY_FAULT: Mapping[str, tuple[str, ...]] = {fault.name: fault.phases for fault in FAULTS}


def fault_type(name: str) -> FaultType:
    """The declared fault NAME; ValueError naming the known ones otherwise."""
    for fault in FAULTS:
        if fault.name == name:
            return fault
    raise ValueError(f"unknown fault type {name!r}: use one of {', '.join(NAMES)}")


def describe() -> list[str]:
    """For `chaos-drill faults`: per fault, what it does, its phases and what it needs."""
    width = max(len(name) for name in NAMES)
    lines = []
    for fault in FAULTS:
        lines += [f"{fault.name:<{width}}  {fault.summary}",
                  f"{'':<{width}}    phases: {' > '.join(fault.phases)} "
                  f"(follows a {fault.follow.value})",
                  f"{'':<{width}}    needs:  {fault.capability}"]
    return lines
