"""Restore records: before a drill changes an object it writes on that object an annotation with
the run's id and the original value. Undoing puts the value back and drops the annotation in one
patch, so what a dead (even SIGKILLed) run changed is found and undone by `chaos-drill restore`
or by the next run, before it injects anything. A prober pod (chaos.observe.prober_pod) carries
a record too and is deleted once its run is dead; a live run's prober pod is left alone."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from chaos.cluster.base import Progress
from chaos.cluster.kube import WORKLOAD_KINDS, apps_call
from chaos.errors import SafetyError

ANNOTATION = "chaosdrill.dev/restore"
PROBER_LABEL = "chaosdrill.dev/prober"
"""On a prober pod, "true"; its restore record names its run."""
RUN_LABEL = "chaosdrill.dev/run"
PROBER_POD = "ProberPod"
"""The kind of a Leftover that is a prober pod (a Pod with PROBER_LABEL)."""
HEAL_LIVENESS = ["/bin/busybox", "sh", "-c", "test -f /www/healthz || echo ok > /www/healthz"]

ACTIVE_RUNS: set[str] = set()
"""Runs in progress in this process (the operator and tests run several in one process)."""


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class Record:
    """What a run changed on one object and the value to put back."""

    run: str
    fault: str
    original: Any
    host: str
    pid: int
    at: str

    @classmethod
    def now(cls, run: str, fault: str, original: Any) -> Record:
        return cls(run, fault, original, socket.gethostname(), os.getpid(),
                   datetime.now(UTC).isoformat(timespec="seconds"))

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Record | None:
        try:
            data = json.loads(text)
            return cls(str(data["run"]), str(data["fault"]), data["original"],
                       str(data["host"]), int(data["pid"]), str(data["at"]))
        except (ValueError, KeyError, TypeError):
            return None

    def is_live(self) -> bool:
        """True while the run that wrote it may still be running (and undo it itself)."""
        if self.run in ACTIVE_RUNS:
            return True
        if self.host != socket.gethostname() or self.pid == os.getpid():
            return False
        try:
            cmdline = open(f"/proc/{self.pid}/cmdline", "rb").read()
        except OSError:
            return False
        return b"chaos" in cmdline


@dataclass(frozen=True)
class Leftover:
    """An object that carries a restore record."""

    kind: str
    name: str
    namespace: str
    record: Record

    def describe(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        what = {"Node": "cordoned", "Pod": "liveness broken", "Job": "load running",
                PROBER_POD: "prober left running"}.get(
            self.kind, f"replicas (originally {self.record.original})")
        return (f"{self.kind} {where}: {what} by {self.record.fault} run {self.record.run} "
                f"(pid {self.record.pid} on {self.record.host}, {self.record.at})")


def _annotations(record: Record | None) -> dict[str, Any]:
    return {"metadata": {"annotations": {ANNOTATION: record.to_json() if record else None}}}


# -- marking, before a change ----------------------------------------------------------------

def mark_workload(api: Any, kind: str, name: str, namespace: str, record: Record) -> None:
    apps_call(api, "patch", kind)(name, namespace, _annotations(record))


def mark_node(api: Any, name: str, record: Record) -> None:
    client.CoreV1Api(api).patch_node(name, _annotations(record))


def mark_pod(api: Any, name: str, namespace: str, record: Record) -> None:
    client.CoreV1Api(api).patch_namespaced_pod(name, namespace, _annotations(record))


# -- undoing ---------------------------------------------------------------------------------

def undo(api: Any, leftover: Leftover) -> None:
    """Puts the original value back and drops the record, in one patch; a vanished object is
    nothing left to undo."""
    try:
        _UNDO[leftover.kind](api, leftover)
    except ApiException as error:
        if error.status != 404:
            raise


def _undo_workload(api: Any, left: Leftover) -> None:
    body = {**_annotations(None), "spec": {"replicas": int(left.record.original)}}
    apps_call(api, "patch", left.kind)(left.name, left.namespace, body)


def _undo_node(api: Any, left: Leftover) -> None:
    body = {**_annotations(None), "spec": {"unschedulable": bool(left.record.original)}}
    client.CoreV1Api(api).patch_node(left.name, body)


def _undo_pod(api: Any, left: Leftover) -> None:
    """The kubelet restarts a container whose liveness fails, which heals it; if it has not yet,
    the probe's file is put back."""
    core = client.CoreV1Api(api)
    pod = core.read_namespaced_pod(left.name, left.namespace)
    if not pod.metadata.deletion_timestamp and pod.status.phase == "Running":
        stream(core.connect_get_namespaced_pod_exec, left.name, left.namespace,
               command=HEAL_LIVENESS, stderr=True, stdin=False, stdout=True, tty=False,
               _request_timeout=30)
    core.patch_namespaced_pod(left.name, left.namespace, _annotations(None))


