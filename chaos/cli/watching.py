"""The `watch` command: shows a workload live (terminal, and a browser with --web) without
injecting anything, and follows every disruption others cause as an observed incident; with
--out it keeps the journal and writes summary.json, junit.xml and report.html when it stops."""

from __future__ import annotations

import argparse
import contextlib
import math
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from chaos.cli.views import parse_target, serve
from chaos.cluster import kube, providers
from chaos.cluster.base import Progress
from chaos.cluster.kube import Workload
from chaos.drill.resolve import resolve_target
from chaos.drill.signals import SignalStop
from chaos.errors import UsageError
from chaos.monitoring import metrics_server
from chaos.monitoring.drill_metrics import DrillMetrics, for_watch
from chaos.monitoring.metrics_server import MetricsServer
from chaos.observe.observer import Observer
from chaos.results import JOURNAL_NAME, rebuild_results
from chaos.results.journal import Journal
from chaos.view.live import LiveView
from chaos.view.model import ViewModel

UNRECOVERED = "the watch ended before it recovered"


def check_watch_args(args: argparse.Namespace) -> Path | None:
    """--duration and --out as given, refused in one line before anything starts."""
    if args.duration is not None and not args.duration > 0:
        raise UsageError(f"--duration {args.duration:g}: give a number of seconds above 0")
    if not args.out:
        return None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file: give a folder")
    if (out / JOURNAL_NAME).exists():
        raise UsageError(f"{out} already holds a journal: pick another --out")
    return out


def watch_command(args: argparse.Namespace, view: LiveView) -> int:
    """Watches until a signal or --duration; with --out the exit code is the verdict (0 when
    every observed incident recovered), else 0."""
    out = check_watch_args(args)
    target = parse_target(args)
    provider = providers.from_args(args)
    api = kube.api_client(provider.kubeconfig())
    workload = resolve_target(api, args.namespace, target,
                              "--target" if target.name else "--selector")
    shown = (f"{workload.kind} {workload.namespace}/{workload.name}" if target.name else
             f"pods in {workload.namespace}" + (f" with {workload.selector}"
                                                if workload.selector else ""))
    model = ViewModel(f"watching {shown}", mode="watch")
    model.set_workload(workload.kind, workload.name if target.name else "",
                       workload.namespace)
    web = serve(args, model, view.say)  # a bad or taken port is refused before anything
    drill_metrics, server = None, None
    try:
        drill_metrics, server = _metrics(args, workload.namespace, workload.name, view.say)
        _record(api, workload, model, drill_metrics, view, out, args.duration, shown)
    finally:
        if server is not None:
            server.close()
        if web is not None:
            web.close()
    view.say("stopped watching")
    if out is None:
        return 0
    from chaos.cli.commands import verdict  # commands imports views: import here, not above

    return verdict(rebuild_results(out), out, view.say)


def _record(api: Any, workload: Workload, model: ViewModel, drill_metrics: DrillMetrics | None,
            view: LiveView, out: Path | None, duration: float | None, shown: str) -> None:
    """Observes until a signal or DURATION; the journal says how it ended, and results are
    written (into OUT) even when it ends with an error."""
    # Without --out there is nothing to keep: an unnamed file the system removes when closed.
    journal = (Journal.open(out / JOURNAL_NAME) if out else
               Journal(tempfile.TemporaryFile("w+b", buffering=0)))
    stop = threading.Event()
    journal.on_failure = lambda _: stop.set()  # a full disk ends the watch, in one line
    journal.write("watch_started", namespace=workload.namespace,
                  workload=f"{workload.kind}/{workload.name}", selector=workload.selector)
    observer = Observer(api, workload, journal, drill_metrics, record_others=True)
    observer.announce = view.say
    observer.add_listener(model)
    signals = SignalStop(stop, view.say, doing="ending the watch and writing results").start()
    reason = None
    try:
        observer.start()
        view.attach(observer, workload.name, model)
        view.say(f"watching {shown}; no faults; recording what others break"
                 + (f" into {out}" if out else "") + "; Ctrl-C to stop")
        _wait(stop, duration)
    except BaseException as error:
        reason = kube.explain(error) if isinstance(error, Exception) else "interrupted"
        raise
    finally:
        signals.close()
        _finish(observer, journal, reason, drill_metrics)
        if out is not None and reason is not None:
            with contextlib.suppress(Exception):  # the error being raised matters more
                rebuild_results(out)
    journal.check()


def _metrics(args: argparse.Namespace, namespace: str, workload: str,
             say: Progress) -> tuple[DrillMetrics | None, MetricsServer | None]:
    if args.metrics_port is None:
        return None, None
    registry = CollectorRegistry()
    found = for_watch(registry, namespace, workload)
    server = metrics_server.serve(registry, args.metrics_port)
    say(f"metrics on {server.url}")
    found.running(True)
    return found, server


def _wait(stop: threading.Event, duration: float | None) -> None:
    """Until STOP is set or DURATION seconds (None: no limit) have passed."""
    deadline = math.inf if duration is None else time.monotonic() + duration
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        stop.wait(min(0.5, left))


def _finish(observer: Observer, journal: Journal, reason: str | None,
            drill_metrics: DrillMetrics | None) -> None:
    """Closes what is still open, so the journal says how each incident ended."""
    for incident in list(observer.observed.values()):
        observer.close_observed(incident, UNRECOVERED)
    observer.stop()
    if drill_metrics:
        drill_metrics.running(False)
    extra: dict[str, Any] = {"reason": reason} if reason else {}
    journal.write("drill_finished", aborted=reason is not None, **extra)
    journal.close()
