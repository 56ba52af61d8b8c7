"""load: a bounded traffic surge from a Job in the target's namespace, sent only to the
workload's own Service, so its HorizontalPodAutoscaler scales it out and, once the load ends,
back in. The Job carries a restore record, so it is removed at the end, on Ctrl-C, and by
`chaos-drill restore` after a crash; its own activeDeadlineSeconds bounds it even then."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubernetes import client

from chaos.cluster.kube import Workload
from chaos.drill import restore
from chaos.drill.faults import FaultContext, FaultTarget
from chaos.drill.spec import DEFAULT_LOAD_CONCURRENCY, DEFAULT_LOAD_PATH, DEFAULT_LOAD_SECONDS
from chaos.drill.targeting import PodInfo
from chaos.errors import SpecError

LOAD_IMAGE = "chaosdrill.local/web:1"
REQUESTS_PER_SECOND_CAP = 50
"""Each worker's request budget is this many per second of the load, so it can never run away."""
DEADLINE_MARGIN_SECONDS = 30
LOAD_LABEL = "chaosdrill.dev/load"
WORKER = """end=$(( $(busybox date +%s) + SECONDS_TOTAL ))
sent=0
while [ "$sent" -lt "$BUDGET" ] && [ "$(busybox date +%s)" -lt "$end" ]; do
  busybox wget -q -O /dev/null "$URL" || true
  sent=$((sent + 1))
done
echo "sent $sent requests to $URL"
"""


def autoscaler_for(api: Any, workload: Workload) -> str:
    """The name of the HorizontalPodAutoscaler scaling WORKLOAD; a SpecError if none does."""
    hpas = client.AutoscalingV2Api(api).list_namespaced_horizontal_pod_autoscaler(
        workload.namespace).items
    for hpa in hpas:
        ref = hpa.spec.scale_target_ref
        if ref.kind == workload.kind and ref.name == workload.name:
            return str(hpa.metadata.name)
    raise SpecError(f"load needs a HorizontalPodAutoscaler on {workload.kind} "
                    f"{workload.namespace}/{workload.name} and there is none: create one "
                    "(for the sample app: 'chaos-drill deploy --autoscale')")


def service_for(api: Any, workload: Workload) -> tuple[str, int]:
    """(name, port) of the Service in front of WORKLOAD's pods; a SpecError if none is."""
    services = client.CoreV1Api(api).list_namespaced_service(workload.namespace).items
    labels = workload.match_labels
    for service in services:
        selector = service.spec.selector or {}
        if selector and all(labels.get(k) == v for k, v in selector.items()) and \
                service.spec.ports:
            return str(service.metadata.name), int(service.spec.ports[0].port)
    raise SpecError(f"load sends traffic only to the workload's own Service, and no Service in "
                    f"{workload.namespace} selects {workload.kind} {workload.name}'s pods: "
                    "create one")


def job_name(run_id: str) -> str:
    return f"chaos-drill-load-{run_id}"


def load_job(name: str, url: str, seconds: int, concurrency: int,
             record: restore.Record) -> dict[str, Any]:
    """The Job: CONCURRENCY pods, each sending requests one after another to URL for SECONDS,
    within a budget and a deadline; restricted by Pod Security, no API token."""
    budget = seconds * REQUESTS_PER_SECOND_CAP
    container = {
        "name": "load", "image": LOAD_IMAGE, "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/busybox", "sh", "-c", WORKER],
        "env": [{"name": "URL", "value": url}, {"name": "SECONDS_TOTAL", "value": str(seconds)},
                {"name": "BUDGET", "value": str(budget)}],
        "resources": {"requests": {"cpu": "10m", "memory": "8Mi"},
                      "limits": {"cpu": "200m", "memory": "32Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True},
    }
    labels = {LOAD_LABEL: name, "app.kubernetes.io/managed-by": "chaos-drill"}
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "labels": labels,
                     "annotations": {restore.ANNOTATION: record.to_json()}},
        "spec": {
            "parallelism": concurrency, "completions": concurrency, "backoffLimit": 0,
            "activeDeadlineSeconds": seconds + DEADLINE_MARGIN_SECONDS,
            "ttlSecondsAfterFinished": 600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never", "automountServiceAccountToken": False,
                    "enableServiceLinks": False, "terminationGracePeriodSeconds": 1,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65534,
                                        "runAsGroup": 65534,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                },
            },
        },
    }


class Load:
    def __init__(self) -> None:
        self.job: str | None = None

    def targets(self, ctx: FaultContext, victims: Sequence[PodInfo]) -> list[FaultTarget]:
        return [FaultTarget(None, "")]

    def act(self, ctx: FaultContext, target: FaultTarget) -> str:
        w, fault = ctx.workload, ctx.drill.fault
        service, port = service_for(ctx.api, w)
        seconds = fault.duration_seconds or DEFAULT_LOAD_SECONDS
        concurrency = fault.concurrency or DEFAULT_LOAD_CONCURRENCY
        url = f"http://{service}.{w.namespace}.svc:{port}{fault.path or DEFAULT_LOAD_PATH}"
        name = job_name(ctx.run_id)
        record = restore.Record.now(ctx.run_id, "load", None)
        body = load_job(name, url, seconds, concurrency, record)
        client.BatchV1Api(ctx.api).create_namespaced_job(w.namespace, body)
        self.job = name
        return (f"started Job {name}: {concurrency} workers on {url} for {seconds}s "
                f"(at most {seconds * REQUESTS_PER_SECOND_CAP} requests each)")

    def restore(self, ctx: FaultContext) -> None:
        if self.job is None:
            return
        ctx.say(f"removing the load Job {self.job}")
        record = restore.Record.now(ctx.run_id, "load", None)
        restore.undo(ctx.api, restore.Leftover("Job", self.job, ctx.workload.namespace, record))
        self.job = None

