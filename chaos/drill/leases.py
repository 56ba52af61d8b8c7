"""Leases (coordination.k8s.io/v1) that tell every machine the same thing: which runs are alive
and which targets are taken. A run holds two in its target's namespace, renewed every
RENEW_SECONDS and deleted when it ends: its run Lease (`chaos-drill-run-ID`), which its restore
records name, and its target Lease (`chaos-drill-target-KIND-NAME`), which the API server lets
only one run create, so two drills never change one workload at once.

A Lease whose renewTime is more than leaseDurationSeconds old is expired: its run died. Time is
the API server's (its Date header), both when a run writes renewTime and when anyone judges
one, so the machines' clocks need not agree. One look cannot tell a live run from one killed a
moment ago, so `judge` watches an unexpired Lease until it is renewed (alive), deleted or
expired (dead): at most its duration, LEASE_SECONDS for chaos-drill's own. A Lease held by a
process of this machine's PID space that has ended is dead at once."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import string
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaos.cluster import processes
from chaos.cluster.base import Progress

LEASE_SECONDS = 20
"""leaseDurationSeconds of a run's Leases: a run that died frees its target within this."""
RENEW_SECONDS = 5.0
POLL_SECONDS = 0.5
"""How often `judge` reads a Lease it watches."""
MAX_WATCH_SECONDS = LEASE_SECONDS + 2 * RENEW_SECONDS
"""The longest `judge` watches one Lease; one still undecided then (a duration set longer by
someone else) counts as alive."""
REQUEST_SECONDS = 10
RUN_PREFIX = "chaos-drill-run-"
TARGET_PREFIX = "chaos-drill-target-"
MAX_NAME = 63
DNS_CHARACTERS = frozenset(string.ascii_lowercase + string.digits + "-")
HOLDER_ANNOTATION = "chaosdrill.dev/holder"
"""On each Lease: who holds it (Holder as JSON), for messages that name the other run."""
LABELS = {"app.kubernetes.io/managed-by": "chaos-drill"}


# -- names -----------------------------------------------------------------------------------

def run_lease_name(run_id: str) -> str:
    return _dns_name(RUN_PREFIX, run_id.lower())


def target_lease_name(kind: str, name: str) -> str:
    """The Lease that says a drill runs on the workload KIND/NAME (for a label selector, kind
    Pods and NAME the selector); a valid DNS label, the tail hashed when it would be too long."""
    return _dns_name(TARGET_PREFIX, f"{kind}-{name}".lower())


def _dns_name(prefix: str, key: str) -> str:
    """PREFIX and KEY as a DNS label; when KEY had to change (characters a label cannot hold,
    or too long), a hash of it goes on the end, so different keys never share a name."""
    clean = "".join(c if c in DNS_CHARACTERS else "-" for c in key).strip("-")
    if len(prefix) + len(clean) <= MAX_NAME and clean == key:
        return prefix + clean
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    room = MAX_NAME - len(prefix) - len(digest) - 1
    return f"{prefix}{clean[:room].rstrip('-')}-{digest}"


# -- time ------------------------------------------------------------------------------------

def micro_time(when: datetime) -> str:
    """WHEN as a Kubernetes MicroTime: always six decimals (the API server needs them)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def server_date(headers: Any) -> datetime | None:
    """The API server's clock from a response's Date header (whole seconds, rounded down)."""
    text = headers.get("Date") if headers is not None else None
    try:
        return parsedate_to_datetime(text).astimezone(UTC) if text else None
    except (TypeError, ValueError):
        return None


def expires_at(spec: Any) -> datetime | None:
    """When a Lease SPEC (V1LeaseSpec) lapses unless renewed; None if it says no time."""
    renewed: datetime | None = spec.renew_time or spec.acquire_time
    if renewed is None or not spec.lease_duration_seconds:
        return None
    return renewed.astimezone(UTC) + timedelta(seconds=int(spec.lease_duration_seconds))


def expired(spec: Any, now: datetime) -> bool:
    """A Lease with no renewal time or duration never held anything: expired."""
    end = expires_at(spec)
    return end is None or end <= now


class ServerClock:
    """The API server's time, from the offset its Date headers show against this machine's
    clock (half a second added: the header rounds down)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def learn(self, headers: Any) -> None:
        date = server_date(headers)
        if date is not None:
            self.offset = (date - datetime.now(UTC)).total_seconds() + 0.5

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset)


# -- who holds a Lease -----------------------------------------------------------------------

@dataclass(frozen=True)
class Holder:
    """The run that holds a Lease, as its messages name it."""

    run: str
    drill: str
    host: str
    pid: int
    since: str
    space: str = ""
    """The PID space the pid is of (pid_space()); empty in older Leases."""
    start: int = 0
    """The process's start time (clock ticks since boot), so a reused pid is not taken for it."""

    @classmethod
    def this_process(cls, run: str, drill: str) -> Holder:
        return cls(run, drill, socket.gethostname(), os.getpid(),
                   datetime.now(UTC).isoformat(timespec="seconds"), pid_space(),
                   processes.start_time_of(os.getpid()) or 0)

    @classmethod
    def of(cls, lease: Any) -> Holder:
        """The holder a Lease names; from holderIdentity alone if its annotation is unreadable."""
        text = (lease.metadata.annotations or {}).get(HOLDER_ANNOTATION, "")
        try:
            data = json.loads(text)
            return cls(str(data["run"]), str(data["drill"]), str(data["host"]),
                       int(data["pid"]), str(data["since"]), str(data.get("space", "")),
                       int(data.get("start", 0)))
        except (ValueError, KeyError, TypeError):
            return cls(str(lease.spec.holder_identity or "?"), "?", "?", 0, "?")

    def describe(self) -> str:
        return (f"run {self.run} (drill {self.drill}, pid {self.pid} on {self.host}, "
                f"since {self.since})")

    def gone_from_here(self) -> bool:
        """The holder ran in this machine's PID space (same boot, same PID namespace) and that
        process has ended: its run is dead, whatever its Lease still says."""
        return (bool(self.space) and self.space == pid_space() and self.start > 0
                and processes.start_time_of(self.pid) != self.start)


