"""The kopf operator: runs a ChaosDrill object applied to the cluster with the same runner as
`chaos-drill run`, and writes progress and results to the object's status. Handlers are thin
and registered in an explicit registry; deleting the object stops the drill and restores. It
runs on a host with a kubeconfig, or in its own pod (chaos.cluster.incluster) with the metrics
of every drill it runs in one registry."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kopf
from kubernetes import client
from prometheus_client import CollectorRegistry

from chaos.cluster import kube
from chaos.cluster.base import ClusterProvider
from chaos.cluster.incluster import InClusterProvider, running_in_cluster
from chaos.cluster.kubeconfig import KubeconfigCluster
from chaos.drill.loading import drill_from_object
from chaos.drill.signals import SignalStop
from chaos.drill.spec import GROUP, PLURAL, VERSION
from chaos.drill.timeline import Incident
from chaos.errors import ChaosDrillError, JournalError, SafetyError, SetupError
from chaos.monitoring import metrics, metrics_server
from chaos.operator import health
from chaos.operator import journal as operator_journal
from chaos.operator.series import Series
from chaos.operator.settings import MAX_ATTEMPTS, Settings
from chaos.results import JOURNAL_NAME, fresh_out_dir
from chaos.results.incidents import IncidentResult
from chaos.results.journal import Journal
from chaos.results.summary import Summary
from chaos.run.runner import DrillRun, RunOptions

FINISHED = ("Passed", "Failed")
registry = kopf.OperatorRegistry()
METRICS = CollectorRegistry()
"""Every drill's metrics, served by `chaos-drill operator --metrics-port`."""
SERIES = Series(METRICS)


def provider() -> ClusterProvider:
    """The pod's own cluster when in one, else $KUBECONFIG's."""
    return InClusterProvider() if running_in_cluster() else KubeconfigCluster()


@kopf.on.login(registry=registry)
def login(**_: Any) -> kopf.ConnectionInfo:
    """Credentials from the pod's ServiceAccount or $KUBECONFIG as read now (kopf's own
    handlers read it at import time, or name the API server by a DNS name)."""
    config = kube.api_client(provider().kubeconfig()).configuration
    scheme, _space, token = ((config.api_key or {}).get("authorization") or "").partition(" ")
    return kopf.ConnectionInfo(
        server=config.host, ca_path=config.ssl_ca_cert, insecure=not config.verify_ssl,
        certificate_path=config.cert_file, private_key_path=config.key_file,
        scheme=scheme or None, token=token or None)


def results_root() -> Path:
    default = "/var/lib/chaos-drill/operator" if os.geteuid() == 0 else "chaos-drill-results"
    return Path(os.environ.get("CHAOS_DRILL_OPERATOR_OUT", default))


def patch_status(api: Any, namespace: str, name: str, status: dict[str, Any]) -> None:
    client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, name, {"status": status})


def final_status(summary: Summary, out: Path) -> dict[str, Any]:
    recovered = [i for i in summary.incidents if i.recovery_seconds is not None]
    return {
        "phase": "Passed" if summary.passed else "Failed",
        "passed": summary.passed,
        "incidents": len(summary.incidents),
        "recovered": len(recovered),
        "recoveryMedianSeconds": summary.recovery.median,
        "availability": summary.availability.ratio,
        "failedChecks": [c.name for c in summary.slo_checks if not c.passed],
        "resultsDir": str(out),
        "timeline": [incident_status(i) for i in summary.incidents[:MAX_TIMELINE]],
    }


MAX_TIMELINE = 20
"""Incidents whose phases the status lists (the journal has them all)."""


def incident_status(incident: IncidentResult) -> dict[str, Any]:
    """One incident in the status: its phases in seconds after the injection, and, for load,
    the scale-in time and the peak replicas."""
    entry: dict[str, Any] = {"round": incident.round, "fault": incident.fault,
                             "phases": dict(incident.phases),
                             "recoverySeconds": incident.recovery_seconds}
    if incident.scale_in_seconds is not None:
        entry["scaleInSeconds"] = incident.scale_in_seconds
    if incident.peak_replicas is not None:
        entry["peakReplicas"] = incident.peak_replicas
    return entry


