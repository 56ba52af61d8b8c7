"""Steady state, the condition before every round and after the last: every pod of the
workload available, none terminating, as many as desired, the workload's status (and an HPA's)
caught up, and the watch caught up with the API, so a replica change just made (a restore of a
dead run's scale, say) is never mistaken for the state before it. A part DrillRun inherits."""

from __future__ import annotations

import time
from typing import Any

from chaos.cluster import kube
from chaos.cluster.kube import WORKLOAD_KINDS, Workload
from chaos.drill.targeting import PodInfo
from chaos.errors import SafetyError
from chaos.observe.observer import Observer
from chaos.results.journal import Journal

STEADY_GRACE_SECONDS = 10.0
AUTOSCALER_SYNC_SECONDS = 15.0
"""The HPA controller's default sync period: how long its status may lag the pods."""
CATCH_UP_POLL_SECONDS = 0.2


class SteadyState:
    """Needs the run's api, workload, observer and journal."""

    api: Any
    workload: Workload
    observer: Observer
    journal: Journal

    def _steady(self) -> bool:
        """Every pod of the workload available, none terminating, and as many as desired."""
        pods = [PodInfo.from_dict(p) for p in self.observer.tracker.pods.values()]
        if not pods or not all(p.available for p in pods):
            return False
        status = self.observer.workload_status
        if self.workload.kind in WORKLOAD_KINDS:
            return status.get("desired") == status.get("ready") == len(pods)
        return True

    def _check_steady(self, grace: float) -> None:
        """Waits up to GRACE seconds (on watch events) for steady state, else refuses."""
        if not self._wait_steady(grace):
            status = self.observer.workload_status
            pods = len(self.observer.tracker.pods)
            raise SafetyError(
                f"{self.workload.kind} {self.workload.namespace}/{self.workload.name} "
                f"is not steady ({status.get('ready', '?')}/"
                f"{status.get('desired', '?')} Ready, {pods} pods): wait for it to "
                "recover or fix it before drilling")

    def _autoscaler_settled(self) -> bool:
        """No autoscaler followed, or its status counts the replicas it wants (it catches up on
        its next sync, after the pods have)."""
        status = self.observer.autoscaler_status
        return not status or status.get("current") == status.get("desired")

    def _wait_steady(self, timeout: float, autoscaler: bool = False) -> bool:
        """Waits up to TIMEOUT seconds (on watch events) for steady state (and with AUTOSCALER
        for the autoscaler's status to catch up), as the API has the workload now; True if
        reached."""
        deadline = time.monotonic() + timeout
        while True:
            with self.observer.changed:
                while not (self._steady() and (not autoscaler or self._autoscaler_settled())):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self.observer.changed.wait(min(left, 1.0))
                seen = self.observer.workload_status.get("desired")
            if self._watch_caught_up(seen):
                return True
            if time.monotonic() >= deadline:
                return False
            with self.observer.changed:  # the watch is behind: its next event wakes us
                self.observer.changed.wait(min(CATCH_UP_POLL_SECONDS,
                                               max(0.0, deadline - time.monotonic())))

    def _watch_caught_up(self, seen_desired: int | None) -> bool:
        """The replicas the watch last saw are the API's now: a replica change of ours (a
        restore just before) that the watch has not delivered yet must not pass as steady."""
        w = self.workload
        if w.kind not in WORKLOAD_KINDS:
            return True
        return kube.desired_replicas(self.api, w.namespace, w.kind, w.name) == seen_desired

    def _steady_after(self) -> None:
        """The after-check: the workload's own status catches up with its pods' (the Deployment
        controller counts a Ready pod a moment later), so the journal and the replica metrics
        end on the healed state rather than on the last incident's; so does an HPA's."""
        allowance = AUTOSCALER_SYNC_SECONDS if self.observer.autoscaler_status else 0.0
        steady = self._wait_steady(STEADY_GRACE_SECONDS + allowance, autoscaler=True)
        self.journal.write("steady_after", steady=steady, **self.observer.workload_status)
