"""pod_delete: deletes the victim pods through the API; their controller replaces them. With
spec.fault.gracePeriodSeconds 0 the API removes a pod at once, as after a crash: no preStop and
no wait in the API, while its kubelet stops the containers; otherwise the pod terminates for that
many seconds (its own terminationGracePeriodSeconds when unset)."""

from __future__ import annotations

from collections.abc import Sequence

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaos.drill.faults import FaultContext, FaultTarget, per_pod
from chaos.drill.targeting import PodInfo
from chaos.errors import FaultError


class PodDelete:
    def targets(self, ctx: FaultContext, victims: Sequence[PodInfo]) -> list[FaultTarget]:
        return per_pod(victims)

    def act(self, ctx: FaultContext, target: FaultTarget) -> str:
        assert target.pod is not None
        grace = ctx.drill.fault.grace_period_seconds
        try:
            client.CoreV1Api(ctx.api).delete_namespaced_pod(
                target.pod.name, target.pod.namespace,
                # in the body: with a body, the API server ignores the query's grace
                body=client.V1DeleteOptions(grace_period_seconds=grace,
                                            preconditions={"uid": target.pod.uid}),
            )
        except ApiException as error:
            raise FaultError(f"could not delete pod {target.pod.name}: {error.reason}") from None
        return f"deleted pod {target.pod.name} (grace {grace if grace is not None else 'default'})"

    def restore(self, ctx: FaultContext) -> None:
        """Nothing to restore: the controller replaces the pod."""
