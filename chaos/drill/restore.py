"""Restore records: before a drill changes an object it writes on that object an annotation with
the run's id, its run's Lease and the original value. Undoing puts the value back and drops the
annotation in one patch, so what a dead (even SIGKILLed) run changed is found and undone by
`chaos-drill restore` or by the next run, before it injects anything. Whether a run is dead is
its Lease's to say (chaos.drill.leases), the same from every machine. A prober pod
(chaos.observe.prober_pod) carries a record too and is deleted once its run is dead; a live
run's changes and prober pod are left alone. A record that cannot be read is skipped with one
line naming the object, never guessed at."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from chaos.cluster.base import PodNetwork, Progress
from chaos.cluster.kube import WORKLOAD_KINDS, apps_call
from chaos.drill import fault_types, leases, through_provider
from chaos.errors import FaultError, RestoreError

ANNOTATION = "chaosdrill.dev/restore"
PROBER_LABEL = "chaosdrill.dev/prober"
"""On a prober pod, "true"; its restore record names its run."""
RUN_LABEL = "chaosdrill.dev/run"
PROBER_POD = "ProberPod"
"""The kind of a Leftover that is a prober pod (a Pod with PROBER_LABEL)."""
STOPPED_NODE = "StoppedNode"
"""The kind of a Leftover that is a Node node_stop took down."""
PARTITIONED_POD = "PartitionedPod"
"""The kind of a Leftover that is a Pod network_partition cut off (iptables in its namespace)."""
CUT_OFF = tuple(fault.name for fault in fault_types.FAULTS if fault.needs is PodNetwork)
MEMORY_HOG = "MemoryHog"  # the kind of a Leftover that is a Pod oom_kill started a hog in
HEAL_LIVENESS = ["/bin/busybox", "sh", "-c", "test -f /www/healthz || echo ok > /www/healthz"]
RECORD_FIELDS = ("run", "fault", "original", "host", "pid", "at")
ACTIVE_RUNS: dict[str, str] = {}
"""Runs in progress in this process (the operator and tests run several in one process), each
with the namespace/name of its Lease ("" for a dry run, which holds none)."""


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class Record:
    """What a run changed on one object and the value to put back: replicas (a whole number) on
    a workload, spec.unschedulable (true/false) for node_drain's cordon, the provider's name
    for node_stop (what can start the node again), null where the undo needs no value (a
    liveness_break pod, a load Job, a prober pod)."""

    run: str
    fault: str
    original: Any
    host: str
    pid: int
    at: str
    lease: str = ""
    """namespace/name of the run's Lease; "" in records of chaos-drill before Leases."""

    @classmethod
    def now(cls, run: str, fault: str, original: Any) -> Record:
        return cls(run, fault, original, socket.gethostname(), os.getpid(),
                   datetime.now(UTC).isoformat(timespec="seconds"), ACTIVE_RUNS.get(run, ""))

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def parse(cls, text: str, kind: str) -> Record:
        """The record TEXT found on an object of KIND; RestoreError saying what is wrong with
        it (not JSON, a field missing or of the wrong type, an original its undo cannot use)."""
        try:
            data = json.loads(text)
        except ValueError:
            raise RestoreError("it is not JSON") from None
        if not isinstance(data, dict):
            raise RestoreError("it is not a JSON object")
        missing = [name for name in RECORD_FIELDS if name not in data]
        if missing:
            raise RestoreError(f"it has no {', '.join(missing)}")
        for name in ("run", "fault", "host", "at"):
            if not isinstance(data[name], str) or not data[name]:
                raise RestoreError(f"its {name} is {json.dumps(data[name])}, not a name")
        if not isinstance(data["pid"], int) or isinstance(data["pid"], bool):
            raise RestoreError(f"its pid is {json.dumps(data['pid'])}, not a number")
        lease = data.get("lease", "")
        if not isinstance(lease, str) or (lease and "/" not in lease):
            raise RestoreError(f"its lease is {json.dumps(lease)}, not namespace/name")
        record = cls(data["run"], data["fault"], data["original"], data["host"], data["pid"],
                     data["at"], lease)
        record.check_original(kind)
        return record

    @classmethod
    def from_json(cls, text: str) -> Record | None:
        """The record TEXT, whatever its object; None if it cannot be read."""
        try:
            return cls.parse(text, "")
        except RestoreError:
            return None

    def check_original(self, kind: str) -> None:
        """RestoreError if `original` is not what undoing it on an object of KIND needs."""
        value, shown = self.original, json.dumps(self.original)
        if kind in WORKLOAD_KINDS and (not isinstance(value, int) or isinstance(value, bool)
                                       or value < 0):
            raise RestoreError(f"its original is {shown}, not a replica count")
        if kind == "Node" and self.fault == "node_drain" and not isinstance(value, bool):
            raise RestoreError(f"its original is {shown}, not true or false (the cordon)")
        if kind == "Node" and self.fault == "node_stop" and (not isinstance(value, str)
                                                             or not value):
            raise RestoreError(f"its original is {shown}, not the provider that stopped it")
        if kind == "Pod" and self.fault in CUT_OFF and (not isinstance(value, str) or not value):
            raise RestoreError(f"its original is {shown}, not the provider that cut it off")
        if kind == "Node" and self.fault not in ("node_drain", "node_stop"):
            raise RestoreError(f"its fault is {self.fault}, which changes no node")
        if self.fault == "oom_kill":
            from chaos.drill.faults.oom_kill import hog_from_original
            hog_from_original(value)

    def runs_here(self) -> bool:
        """For a record without a Lease (written before chaos-drill had them): its run is a
        live chaos-drill process on this host. Another host's run cannot be seen: dead."""
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
        kind = {STOPPED_NODE: "Node", PARTITIONED_POD: "Pod", MEMORY_HOG: "Pod"}.get(
            self.kind, self.kind)
        what = {"Node": "cordoned", STOPPED_NODE: "stopped", "Pod": "liveness broken",
                PARTITIONED_POD: through_provider.cut_off_as(self.record.fault),
                MEMORY_HOG: "memory hog started", "Job": "load running",
                PROBER_POD: "prober left running"}.get(
            self.kind, f"replicas (originally {self.record.original})")
        return (f"{kind} {where}: {what} by {self.record.fault} run {self.record.run} "
                f"(pid {self.record.pid} on {self.record.host}, {self.record.at})")