def _undo_job(api: Any, left: Leftover) -> None:
    """A load Job is removed with its pods."""
    client.BatchV1Api(api).delete_namespaced_job(left.name, left.namespace,
                                                 propagation_policy="Background",
                                                 grace_period_seconds=0)


def _undo_prober_pod(api: Any, left: Leftover) -> None:
    """A prober pod is deleted at once: its run, which would read its last lines, is dead."""
    client.CoreV1Api(api).delete_namespaced_pod(left.name, left.namespace,
                                                grace_period_seconds=0)


_UNDO: dict[str, Callable[[Any, Leftover], None]] = {
    **{kind: _undo_workload for kind in WORKLOAD_KINDS}, "Node": _undo_node, "Pod": _undo_pod,
    "Job": _undo_job, PROBER_POD: _undo_prober_pod}


# -- finding ---------------------------------------------------------------------------------

def find(api: Any, namespace: str | None = None) -> list[Leftover]:
    """Every object carrying a restore record: workloads and pods in NAMESPACE (or in all
    namespaces), and nodes; a pod labelled PROBER_LABEL is a PROBER_POD."""
    found: list[Leftover] = []
    core = client.CoreV1Api(api)
    found += _leftovers("Node", core.list_node().items)
    batch = client.BatchV1Api(api)
    listings: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
        "Pod": (core.list_namespaced_pod, core.list_pod_for_all_namespaces),
        "Job": (batch.list_namespaced_job, batch.list_job_for_all_namespaces)}
    for kind in WORKLOAD_KINDS:
        apps = client.AppsV1Api(api)
        plural = WORKLOAD_KINDS[kind]
        listings[kind] = (getattr(apps, f"list_namespaced_{plural}"),
                          getattr(apps, f"list_{plural}_for_all_namespaces"))
    for kind, (in_namespace, everywhere) in listings.items():
        items = in_namespace(namespace).items if namespace else everywhere().items
        if kind in WORKLOAD_KINDS:  # a Deployment's ReplicaSets inherit its annotations
            items = [i for i in items if not _controlled(i)]
        found += _leftovers(kind, items)
    return found


def _controlled(item: Any) -> bool:
    return any(ref.controller for ref in item.metadata.owner_references or [])


def _leftovers(kind: str, items: list[Any]) -> list[Leftover]:
    found = []
    for item in items:
        text = (item.metadata.annotations or {}).get(ANNOTATION)
        record = Record.from_json(text) if text else None
        prober = kind == "Pod" and (item.metadata.labels or {}).get(PROBER_LABEL) == "true"
        if record is not None:
            found.append(Leftover(PROBER_POD if prober else kind, item.metadata.name,
                                  item.metadata.namespace or "", record))
    return found


def dead_runs_leftovers(leftovers: list[Leftover]) -> list[Leftover]:
    """The LEFTOVERS of dead runs; SafetyError if a live run holds a change (its prober pod is
    not one, and is skipped)."""
    dead = [left for left in leftovers if not left.record.is_live()]
    live = [left for left in leftovers if left not in dead and left.kind != PROBER_POD]
    if live:
        raise SafetyError(f"another drill is still running and changed {live[0].describe()}: "
                          "wait for it or stop it, then run 'chaos-drill restore'")
    return dead


def restore_dead_runs(api: Any, namespace: str | None, say: Progress) -> list[Leftover]:
    """Undoes what every dead run left and returns it; refuses (SafetyError) while a live run
    holds a change. A live run's prober pod changes nothing: it is left to its run."""
    dead = dead_runs_leftovers(find(api, namespace))
    for left in dead:
        say(f"restoring {left.describe()}" if left.kind != PROBER_POD
            else f"deleting {left.describe()}")
        undo(api, left)
    return dead
