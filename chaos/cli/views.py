"""Wiring of the live views for the commands: the view model a drill run feeds, the web server
behind `--web PORT`, and the target the `watch` command (chaos.cli.watching) is given."""

from __future__ import annotations

import argparse
import ipaddress
from types import MappingProxyType

from chaos.cluster.base import Progress
from chaos.cluster.kube import WORKLOAD_KINDS
from chaos.drill.spec import Drill, Target
from chaos.errors import UsageError
from chaos.run.runner import DrillRun
from chaos.view.model import ViewModel
from chaos.view.share import ShareView, qr_code, resolve_address
from chaos.view.web import WebView


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(args: argparse.Namespace, model: ViewModel, say: Progress) -> WebView | None:
    """The web view if --web was given, after a warning for a non-loopback --web-host; with
    --share, the attendees' view beside it."""
    address = share_address(args)
    if getattr(args, "web", None) is None:
        if address is not None:
            raise UsageError("--share needs --web PORT: the attendees' view is served beside "
                             "the live page")
        return None
    host = args.web_host
    web = WebView(model, args.web, host)
    if not is_loopback(host):
        say(f"warning: the live page listens on {host}: anyone who can reach this machine "
            "sees it (read-only); use --web-host 127.0.0.1 to keep it local")
    say(f"live page on {web.url}")
    if address is not None:
        try:
            share(web, address, args.share_viewers, say)
        except BaseException:
            web.close(drain_seconds=0)
            raise
    return web


def share_address(args: argparse.Namespace) -> str | None:
    """The address of --share (checked: one of this machine's), None without it."""
    value = getattr(args, "share", None)
    if value is not None and not is_loopback(args.web_host):
        raise UsageError(f"--share and --web-host {args.web_host} both open the page to the "
                         "network: drop --web-host (the presenter's page stays on loopback)")
    if value is not None and args.share_viewers < 1:
        raise UsageError(f"--share-viewers {args.share_viewers}: give at least 1")
    return resolve_address(value)


def share(web: WebView, address: str, viewers: int, say: Progress) -> None:
    """Serves the attendees' view of WEB on ADDRESS (closed with WEB), says its link, a QR code
    and that it leaves loopback."""
    attendees = ShareView(web, address, viewers)
    web.attendees = attendees
    say(f"attendees' view on {attendees.url} (read-only, at most {viewers} at a time)")
    say(f"warning: the attendees' view leaves loopback: anyone on the network of {address} "
        "with this link sees the page (pod names, steps); it cannot start or stop anything")
    say(f"scan to open it:\n{qr_code(attendees.url)}")


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