@dataclass(frozen=True)
class Unreadable:
    """An object whose restore record cannot be used, and why."""

    kind: str
    name: str
    namespace: str
    problem: str

    def describe(self) -> str:
        shown = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"skipped {self.kind} {shown}: {self.trouble()}"

    def trouble(self) -> str:
        """What is wrong, and what to do about it."""
        where = f"-n {self.namespace} " if self.namespace else ""
        return (f"its restore record cannot be used ({self.problem}): check the object by "
                f"hand, then remove the annotation (kubectl annotate {self.kind.lower()} "
                f"{where}{self.name} {ANNOTATION}-)")


def _annotations(record: Record | None) -> dict[str, Any]:
    return {"metadata": {"annotations": {ANNOTATION: record.to_json() if record else None}}}


# -- marking, before a change ----------------------------------------------------------------

def mark_workload(api: Any, kind: str, name: str, namespace: str, record: Record) -> None:
    apps_call(api, "patch", kind)(name, namespace, _annotations(record))


def mark_node(api: Any, name: str, record: Record) -> None:
    """A node is shared by every drill on the cluster (a workload by one, through its target
    Lease): a record of another run on it is never overwritten (FaultError)."""
    core = client.CoreV1Api(api)
    text = (core.read_node(name).metadata.annotations or {}).get(ANNOTATION)
    other = Record.from_json(text) if text else None
    if text and (other is None or other.run != record.run):
        holder = (Leftover("Node", name, "", other).describe() if other
                  else f"Node {name}: an unreadable record")
        raise FaultError(f"node {name} already carries another run's change ({holder}): pick "
                         "another node (spec.fault.node), or wait for that run; 'chaos-drill "
                         "restore' undoes a dead one's")
    core.patch_node(name, _annotations(record))


def mark_pod(api: Any, name: str, namespace: str, record: Record) -> None:
    client.CoreV1Api(api).patch_namespaced_pod(name, namespace, _annotations(record))


# -- undoing ---------------------------------------------------------------------------------

def undo(api: Any, leftover: Leftover, provider: object = None,
         say: Progress = lambda _: None) -> None:
    """Puts the original value back and drops the record, in one patch; a vanished object is
    nothing left to undo. A stopped node or a cut-off pod needs PROVIDER, the one that made the
    change (RestoreError otherwise)."""
    try:
        if leftover.kind in (STOPPED_NODE, PARTITIONED_POD):
            through_provider.undo(api, leftover, provider, say, _annotations(None))
        elif leftover.kind == MEMORY_HOG:
            from chaos.drill.faults.oom_kill import stop_left_hog
            stop_left_hog(leftover, provider, say)
            client.CoreV1Api(api).patch_namespaced_pod(leftover.name, leftover.namespace,
                                                       _annotations(None))
        else:
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