def pid_space() -> str:
    """This boot of this machine and this PID namespace: where a pid names one process."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{boot}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return ""


# -- judging a Lease -------------------------------------------------------------------------

@dataclass(frozen=True)
class Judgement:
    """Whether the run behind a Lease is alive, and why, in words for a message."""

    alive: bool
    why: str
    lease: Any = None
    """The Lease as last read (None once gone)."""


def decide(first: Any, lease: Any, now: datetime) -> Judgement | None:
    """The judgement on LEASE (None: deleted) read at NOW, FIRST being how it was when the
    watch began; None while it cannot tell yet (unexpired, and not renewed since)."""
    if lease is None:
        return Judgement(False, "its Lease is gone")
    if expired(lease.spec, now):
        end = expires_at(lease.spec)
        ago = f" {(now - end).total_seconds():.0f}s ago" if end else ""
        return Judgement(False, f"its Lease expired{ago}", lease)
    if first is not None and lease.metadata.resource_version != first.metadata.resource_version:
        return Judgement(True, "its Lease is being renewed", lease)
    return None


def read(api: Any, namespace: str, name: str) -> tuple[Any, datetime]:
    """The Lease (None if there is none) and the API server's time of the answer."""
    coordination = client.CoordinationV1Api(api)
    try:
        lease, _status, headers = coordination.read_namespaced_lease_with_http_info(
            name, namespace, _request_timeout=REQUEST_SECONDS)
    except ApiException as error:
        if error.status != 404:
            raise
        return None, server_date(error.headers) or datetime.now(UTC)
    return lease, server_date(headers) or datetime.now(UTC)


def judge(api: Any, places: Iterable[str], say: Progress,
          sleep: Callable[[float], None] = time.sleep) -> dict[str, Judgement]:
    """For each Lease "namespace/name" in PLACES: alive or not. Unexpired ones are watched
    together until each is renewed, deleted or expired; a Lease that cannot be read counts as
    alive (nothing is undone on a guess)."""
    pending: dict[str, Any] = {}
    found: dict[str, Judgement] = {}
    deadline = time.monotonic() + MAX_WATCH_SECONDS
    for place in dict.fromkeys(places):
        pending[place] = None
    while pending:
        for place, first in list(pending.items()):
            namespace, _, name = place.partition("/")
            try:
                lease, now = read(api, namespace, name)
            except ApiException as error:
                found[place] = Judgement(True, f"its Lease {place} cannot be read "
                                               f"({error.status} {error.reason})")
                del pending[place]
                continue
            verdict = decide(first, lease, now)
            holder = Holder.of(lease) if lease is not None else None
            if verdict is None and holder is not None and holder.gone_from_here():
                verdict = Judgement(False, f"its run's process (pid {holder.pid}) on this "
                                           "machine has ended", lease)
            if verdict is not None:
                found[place] = verdict
                del pending[place]
            elif first is None:
                pending[place] = lease
                end = expires_at(lease.spec)
                left = f"{(end - now).total_seconds():.0f}s" if end else "a while"
                say(f"watching Lease {place} (expires in {left} unless renewed) to tell whether "
                    f"{Holder.of(lease).describe()} is alive")
        if pending and time.monotonic() > deadline:
            for place, lease in pending.items():
                found[place] = Judgement(True, f"its Lease {place} neither renewed nor expired "
                                               f"in {MAX_WATCH_SECONDS:.0f}s", lease)
            break
        if pending:
            sleep(POLL_SECONDS)
    return found


def expired_ones(found: Iterable[Any], now: datetime) -> list[Any]:
    """The Leases among FOUND that have expired at NOW: their runs are dead."""
    return [lease for lease in found if expired(lease.spec, now)]


def sweep(api: Any, namespace: str | None) -> list[str]:
    """Deletes chaos-drill's expired Leases in NAMESPACE (or in all namespaces), each only as it
    was read (resourceVersion as precondition): a run killed outright cannot delete its own.
    Gone or expired say the same (dead), so nothing changes its verdict. Their names."""
    coordination = client.CoordinationV1Api(api)
    selector = ",".join(f"{k}={v}" for k, v in LABELS.items())
    if namespace:
        found, _, headers = coordination.list_namespaced_lease_with_http_info(
            namespace, label_selector=selector, _request_timeout=REQUEST_SECONDS)
    else:
        found, _, headers = coordination.list_lease_for_all_namespaces_with_http_info(
            label_selector=selector, _request_timeout=REQUEST_SECONDS)
    now = server_date(headers) or datetime.now(UTC)
    deleted = []
    for lease in expired_ones(found.items, now):
        meta = lease.metadata
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(
            resource_version=meta.resource_version))
        try:
            coordination.delete_namespaced_lease(meta.name, meta.namespace, body=options,
                                                 _request_timeout=REQUEST_SECONDS)
        except ApiException as error:
            if error.status not in (404, 409):  # gone, or renewed or taken meanwhile
                raise
            continue
        deleted.append(f"{meta.namespace}/{meta.name}")
    return deleted