class Drills:
    """The drills this process runs, so that a stopping operator first stops each (it restores
    what it changed) and only then lets kopf leave the peering to the standby."""

    def __init__(self) -> None:
        self.stopping = False
        self._stops: set[threading.Event] = set()
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def running(self, stop: threading.Event) -> Iterator[None]:
        with self._changed:
            if self.stopping:
                stop.set()
            self._stops.add(stop)
        try:
            yield
        finally:
            with self._changed:
                self._stops.discard(stop)
                self._changed.notify_all()

    def stop_all(self, timeout: float) -> bool:
        """Stops every drill; True once all have ended (restored), False after TIMEOUT."""
        with self._changed:
            self.stopping = True
            for stop in self._stops:
                stop.set()
            return self._changed.wait_for(lambda: not self._stops, timeout)


DRILLS = Drills()
SHUTDOWN_WAIT = 20.0
"""Seconds a stopping operator gives its drills to restore (the pod's grace period is 30 s)."""
KOPF_STOP_WAIT = 8.0
"""Seconds kopf then has to stop (its drills have ended) and leave the peering."""


DELETION_POLL_SECONDS = 1.0
"""How often kopf checks whether a deleted object's drill has ended (restored), to release it.
kopf never cancels the drill's thread: with a cancellation timeout it would re-check only when
the timeout ran out (or another event came), holding a deleted ChaosDrill for a minute."""


@kopf.daemon(GROUP, VERSION, PLURAL, registry=registry,
             cancellation_polling=DELETION_POLL_SECONDS)
def run_drill(body: kopf.Body, name: str, namespace: str | None, uid: str,
              stopped: kopf.DaemonStopped, logger: Any, **_: Any) -> None:
    """One drill per object: a finished object (Passed/Failed) is left alone; an attempt whose
    operator stopped is run again from the start by the next active operator (what it changed
    was restored, by itself or by the next attempt's restore records); deletion stops it."""
    status = body.get("status") or {}
    if status.get("phase") in FINISHED or namespace is None or DRILLS.stopping:
        return
    cluster = provider()
    api = kube.api_client(cluster.kubeconfig())
    attempt = int(status.get("attempts") or 0) + 1
    if attempt > MAX_ATTEMPTS:
        patch_status(api, namespace, name, {
            "phase": "Failed", "passed": False, "message": f"its operator stopped during each "
            f"of {MAX_ATTEMPTS} attempts: see the operator's logs, then apply it again"})
        return
    settings = Settings.from_env()
    out = fresh_out_dir(results_root() / f"{namespace}-{name}-{uid[:8]}")  # restarted: -2
    place = operator_journal.Place.of(namespace, name, uid, attempt, out)
    counts = {"incidents": 0, "recovered": 0}

    def on_incident(incident: Incident) -> None:
        counts["incidents"] += 1
        counts["recovered"] += 1 if incident.recovered else 0
        place.keep(api)
        patch_status(api, namespace, name, {"phase": "Running", **counts})

    options = run_options(out, settings, on_incident)

    def stop_when_stopped() -> None:
        stopped.wait()  # waits until stopped: a daemon thread, ended with the drill
        options.stop.set()

    threading.Thread(target=stop_when_stopped, daemon=True).start()
    patch_status(api, namespace, name, {
        "phase": "Running", "attempts": attempt, "operator": socket.gethostname(),
        "message": None, "reason": None, "resultsDir": str(out), "journal": place.status(),
        **counts})
    try:
        drill = drill_from_object(body)
        options.metrics = SERIES.take(uid, drill)
        with DRILLS.running(options.stop):
            summary = DrillRun(drill, cluster, options, logger.info).run()
    except (ChaosDrillError, *kube.USER_ERRORS) as error:  # a Failed status, never a retry loop
        failed(api, namespace, name, place, error)
        return
    finally:
        deleted = bool(stopped.reason and stopped.reason
                       & kopf.DaemonStoppingReason.RESOURCE_DELETED)
        SERIES.release(uid, 0 if deleted else settings.metrics_linger_seconds)
    try:
        place.keep(api)
    except JournalError as error:
        failed(api, namespace, name, place, error)
        return
    if not stopped and not DRILLS.stopping:
        patch_status(api, namespace, name, final_status(summary, out))
    elif not deleted:
        patch_status(api, namespace, name, {"message": f"attempt {attempt} stopped with its "
                                            f"operator {socket.gethostname()}; what it changed "
                                            "is restored; the next active operator runs it "
                                            "again"})