@dataclass
class Findings:
    """The objects carrying a restore record: those that can be undone, and those whose record
    cannot be read."""

    leftovers: list[Leftover] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)


def find(api: Any, namespace: str | None = None) -> Findings:
    """Every object carrying a restore record: workloads and pods in NAMESPACE (or in all
    namespaces), and nodes; a pod labelled PROBER_LABEL is a PROBER_POD, a node node_stop
    took down a STOPPED_NODE."""
    found = Findings()
    core = client.CoreV1Api(api)
    _sort("Node", core.list_node().items, found)
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
        _sort(kind, items, found)
    return found


def _controlled(item: Any) -> bool:
    return any(ref.controller for ref in item.metadata.owner_references or [])


def _sort(kind: str, items: list[Any], found: Findings) -> None:
    """Adds the ITEMS of KIND that carry a record to FOUND, as leftovers or unreadable."""
    for item in items:
        text = (item.metadata.annotations or {}).get(ANNOTATION)
        if text is None:
            continue
        name, namespace = item.metadata.name, item.metadata.namespace or ""
        try:
            record = Record.parse(text, kind)
        except RestoreError as error:
            found.unreadable.append(Unreadable(kind, name, namespace, str(error)))
            continue
        if kind == "Pod" and (item.metadata.labels or {}).get(PROBER_LABEL) == "true":
            kind_found = PROBER_POD
        elif kind == "Node" and record.fault == "node_stop":
            kind_found = STOPPED_NODE
        elif kind == "Pod" and record.fault in CUT_OFF:
            kind_found = PARTITIONED_POD
        elif kind == "Pod" and record.fault == "oom_kill":
            kind_found = MEMORY_HOG
        else:
            kind_found = kind
        found.leftovers.append(Leftover(kind_found, name, namespace, record))


# -- judging and restoring -------------------------------------------------------------------

def judge_runs(api: Any, records: list[Record], say: Progress) -> dict[str, leases.Judgement]:
    """Whether the run behind each record is alive, by run id: one of this process's runs is;
    another is alive while its Lease is (watched until renewed, gone or expired); a record
    without a Lease falls back on a process check on this host."""
    found: dict[str, leases.Judgement] = {}
    places: dict[str, str] = {}
    for record in records:
        if record.run in ACTIVE_RUNS:
            found[record.run] = leases.Judgement(True, "it runs in this process")
        elif record.lease:
            places[record.run] = record.lease
        else:
            alive = record.runs_here()
            found[record.run] = leases.Judgement(alive, "its record names no Lease, and its "
                                                 f"process {'runs' if alive else 'is gone'}")
    judged = leases.judge(api, places.values(), say)
    found.update({run: judged[place] for run, place in places.items() if run not in found})
    return found


@dataclass
class Restored:
    """What a restore pass did: undone, left to live runs (with why), skipped (one line each)."""

    restored: list[Leftover] = field(default_factory=list)
    left: list[tuple[Leftover, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)


def restore_dead_runs(api: Any, namespace: str | None, say: Progress,
                      provider: object = None) -> Restored:
    """Undoes what every dead run left; a live run's changes and prober pod are left to it, a
    record that cannot be read or undone here is skipped with one line; the rest go on. Then
    the expired Leases of dead runs are deleted."""
    findings = find(api, namespace)
    done = Restored(unreadable=findings.unreadable)
    for bad in findings.unreadable:
        say(bad.describe())
        done.skipped.append(bad.describe())
    judged = judge_runs(api, [left.record for left in findings.leftovers], say)
    for left in findings.leftovers:
        verdict = judged[left.record.run]
        if verdict.alive:
            if left.kind != PROBER_POD:
                say(f"leaving {left.describe()}: the run is alive ({verdict.why})")
            done.left.append((left, verdict.why))
            continue
        say(f"restoring {left.describe()}" if left.kind != PROBER_POD
            else f"deleting {left.describe()}")
        try:
            undo(api, left, provider, say)
        except RestoreError as error:
            say(str(error))
            done.skipped.append(str(error))
            continue
        done.restored.append(left)
    leases.sweep(api, namespace)
    return done
