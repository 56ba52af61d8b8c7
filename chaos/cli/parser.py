"""The chaos-drill command line: flags and wiring only; the work happens in the modules."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from chaos import __version__
from chaos.cli.steps import StepClock
from chaos.cluster import providers
from chaos.cluster.base import ClusterProvider, RegistryTrust
from chaos.errors import ChaosDrillError, UsageError
from chaos.monitoring.metrics_server import DEFAULT_METRICS_PORT


def _say(message: str) -> None:
    try:
        print(f"chaos-drill: {message}", file=sys.stderr, flush=True)
    except OSError:  # the terminal is gone (SIGHUP): the work goes on without it
        pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chaos-drill", description=__doc__)
    parser.add_argument("--version", action="version", version=f"chaos-drill {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    cluster = commands.add_parser("cluster", help="bring a cluster up or down, or report on it")
    cluster.add_argument("action", choices=["up", "down", "status", "kubeconfig"])
    providers.add_arguments(cluster)
    cluster.add_argument("--timings", metavar="FILE", help="up: write each step's duration "
                         "there as JSON")
    cluster.add_argument("--registry-ca", action="append", default=[], metavar="HOST:PORT=PEM",
                         help="up: the nodes pull from registry HOST:PORT over TLS trusting "
                         "this CA (repeatable; local and kind)")

    deploy = commands.add_parser("deploy", help="deploy the sample workloads (web calling api) "
                                 "and wait until Ready")
    providers.add_arguments(deploy)
    deploy.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for Ready")
    deploy.add_argument("--timings", metavar="FILE",
                        help="write each step's duration there as JSON")
    deploy.add_argument("--no-wait", action="store_true",
                        help="return once applied, without waiting for Ready: a drill waits "
                        "for its own target to be steady before its first fault")
    deploy.add_argument("--autoscale", action="store_true",
                        help="also apply web's HorizontalPodAutoscaler (for load drills); "
                        "without it, any is removed so replicas stay as set")
    add_image_registry(deploy)

    run = commands.add_parser("run", help="run a drill file against the cluster")
    run.add_argument("drill", help="a ChaosDrill YAML file (see manifests/drills/)")
    run.add_argument("--dry-run", action="store_true", help="select and log; change nothing")
    run.add_argument("--timings", metavar="FILE",
                     help="write each step's duration (and the longest steps) there as JSON")
    run.add_argument("--seed", type=int, help="overrides spec.seed: the same seed, same victims")
    run.add_argument("--out", help="results folder (default chaos-drill-results/NAME-TIME)")
    run.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    run.add_argument("--metrics-grace", type=float, default=15.0,
                     help="seconds to keep serving metrics after the drill (default 15)")
    add_web_arguments(run)
    providers.add_arguments(run)

    demo = commands.add_parser("demo", help="cluster up, deploy the sample app, run a live drill")
    demo.add_argument("--drill", default=None,
                      help="the drill to run (default: 5 rounds of pod_delete on web)")
    demo.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    demo.add_argument("--metrics-grace", type=float, default=0.0, help=argparse.SUPPRESS)
    demo.add_argument("--out", help="results folder (default chaos-drill-results/NAME-TIME)")
    demo.set_defaults(dry_run=False, seed=None)
    add_web_arguments(demo)
    providers.add_arguments(demo)

    workshop = commands.add_parser(
        "workshop", help="cluster up, deploy the sample app with its autoscaler, then run a "
        "lesson plan step by step on the live page, as the trainer's keys say")
    workshop.add_argument("plan", nargs="?", default=None,
                          help="a lesson plan (YAML; default: the shipped one, six faults)")
    workshop.add_argument("--out", help="results folder, one subfolder per step run (default "
                          "chaos-drill-results/workshop-TIME)")
    workshop.add_argument("--web", type=int, default=8080, metavar="PORT",
                          help="serve the presenter page on http://127.0.0.1:PORT/ (default "
                          "8080; 0: any free port)")
    workshop.add_argument("--web-host", default="127.0.0.1", metavar="ADDRESS",
                          help="listen on this address instead, e.g. 0.0.0.0 to show the page on "
                          "a LAN (read-only there: the keys work only from this machine)")
    add_share_arguments(workshop)
    providers.add_arguments(workshop)

    watch = commands.add_parser("watch", help="show pods and incidents live without injecting "
                                "anything; with --out record every disruption others cause")
    watch.add_argument("--namespace", default="demo", help="the namespace (default demo)")
    chosen = watch.add_mutually_exclusive_group()
    chosen.add_argument("--target", metavar="KIND/NAME", help="a workload, e.g. Deployment/web "
                        "(default: every pod of the namespace)")
    chosen.add_argument("--selector", metavar="LABELS", help="pods with these labels, e.g. "
                        "app=web")
    watch.add_argument("--out", metavar="DIR", help="record what it sees there: journal, "
                       "summary.json, junit.xml, report.html (a folder without a journal)")
    watch.add_argument("--duration", type=float, metavar="SECONDS",
                       help="stop after this many seconds (default: at Ctrl-C or SIGTERM)")
    watch.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    add_web_arguments(watch)
    providers.add_arguments(watch)

    operator = commands.add_parser(
        "operator", help="run ChaosDrill objects applied to the cluster (here, or installed in "
        "it with 'operator install')")
    operator.add_argument("action", nargs="?", default="run", choices=["run", "install",
                          "uninstall"], help="run here (default), or install or uninstall the "
                          "operator's Deployment in the cluster of --provider")
    operator.add_argument("--namespace", action="append",
                          help="run: watch this namespace (repeatable; default: all namespaces)")
    operator.add_argument("--metrics-port", type=int,
                          help="run: serve every drill's metrics on this port")
    operator.add_argument("--metrics-host", default="127.0.0.1",
                          help="run: the metrics' address (default 127.0.0.1; the pod: 0.0.0.0)")
    operator.add_argument("--peering", metavar="NAME", help="run: take turns with the other "
                          "operators of ClusterKopfPeering NAME (default: standalone)")
    operator.add_argument("--health-port", type=int,
                          help="run: answer /healthz on 0.0.0.0:PORT while kopf is healthy")
    operator.add_argument("--target-namespace", action="append", metavar="NAMESPACE",
                          help="install: a namespace whose workloads drills may touch "
                          "(repeatable; default demo)")
    operator.add_argument("--timeout", type=float, default=120.0,
                          help="install: seconds to wait for Ready (default 120)")
    add_image_registry(operator)
    providers.add_arguments(operator)

    restore = commands.add_parser(
        "restore", help="put back what dead drills changed: replicas, cordons, broken probes, "
        "stopped nodes; remove their load Jobs and prober pods; live drills' changes are left "
        "alone; exit 1 if a record was skipped")
    restore.add_argument("--namespace", help="only workloads and pods in this namespace "
                         "(default: all namespaces; nodes are always checked)")
    providers.add_arguments(restore)
    commands.add_parser("faults", help="list every fault with its phases and what it needs")
    init = commands.add_parser("init", help="copy the example drills (and dashboards) into a "
                               "folder to edit")
    init.add_argument("dir", nargs="?", default=".", help="the folder (default: here); drills "
                      "go to DIR/drills")
    init.add_argument("--dashboards", action="store_true",
                      help="also the Grafana dashboards, into DIR/dashboards")
    init.add_argument("--force", action="store_true", help="overwrite files that exist")
    validate = commands.add_parser("validate", help="check drill files (and lesson plans, with "
                                   "every drill they name) against the schema, without a cluster")
    validate.add_argument("files", nargs="+", metavar="FILE",
                          help="drill files or lesson plans (YAML)")

    check = commands.add_parser(
        "check", help="list a workload's weak spots from its live spec, before any drill: one "
        "replica, no PodDisruptionBudget, no spread, no readiness probe, identical probes, no "
        "resources, no preStop; exit 0 with none, 1 with findings, 2 on an error")
    check.add_argument("--target", required=True, metavar="KIND/NAME",
                       help="the workload, e.g. Deployment/web (or StatefulSet/..., "
                       "ReplicaSet/...)")
    check.add_argument("--namespace", default="demo", help="its namespace (default demo)")
    providers.add_arguments(check)

    report = commands.add_parser("report", help="rebuild summary, JUnit and HTML from a journal")
    report.add_argument("out", help="a results folder holding journal.jsonl")

    monitor = commands.add_parser("monitor", help="start or stop a loopback Prometheus for "
                                  "drills, or install one in the cluster for the operator")
    monitor.add_argument("action", choices=["up", "down", "install", "uninstall"],
                         help="up/down: on this machine; install/uninstall: in the cluster of "
                         "--provider, scraping the installed operator's pods")
    monitor.add_argument("--port", type=int, default=9090,
                         help="Prometheus listens on 127.0.0.1:PORT (default 9090)")
    monitor.add_argument("--exporter-port", type=int, default=DEFAULT_METRICS_PORT,
                         help=f"the drills' --metrics-port it scrapes (default "
                              f"{DEFAULT_METRICS_PORT})")
    monitor.add_argument("--state-dir", help="its config, data, log and PID (default "
                         "/var/lib/chaos-drill/monitor as root, else ~/.cache/chaos-drill/monitor)")
    monitor.add_argument("--timeout", type=float, default=120.0,
                         help="install: seconds to wait for Ready (default 120)")
    add_image_registry(monitor)
    providers.add_arguments(monitor)

    images = commands.add_parser("images", help="push every image chaos-drill runs in a "
                                 "cluster to a registry (see docs/registry.md)")
    images.add_argument("action", choices=["push"])
    images.add_argument("registry", metavar="REGISTRY",
                        help="HOST[:PORT][/PATH], e.g. ghcr.io/ORG; images go to "
                        "REGISTRY/NAME:TAG")
    images.add_argument("--ca-file", metavar="PEM", help="trust this CA for the registry's "
                        "TLS certificate (default: the system's CAs)")
    return parser


def add_image_registry(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image-registry", metavar="REGISTRY",
                        help="pull chaos-drill's images from REGISTRY/NAME:TAG (pushed there "
                        "with 'chaos-drill images push REGISTRY') instead of loading them "
                        "into the nodes")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "image_registry", None):
            from chaos.images.push import split_registry

            split_registry(args.image_registry)  # a bad name stops here, before any change
        if args.command == "cluster":
            return cluster_command(args)
        if args.command == "deploy":
            return deploy_command(args)
        if args.command == "run":
            from chaos.cli.commands import run_command

            return run_command(args, _say)
        if args.command == "demo":
            from chaos.cli.commands import demo_command

            return demo_command(args, _say)
        if args.command == "watch":
            return watch(args)
        if args.command == "workshop":
            from chaos.cli.workshop import workshop_command

            return workshop_command(args, _say)
        if args.command == "operator":
            return operator_command(args)
        if args.command == "restore":
            from chaos.cli.commands import restore_command

            return restore_command(args, _say)
        if args.command == "faults":
            from chaos.drill.fault_types import describe

            print("\n".join(describe()))
            return 0
        if args.command in ("init", "validate"):
            from chaos.cli import files

            command = files.init_command if args.command == "init" else files.validate_command
            return command(args, _say)
        if args.command == "check":
            from chaos.cli.checking import check_command

            return check_command(args, _say)
        if args.command == "report":
            from chaos.cli.commands import report_command

            return report_command(args, _say)
        if args.command == "images":
            from chaos.cli.commands import images_command

            return images_command(args, _say)
        if args.command == "monitor":
            from chaos.cli.commands import monitor_command

            return monitor_command(args, _say)
    except ChaosDrillError as error:
        _say(f"error: {error}")
        return error.exit_code
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except Exception as error:  # API, timeout and OS errors: one line, never a traceback
        from chaos.cluster.kube import USER_ERRORS, explain

        if not isinstance(error, USER_ERRORS):
            raise
        _say(f"error: {explain(error)}")
        return 2
    return 2


def cluster_command(args: argparse.Namespace) -> int:
    provider = providers.from_args(args)
    if args.action == "up":
        trusted = registry_cas(provider, args.registry_ca)
        clock = StepClock(_say)
        provider.up(clock)
        for host, ca in trusted:
            assert isinstance(provider, RegistryTrust)
            provider.trust_registry(host, ca, clock)
        clock.finish(f"{args.provider} cluster up", args.timings)
    elif args.action == "down":
        provider.down(_say)
    elif args.action == "kubeconfig":
        print(provider.kubeconfig())
    else:
        status = provider.status()
        print(f"provider: {status.provider}\nup: {'yes' if status.up else 'no'}")
        if status.kubeconfig:
            print(f"kubeconfig: {status.kubeconfig}")
        for part in status.components:
            print(f"  {part.name}: {'running' if part.running else 'STOPPED'} {part.detail}")
        return 0 if status.up else 1
    return 0


def registry_cas(provider: ClusterProvider, values: list[str]) -> list[tuple[str, Path]]:
    """The --registry-ca values, checked before the cluster starts."""
    from chaos.cluster import registry_hosts

    if values and not isinstance(provider, RegistryTrust):
        raise UsageError(f"--registry-ca needs --provider local or kind: a {provider.name} "
                         "cluster's nodes trust registries as their own runtime is configured")
    return [registry_hosts.parse(value) for value in values]


def add_web_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--web", type=int, metavar="PORT",
                        help="serve the live page on http://127.0.0.1:PORT/ (0: any free port)")
    parser.add_argument("--web-host", default="127.0.0.1", metavar="ADDRESS",
                        help="listen on this address instead, e.g. 0.0.0.0 to share the page "
                             "on a LAN at this machine's IP address (read-only, but anyone who "
                             "reaches it sees pod names)")
    add_share_arguments(parser)


def add_share_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--share", nargs="?", const="", metavar="ADDRESS",
                        help="also serve a read-only view for attendees' screens on this "
                             "machine's LAN address (the default route's, or ADDRESS), at a "
                             "link with a secret token, printed with a QR code")
    parser.add_argument("--share-viewers", type=int, default=60, metavar="N",
                        help="with --share, at most N attendees' pages at a time (default 60)")


def watch(args: argparse.Namespace) -> int:
    from chaos.cli.watching import watch_command
    from chaos.view.live import LiveView

    view = LiveView()
    try:
        return watch_command(args, view)
    finally:
        view.close()


def operator_command(args: argparse.Namespace) -> int:
    if args.action != "run":
        from chaos.operator import install as operator_install

        provider = providers.from_args(args)
        if args.action == "install":
            operator_install.install(provider, _say, args.target_namespace or ["demo"],
                                     timeout=args.timeout, registry=args.image_registry)
        else:
            operator_install.uninstall(provider, _say, timeout=args.timeout)
        return 0
    import os

    from chaos.operator import handlers as operator

    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    _say("operator: running ChaosDrill objects in "
         + (", ".join(args.namespace) if args.namespace else "all namespaces"))
    operator.run(args.namespace or [], metrics_port=args.metrics_port,
                 metrics_host=args.metrics_host, peering=args.peering,
                 health_port=args.health_port)
    return 0


def deploy_command(args: argparse.Namespace) -> int:
    from chaos.cluster import workloads

    provider = providers.from_args(args)
    clock = StepClock(_say)
    workloads.deploy(provider, clock, timeout=args.timeout, autoscale=args.autoscale,
                     wait=not args.no_wait, registry=args.image_registry)
    clock.finish("deployed", args.timings)
    return 0