def run_options(out: Path, settings: Settings,
                on_incident: Callable[[Incident], None]) -> RunOptions:
    """How the operator runs a drill: its node policy, and a journal whose failure line says
    what an operator's user can do."""
    return RunOptions(out_dir=out, on_incident=on_incident, node_policy=settings.node_policy(),
                      journal_remedy=operator_journal.REMEDY)


def failed(api: Any, namespace: str, name: str, place: operator_journal.Place,
           error: Exception) -> None:
    """A drill that cannot go on: its one line in the journal and the status; a refusal (a
    safety check, before anything changed) is reason Refused."""
    message = kube.explain(error)
    event = "drill_refused" if isinstance(error, SafetyError) else "drill_failed"
    path = place.out / JOURNAL_NAME
    if not path.exists() or path.stat().st_size == 0:  # refused before the run began
        with Journal.open(path) as journal:
            journal.write(event, message=message)
    with contextlib.suppress(JournalError):  # the error that stopped the drill says more
        place.keep(api)
    patch_status(api, namespace, name, {
        "phase": "Failed", "passed": False, "message": message,
        "reason": "Refused" if isinstance(error, SafetyError) else "Error"})


@kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
def forget_deleted(event: kopf.RawEvent, uid: str, **_: Any) -> None:
    """A deleted ChaosDrill's series leave the exporter at once (also a finished one's)."""
    if event.get("type") == "DELETED":
        SERIES.release(uid)


PEERING_LIFETIME = 15


def seniority(now: float | None = None) -> int:
    """A peering priority that is higher the earlier the process started; random below the
    second, so two replicas started together still differ."""
    started = int(time.time() if now is None else now)
    return (2**31 - started) * 1000 + random.randint(0, 999)


def run(namespaces: list[str], metrics_port: int | None = None, metrics_host: str = "127.0.0.1",
        peering: str | None = None, health_port: int | None = None) -> None:
    """Runs the operator until SIGTERM or SIGINT (a second one quits at once). With PEERING,
    operators of that ClusterKopfPeering take turns: exactly one is active, the oldest, so a
    replica that starts later never takes a running drill over; a peer that died unannounced
    counts for PEERING_LIFETIME seconds. kopf runs in a thread of its own, so the signal comes
    here first: the drills stop and restore while this operator still holds the peering, and
    only then does kopf stop and hand over (kopf's own handler would leave the peering at once,
    and the standby's next attempt would race this one's restore)."""
    Settings.from_env()  # a bad setting stops the operator here, in one line
    metrics.register_families(METRICS)
    server = metrics_server.serve(METRICS, metrics_port, metrics_host) if metrics_port else None
    kopf_loop = health.KopfLoop()
    try:
        prober = health.serve(kopf_loop.alive, health_port) if health_port else None
    except SetupError:
        if server:
            server.close()
        raise
    settings = kopf.OperatorSettings()
    settings.peering.lifetime = PEERING_LIFETIME
    shutdown, kopf_stop = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    async def kopf_operator() -> None:
        kopf_loop.loop = asyncio.get_running_loop()
        await kopf.operator(registry=registry, namespaces=namespaces, clusterwide=not namespaces,
                            standalone=peering is None, peering_name=peering, settings=settings,
                            priority=seniority(), stop_flag=kopf_stop)

    def operate() -> None:
        try:
            asyncio.run(kopf_operator())  # as kopf.run() does
        except asyncio.CancelledError:
            pass
        except BaseException as error:  # raised again in the main thread
            failures.append(error)

    kopf_thread = threading.Thread(target=operate, name="kopf", daemon=True)
    signals = SignalStop(shutdown, say, doing="stopping its drills, which restore what they "
                         "changed, then leaving the peering").start()
    try:
        kopf_thread.start()
        while kopf_thread.is_alive() and not shutdown.wait(1):
            pass
        if shutdown.is_set() and not DRILLS.stop_all(SHUTDOWN_WAIT):
            say(f"drills still restoring after {SHUTDOWN_WAIT:.0f}s: stopping anyway; the next "
                "active operator undoes what they left")
        kopf_stop.set()
        kopf_thread.join(KOPF_STOP_WAIT)
        if kopf_thread.is_alive():
            say(f"kopf still stopping after {KOPF_STOP_WAIT:.0f}s: exiting anyway")
    finally:
        signals.close()
        for each in (server, prober):
            if each:
                each.close()
    if failures:
        raise failures[0]


def say(message: str) -> None:
    print(f"chaos-drill operator: {message}", file=sys.stderr, flush=True)
