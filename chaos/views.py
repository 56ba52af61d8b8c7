"""Wiring of the live views for the commands: the view model a drill run feeds, the web server
behind `--web PORT`, and the `watch` command, which shows a workload live without injecting."""

from __future__ import annotations

import argparse
import ipaddress
import tempfile
import threading
from types import MappingProxyType

from chaos import kube
from chaos.cluster import providers
from chaos.cluster.base import Progress
from chaos.errors import UsageError
from chaos.kube import WORKLOAD_KINDS
from chaos.live import LiveView
from chaos.observe.observer import Observer
from chaos.results.journal import Journal
from chaos.runner import DrillRun, resolve_target
from chaos.signals import SignalStop
from chaos.spec import Drill, Target
from chaos.view.model import ViewModel
from chaos.view.web import WebView


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(args: argparse.Namespace, model: ViewModel, say: Progress) -> WebView | None:
    """The web view if --web was given, after a warning for a non-loopback --web-host."""
    if getattr(args, "web", None) is None:
        return None
    host = args.web_host
    web = WebView(model, args.web, host)
    if not is_loopback(host):
        say(f"warning: the live page listens on {host}: anyone who can reach this machine "
            "sees it (read-only); use --web-host 127.0.0.1 to keep it local")
    say(f"live page on {web.url}")
    return web


def model_for_drill(drill: Drill) -> ViewModel:
    model = ViewModel(f"drill {drill.name}")
    model.set_drill(drill.rounds, drill.fault.type)
    return model


def feed(model: ViewModel, run: DrillRun) -> None:
    """MODEL listens to the run's observer and hears of its rounds."""
    workload = run.workload
    model.set_workload(workload.kind, workload.name, workload.namespace)
    run.observer.add_listener(model)
    previous = run.options.on_round

    def on_round(number: int) -> None:
        model.round_started(number)
        if previous:
            previous(number)

    run.options.on_round = on_round


def parse_target(args: argparse.Namespace) -> Target:
    """--target KIND/NAME or --selector k=v,...; neither watches every pod of the namespace."""
    if args.target:
        kind, _, name = args.target.partition("/")
        if not name or kind not in WORKLOAD_KINDS:
            raise UsageError(f"--target {args.target}: give KIND/NAME with KIND one of "
                             f"{', '.join(WORKLOAD_KINDS)}, e.g. Deployment/web")
        return Target(kind, name, MappingProxyType({}))
    labels: dict[str, str] = {}
    for part in filter(None, (args.selector or "").split(",")):
        key, equals, value = part.partition("=")
        if not equals or not key.strip():
            raise UsageError(f"--selector {args.selector}: give labels as key=value[,key=value], "
                             "e.g. app=web")
        labels[key.strip()] = value.strip()
    return Target(None, None, MappingProxyType(labels))


def watch_command(args: argparse.Namespace, view: LiveView) -> int:
    """Shows the target live, on the terminal and with --web in a browser, until a signal."""
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
    # Nothing to keep yet (no --out): an unnamed file the system removes when it is closed.
    journal = Journal(tempfile.TemporaryFile("w+", encoding="utf-8"))
    observer = Observer(api, workload, journal, None)
    observer.add_listener(model)
    web = serve(args, model, view.say)
    stop = threading.Event()
    signals = SignalStop(stop, view.say, doing="ending the watch").start()
    try:
        observer.start()
        view.attach(observer, workload.name, model)
        view.say(f"watching {shown}; no faults; Ctrl-C to stop")
        while not stop.wait(0.5):
            pass
    finally:
        signals.close()
        observer.stop()
        journal.close()
        if web is not None:
            web.close()
    view.say("stopped watching")
    return 0
