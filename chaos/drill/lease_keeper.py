"""Holding a run's Leases (chaos.drill.leases says what they mean): the body of one, and the
keeper that takes them, renews them every RENEW_SECONDS and releases them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaos.cluster.base import Progress
from chaos.drill.leases import (
    HOLDER_ANNOTATION,
    LABELS,
    LEASE_SECONDS,
    RENEW_SECONDS,
    REQUEST_SECONDS,
    Holder,
    ServerClock,
    judge,
    micro_time,
    run_lease_name,
    target_lease_name,
)
from chaos.errors import SafetyError


def lease_body(name: str, namespace: str, holder: Holder, now: datetime,
               resource_version: str | None = None, transitions: int = 0) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name, "namespace": namespace, "labels": {**LABELS, "chaosdrill.dev/run":
                                                         holder.run},
        "annotations": {HOLDER_ANNOTATION: json.dumps(asdict(holder), separators=(",", ":"))}}
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
            "spec": {"holderIdentity": holder.run, "leaseDurationSeconds": LEASE_SECONDS,
                     "acquireTime": micro_time(now), "renewTime": micro_time(now),
                     "leaseTransitions": transitions}}


class LeaseKeeper:
    """A run's two Leases: `take` creates them (SafetyError, one line, when another live run
    holds the target; an expired holder's is taken over), a thread renews them every
    RENEW_SECONDS, `release` deletes them. ON_LOST is called once if they were taken, deleted,
    or could not be renewed for LEASE_SECONDS: the run must stop, its changes unguarded."""

    def __init__(self, api: Any, namespace: str, holder: Holder, target: tuple[str, str],
                 say: Progress, on_lost: Callable[[str], None]) -> None:
        self.api, self.namespace, self.holder, self.say = api, namespace, holder, say
        self.target = target
        self.on_lost = on_lost
        self.run_name = run_lease_name(holder.run)
        self.target_name = target_lease_name(*target)
        self.clock = ServerClock()
        self.held: dict[str, Any] = {}
        """The Leases held, by name, as the API last returned them."""
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_until_stopped, name="lease-renew",
                                        daemon=True)
        self._coordination = client.CoordinationV1Api(api)

    @property
    def place(self) -> str:
        """namespace/name of the run's Lease, as restore records name it."""
        return f"{self.namespace}/{self.run_name}"

    def take(self) -> None:
        _, _, headers = client.VersionApi(self.api).get_code_with_http_info(
            _request_timeout=REQUEST_SECONDS)
        self.clock.learn(headers)
        self._create(self.run_name)
        try:
            self._take_target()
        except BaseException:
            self.release()
            raise
        self._thread.start()

    def _create(self, name: str) -> None:
        body = lease_body(name, self.namespace, self.holder, self.clock.now())
        lease, _, headers = self._coordination.create_namespaced_lease_with_http_info(
            self.namespace, body, _request_timeout=REQUEST_SECONDS)
        self.clock.learn(headers)
        self.held[name] = lease

    def _take_target(self) -> None:
        """Creates the target Lease; if another run's is there, waits to tell whether that run
        is alive (SafetyError) or dead (its Lease is taken over, its resourceVersion the
        precondition, so of two runs taking it over only one can)."""
        kind, name = self.target
        place = f"{self.namespace}/{self.target_name}"
        for _ in range(5):
            try:
                self._create(self.target_name)
                return
            except ApiException as error:
                if error.status != 409:
                    raise
            verdict = judge(self.api, [place], self.say)[place]
            if verdict.alive:
                holder = Holder.of(verdict.lease) if verdict.lease is not None else None
                who = holder.describe() if holder else "another run"
                raise SafetyError(
                    f"{kind} {self.namespace}/{name} is being drilled by {who}: wait for it "
                    f"to end or stop it (Ctrl-C where it runs, or delete its ChaosDrill); one "
                    f"that died frees it within {LEASE_SECONDS}s (Lease {place})")
            if verdict.lease is not None and self._take_over(verdict.lease):
                self.say(f"took over the target Lease {place} from dead "
                         f"{Holder.of(verdict.lease).describe()}")
                return
        raise SafetyError(f"{kind} {self.namespace}/{name}: its Lease {place} keeps changing "
                          "hands: another drill is starting on it; wait for it and retry")

    def _take_over(self, old: Any) -> bool:
        body = lease_body(self.target_name, self.namespace, self.holder, self.clock.now(),
                          old.metadata.resource_version,
                          int(old.spec.lease_transitions or 0) + 1)
        try:
            lease, _, headers = self._coordination.replace_namespaced_lease_with_http_info(
                self.target_name, self.namespace, body, _request_timeout=REQUEST_SECONDS)
        except ApiException as error:
            if error.status in (404, 409):  # gone or taken meanwhile: look again
                return False
            raise
        self.clock.learn(headers)
        self.held[self.target_name] = lease
        return True

    def _renew_until_stopped(self) -> None:
        """Renews until stopped; gives up (ON_LOST) once a Lease was taken or deleted, or when
        the next renewal would come after the Leases lapse, so the run stops before another
        can take its target."""
        renewed = time.monotonic()
        while not self._stop.wait(RENEW_SECONDS):
            try:
                self.renew()
                renewed = time.monotonic()
                continue
            except ApiException as error:
                if error.status in (404, 409):
                    self._lose(f"its Lease was deleted or taken by another run ({error.status})")
                    return
                why = f"{error.status} {error.reason}"
            except Exception as error:  # the API unreachable: retried while the Leases hold
                why = str(error)
            if time.monotonic() - renewed + RENEW_SECONDS >= LEASE_SECONDS:
                self._lose(f"its Leases could not be renewed for "
                           f"{time.monotonic() - renewed:.0f}s ({why})")
                return

    def renew(self) -> None:
        """Renews both Leases with one renewTime, the run's first, so a target Lease found
        expired means its run's is too. Each update's precondition is the resourceVersion last
        written: a Lease someone else changed is not overwritten (409)."""
        now = self.clock.now()
        for name in (self.run_name, self.target_name):
            old = self.held[name]
            body = lease_body(name, self.namespace, self.holder, now,
                              old.metadata.resource_version, int(old.spec.lease_transitions or 0))
            body["spec"]["acquireTime"] = micro_time(old.spec.acquire_time or now)
            lease, _, headers = self._coordination.replace_namespaced_lease_with_http_info(
                name, self.namespace, body, _request_timeout=RENEW_SECONDS)
            self.clock.learn(headers)
            self.held[name] = lease

    def _lose(self, why: str) -> None:
        self.lost = f"lost its hold on {self.target[0]} {self.namespace}/{self.target[1]}: {why}"
        self.on_lost(self.lost)

    def release(self) -> None:
        """Stops renewing and deletes the Leases still ours (resourceVersion as precondition);
        one that cannot be deleted expires by itself within LEASE_SECONDS."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=REQUEST_SECONDS * 2 + 1)
        for name in (self.target_name, self.run_name):
            lease = self.held.pop(name, None)
            if lease is None:
                continue
            options = client.V1DeleteOptions(preconditions=client.V1Preconditions(
                resource_version=lease.metadata.resource_version))
            try:
                self._coordination.delete_namespaced_lease(name, self.namespace, body=options,
                                                           _request_timeout=REQUEST_SECONDS)
            except ApiException as error:
                if error.status not in (404, 409):
                    self.say(f"could not delete Lease {self.namespace}/{name} ({error.status} "
                             f"{error.reason}): it expires by itself within {LEASE_SECONDS}s")
            except Exception as error:
                self.say(f"could not delete Lease {self.namespace}/{name} ({error}): it expires "
                         f"by itself within {LEASE_SECONDS}s")
