"""packet_loss: drops spec.fault.lossPercent of the victim pods' packets, at random in both
directions, for spec.fault.durationSeconds: the same iptables path as network_partition (the
kubelet's liveness probe gets through), its rules ending in the `statistic` match instead of
dropping everything. Requests to the pod slow down or fail; its readiness probe may fail and
take it out of the Service for a while. Lifted after the duration and on any stop; `chaos-drill
restore` removes the rules after a SIGKILL. Needs a provider with PodNetwork (local,
kind)."""

from __future__ import annotations

from chaos.drill.faults import FaultContext
from chaos.drill.faults.network_partition import NetworkPartition
from chaos.drill.spec import DEFAULT_LOSS_PERCENT


class PacketLoss(NetworkPartition):
    def loss(self, ctx: FaultContext) -> float | None:
        return (ctx.drill.fault.loss_percent or DEFAULT_LOSS_PERCENT) / 100
