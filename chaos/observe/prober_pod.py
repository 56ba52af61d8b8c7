"""The open-loop prober run where the traffic is: a restricted pod in the target namespace runs
`python3.11 -m chaos.observe.prober URL` from the operator image, and PodProber follows its log,
one JSON line per second, with the same callbacks and counts as the host's Prober.

Time base: the pod's slot 0 is put on this process's monotonic clock as its wall time (the pod's
`time.time()` at slot 0) minus this process's `time.time() - time.monotonic()`, measured once, so
it is exact when both clocks agree (one machine, or NTP). The delay from that slot 0 to the
arrival here of the `started` line bounds from above how far apart the two clocks can be seen."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from chaos.drill import restore
from chaos.errors import ClusterError
from chaos.observe.probe_lines import parse_line, slot_outcomes, window_from
from chaos.observe.prober import OnRequest, OnWindow

CONTAINER, USER = "prober", 65532
IMAGE_ENV = "CHAOS_DRILL_PROBER_IMAGE"
"""Names the prober's image where it cannot be built (the operator's own pod)."""
START_TIMEOUT, STOP_TIMEOUT = 120.0, 15.0


def grace_seconds(timeout: float) -> int:
    """Time a stopping prober needs to wait for its requests (up to the timeout + 2 s), print."""
    return int(timeout) + 5
HOPELESS = ("ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff", "InvalidImageName",
            "CreateContainerConfigError", "CreateContainerError", "RunContainerError")
"""Waiting reasons a prober pod never gets past by itself."""
IMAGE_FIX = "run 'chaos-drill operator install' or load the image"
CONTROL_PLANE = "node-role.kubernetes.io/control-plane"
AWAY_FROM_NODE_FAULTS = {
    "tolerations": [{"key": CONTROL_PLANE, "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchExpressions": [
            {"key": CONTROL_PLANE, "operator": "Exists"}]}}]}},
}
"""A control-plane node where the cluster shows one: node faults never pick it, so a stopped or
drained node does not take the prober (and every figure) with it; any node otherwise."""


def pod_name(run_id: str) -> str:
    return f"chaosdrill-prober-{run_id}"


def prober_pod_manifest(run_id: str, namespace: str, url: str, rate: float, timeout: float,
                        image: str, deadline_seconds: int,
                        record: restore.Record | None = None) -> dict[str, Any]:
    """The prober Pod: restricted Pod Security, no API token, bounded resources, its deadline a
    backstop; its restore record lets `chaos-drill restore` remove it after a SIGKILL."""
    record = record or restore.Record.now(run_id, "probe", None)
    labels = {restore.PROBER_LABEL: "true", restore.RUN_LABEL: run_id,
              "app.kubernetes.io/name": "chaos-drill"}  # targeting.OWN_LABEL: never a target
    container = {
        "name": CONTAINER, "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["/usr/bin/python3.11", "-m", "chaos.observe.prober", url,
                    "--rate", f"{rate:g}", "--timeout", f"{timeout:g}"],
        "env": [{"name": "PYTHONPATH", "value": "/app/src:/app/lib"},  # chaos/ in the image
                {"name": "PYTHONUNBUFFERED", "value": "1"}, {"name": "HOME", "value": "/tmp"}],
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # the image's working directory
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                      "limits": {"cpu": "500m", "memory": "128Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
                            "runAsUser": USER, "seccompProfile": {"type": "RuntimeDefault"}}}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name(run_id), "namespace": namespace, "labels": labels,
                         "annotations": {restore.ANNOTATION: record.to_json()}},
            "spec": {"restartPolicy": "Never", "activeDeadlineSeconds": int(deadline_seconds),
                     "terminationGracePeriodSeconds": grace_seconds(timeout),
                     "automountServiceAccountToken": False, "enableServiceLinks": False,
                     "containers": [container], **AWAY_FROM_NODE_FAULTS,
                     "securityContext": {"runAsNonRoot": True, "runAsUser": USER,
                                         "runAsGroup": USER,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                     "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "8Mi"}}]}}


@dataclass(frozen=True)
class TimeBase:
    slot_zero: float
    """The pod's slot 0 on this process's monotonic clock."""
    skew_bound: float
    """Seconds from that slot 0 until the started line arrived here."""


def time_base(pod_wall: float, arrived: float, offset: float) -> TimeBase:
    """POD_WALL (the pod's time.time() at slot 0) on the monotonic clock, given this process's
    OFFSET (time.time() - time.monotonic()) and ARRIVED, when its started line came."""
    slot_zero = pod_wall - offset
    return TimeBase(slot_zero, arrived - slot_zero)


def pod_problem(pod: dict[str, Any]) -> tuple[str, bool]:
    """The state of a pod not running (a camelCase dict), and whether it never will run."""
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        if "terminated" in state:
            ended = state["terminated"]
            return f"exited ({ended.get('reason')}, exit {ended.get('exitCode')})", True
        if "waiting" in state:
            reason, message = state["waiting"].get("reason"), state["waiting"].get("message")
            return f"{reason}: {message}" if message else str(reason), reason in HOPELESS
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return f"unschedulable: {condition.get('message') or condition.get('reason')}", False
    phase = status.get("phase") or "Pending"
    return phase, phase in ("Failed", "Succeeded")


class PodProber:
    """Probes URL from a pod in NAMESPACE until stop(); counts as Prober does."""

    def __init__(self, api: Any, run_id: str, namespace: str, url: str, rate_per_second: float,
                 timeout_seconds: float, image: str, deadline_seconds: int,
                 on_request: OnRequest, on_window: OnWindow) -> None:
        self.api, self.namespace, self.name = api, namespace, pod_name(run_id)
        self.rate, self.image = rate_per_second, image
        self.grace = grace_seconds(timeout_seconds)
        self.manifest = prober_pod_manifest(run_id, namespace, url, rate_per_second,
                                            timeout_seconds, image, deadline_seconds)
        self.on_request, self.on_window = on_request, on_window
        self.requests = self.failures = self.garbage = 0
        self.longest_outage = 0.0
        self.time_base: TimeBase | None = None
        self.last_garbage = ""
        self._offset = time.time() - time.monotonic()  # measured once: see the module's doc
        self._last_start = float("-inf")
        self._started, self._stopped, self._closed = (threading.Event(), threading.Event(),
                                                      threading.Event())
        self._thread = threading.Thread(target=self._follow, name="pod-prober", daemon=True)

    @property
    def start_mono(self) -> float:
        """The pod's slot 0 on this process's monotonic clock (windows are placed from it)."""
        return self.time_base.slot_zero if self.time_base else time.monotonic()

    @property
    def _core(self) -> Any:
        return client.CoreV1Api(self.api)

    def start(self, timeout: float = START_TIMEOUT) -> PodProber:
        """Creates the pod; returns once it probes, else raises a one-line ClusterError, the
        pod deleted."""
        deadline, where = time.monotonic() + timeout, f"prober pod {self.namespace}/{self.name}"
        try:
            self._core.create_namespaced_pod(self.namespace, self.manifest)
            while (pod := self.api.sanitize_for_serialization(self._core.read_namespaced_pod(
                    self.name, self.namespace))).get("status", {}).get("phase") != "Running":
                state, hopeless = pod_problem(pod)
                if hopeless or time.monotonic() > deadline:
                    fix = (f"{IMAGE_FIX} {self.image}" if "Image" in state
                           else "fix that, or set spec.probe.from: host")
                    raise ClusterError(f"{where} cannot start ({state[:300]}): {fix}")
                time.sleep(0.2)
            self._thread.start()
            while not self._started.wait(0.2):
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    said = f" (it said {self.last_garbage[:200]!r})" if self.last_garbage else ""
                    raise ClusterError(f"{where} did not start probing{said}: check that "
                                       f"{self.image} holds chaos/observe/prober.py")
        except BaseException:
            self._closed.set()
            self._delete(0)
            raise
        return self

    def stop(self) -> None:
        """Deletes the pod with a grace period, so it prints its last windows, reads them
        (bounded), and makes sure the pod is gone: a one-line ClusterError if it may not be."""
        try:
            self._delete(self.grace)
            if self._thread.ident is not None:
                self._thread.join(self.grace + STOP_TIMEOUT)
        finally:
            self._closed.set()  # nothing is heard from now on: the run is ending
            try:
                self._delete(0)
            except Exception as error:
                raise ClusterError(f"could not delete prober pod {self.namespace}/{self.name} "
                                   f"({error}): run 'chaos-drill restore --namespace "
                                   f"{self.namespace}'") from None

    def _delete(self, grace: int) -> None:
        try:
            self._core.delete_namespaced_pod(self.name, self.namespace,
                                             grace_period_seconds=grace)
        except ApiException as error:
            if error.status != 404:
                raise

    def _follow(self) -> None:
        """Follows the log until the stopped line or the pod's end; follows it again from the
        start when the stream breaks (windows already seen are skipped)."""
        while not (self._stopped.is_set() or self._closed.is_set()):
            try:
                response = self._core.read_namespaced_pod_log(
                    self.name, self.namespace, container=CONTAINER, follow=True,
                    _preload_content=False, _request_timeout=(10, 30))
                for line in iter_resp_lines(response):
                    self.feed(line)
                if self._core.read_namespaced_pod(self.name, self.namespace).status.phase in (
                        "Succeeded", "Failed"):
                    return
            except ApiException as error:
                if error.status == 404:
                    return
            except Exception:  # a broken or timed-out stream: follow it again
                pass
            self._closed.wait(1.0)

    def feed(self, line: str | bytes) -> None:
        """Handles one output line: the time base, a window (once), the end, garbage counted."""
        parsed = parse_line(line)
        if self._closed.is_set():
            return
        if parsed.kind == "started" and self.time_base is None:
            self.time_base = time_base(float(parsed.data["wall"]), time.monotonic(),
                                       self._offset)
            self._started.set()
        elif parsed.kind == "window":
            start = parsed.data.get("start_seconds")
            start = float(start) if isinstance(start, int | float) else self._last_start + 1
            if start <= self._last_start:
                return
            window = window_from(parsed.data)
            if window is None:
                self.garbage += 1
                return
            self._last_start = start
            self.requests += window.requests
            self.failures += window.failures
            self.longest_outage = max(self.longest_outage, window.longest_outage_seconds)
            for ok in slot_outcomes(parsed.data, self.rate):
                self.on_request(ok, 0.0)  # each slot's latency stays in the pod's histogram
            self.on_window(window)
        elif parsed.kind == "stopped":
            self._stopped.set()
        elif parsed.kind == "garbage":
            self.garbage += 1
            text = line.decode(errors="replace") if isinstance(line, bytes) else line
            self.last_garbage = text.strip()
