"""The `run`, `demo`, `report` and `monitor` commands: wiring from flags to the modules."""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry

from chaos.cli import views
from chaos.cli.steps import StepClock
from chaos.cluster import providers
from chaos.cluster.base import ClusterProvider, Progress
from chaos.drill.loading import load_drill
from chaos.drill.signals import SignalStop
from chaos.errors import UsageError
from chaos.monitoring import drill_metrics, metrics_server
from chaos.resources import shipped
from chaos.results import rebuild_results
from chaos.results.summary import Summary
from chaos.results.weak_spots import finding_lines
from chaos.run.runner import DrillRun, RunOptions
from chaos.view.live import LiveView

DEMO_DRILL = shipped("manifests", "drills", "web-pod-kill.yaml")


def default_out(name: str) -> Path:
    return Path("chaos-drill-results") / f"{name}-{datetime.now():%Y%m%d-%H%M%S}"


def verdict(summary: Summary, out: Path, say: Progress) -> int:
    figures(summary, say)
    say(f"{'PASSED' if summary.passed else 'FAILED'}; results in {out}")
    return 0 if summary.passed else 1


def figures(summary: Summary, say: Progress) -> None:
    """The incidents, recovery, availability and SLO checks of SUMMARY, a line each."""
    stats = summary.recovery
    ratio = summary.availability.ratio
    say(f"{len(summary.incidents)} incidents, recovery median "
        f"{_s(stats.median)} p95 {_s(stats.p95)} max {_s(stats.max)}; availability "
        f"{'n/a' if ratio is None else f'{ratio:.2%}'}")
    for check in summary.slo_checks:
        say(f"  {'PASS' if check.passed else 'FAIL'} {check.name}: {check.detail}")
    for line in finding_lines(summary.advice, "advice"):
        say(line)


def _unwritten(summary: Summary) -> None:
    """What a drill measured until its journal failed, on stdout: no file could hold it."""
    counts = summary.availability
    lines = [f"results could not be written; measured until the journal failed: "
             f"{counts.requests} probes, {counts.failures} failed"]
    figures(summary, lines.append)
    print("\n".join(lines), flush=True)


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}s"


def run_command(args: argparse.Namespace, say: Progress) -> int:
    """SIGINT, SIGTERM and SIGHUP stop the drill: it restores and writes every result file."""
    view = LiveView()
    options = RunOptions(out_dir=Path("."), dry_run=args.dry_run, seed=args.seed)
    signals = SignalStop(options.stop, view.say).start()
    try:
        return _run(args, view, options)
    finally:
        signals.close()
        view.close()


def _run(args: argparse.Namespace, view: LiveView, options: RunOptions) -> int:
    clock = StepClock(view.say, stamp=False)  # the view shows each line its own way
    say: Progress = clock
    drill = load_drill(args.drill)
    out = Path(args.out) if args.out else default_out(drill.name)
    if (out / "journal.jsonl").exists():
        raise UsageError(f"{out} already holds a journal: pick another --out")
    model = views.model_for_drill(drill)
    web = views.serve(args, model, say)  # a bad or taken port is refused before anything
    server = None
    try:
        provider = providers.from_args(args)
        options.out_dir = out
        if args.metrics_port is not None:
            registry = CollectorRegistry()
            options.metrics = drill_metrics.for_drill(registry, drill)
            server = metrics_server.serve(registry, args.metrics_port)
            say(f"metrics on {server.url}")
        run = DrillRun(drill, provider, options, say)
        views.feed(model, run)
        view.attach(run.observer, run.workload.name, model)
        say(f"drill {drill.name}: {drill.rounds} round(s) of {drill.fault.type} on "
            f"{run.workload.kind}/{run.workload.name}{' (dry run)' if args.dry_run else ''}; "
            f"journal {out / 'journal.jsonl'}")
        try:
            summary = run.run()
        except BaseException as error:
            model.finished(None, str(error))
            if run.unwritten_summary is not None:
                _unwritten(run.unwritten_summary)
            raise
        model.finished(None if summary.aborted else summary.passed,
                       f"{len(summary.incidents)} incidents")
    finally:
        if server is not None:
            if args.metrics_grace > 0 and not options.stop.is_set():
                say(f"serving final metrics for {args.metrics_grace:g}s")
                options.stop.wait(args.metrics_grace)
            server.close()
        if web is not None:
            web.close()
    clock.finish(f"drill {drill.name}", getattr(args, "timings", None))  # demo has none
    return verdict(summary, out, view.say)


def demo_command(args: argparse.Namespace, say: Progress) -> int:
    """The workshop in one command: a cluster, the sample app, then a live drill."""
    args.drill = args.drill or str(DEMO_DRILL)
    provider = providers.from_args(args)
    bring_up(provider, say)
    say(f"step 3/3: the drill {args.drill}: watch pods die and come back")
    code = run_command(args, say)
    say(f"the cluster stays up for more drills: 'chaos-drill run {DEMO_DRILL}'; "
        "'chaos-drill cluster down' removes it")
    return code


def bring_up(provider: ClusterProvider, say: Progress, autoscale: bool = False,
             steps: tuple[str, str] = ("step 1/3", "step 2/3")) -> None:
    """A cluster (up, or the one of --provider) and the sample app Ready on it: `demo` and
    `workshop` begin so; STEPS label the two parts."""
    from chaos.cluster import workloads

    say(f"{steps[0]}: a real Kubernetes cluster ({provider.name})")
    provider.up(say)
    say(f"{steps[1]}: the sample app: 3 web pods calling 2 api pods by name, opted in to chaos"
        + (", with web's autoscaler" if autoscale else ""))
    workloads.deploy(provider, say, autoscale=autoscale)


def restore_command(args: argparse.Namespace, say: Progress) -> int:
    """Undoes every change a dead drill left, found by the records drills write first; live
    runs' changes are left to them. Exit 1 when a record was skipped (each said in one line)."""
    from chaos.cluster import kube
    from chaos.drill import restore

    provider = providers.from_args(args)
    api = kube.api_client(provider.kubeconfig())
    done = restore.restore_dead_runs(api, args.namespace, say, provider)
    counts = [f"restored {len(done.restored)} change(s)" if done.restored
              else "nothing left to restore"]
    if done.left:
        counts.append(f"left {len(done.left)} to live runs")
    if done.skipped:
        counts.append(f"skipped {len(done.skipped)}: see above")
    say("; ".join(counts))
    return 1 if done.skipped else 0


def report_command(args: argparse.Namespace, say: Progress) -> int:
    out = Path(args.out)
    if not (out / "journal.jsonl").exists():
        raise UsageError(f"no journal.jsonl in {out}: pass the folder a drill wrote (--out)")
    began = time.monotonic()
    summary = rebuild_results(out)
    say(f"rebuilt summary.json, junit.xml and report.html in {time.monotonic() - began:.2f}s")
    return verdict(summary, out, say)


def images_command(args: argparse.Namespace, say: Progress) -> int:
    """`images push REGISTRY`: builds (cached) and pushes every image a cluster runs."""
    from chaos.images import catalog, push

    push.split_registry(args.registry)
    ca_file = Path(args.ca_file) if args.ca_file else None
    if ca_file is not None and not ca_file.is_file():
        raise UsageError(f"--ca-file {ca_file} not found: give the registry CA's PEM file")
    began = time.monotonic()
    images = catalog.archives(say)
    for archive, reference in images:
        target = catalog.in_registry(reference, args.registry)
        say(f"pushing {reference} ({archive.stat().st_size >> 20} MiB archive) as {target}")
        push.push(archive, target, ca_file, say)
    say(f"pushed {len(images)} images to {args.registry} in {time.monotonic() - began:.1f}s; "
        f"use them with --image-registry {args.registry}")
    return 0


def monitor_command(args: argparse.Namespace, say: Progress) -> int:
    """`monitor up` starts Prometheus on loopback scraping the exporter; `down` stops it;
    `install`/`uninstall` put one in the cluster (chaos.monitoring.install)."""
    from chaos.monitoring import process as monitor

    if args.action in ("install", "uninstall"):
        from chaos.monitoring import install

        provider = providers.from_args(args)
        if args.action == "install":
            install.install(provider, say, timeout=args.timeout, registry=args.image_registry)
        else:
            install.uninstall(provider, say, timeout=args.timeout)
        return 0
    state_dir = Path(args.state_dir) if args.state_dir else monitor.default_state_dir()
    if args.action == "down":
        if monitor.stop_prometheus(state_dir):
            say(f"stopped prometheus (state kept in {state_dir})")
        else:
            say(f"no prometheus running from {state_dir}")
        return 0
    _check_monitor_ports(args.port, args.exporter_port)
    prometheus = monitor.start_prometheus(state_dir, args.port, args.exporter_port)
    say(f"prometheus {prometheus.url} (pid {prometheus.pid}) scrapes "
        f"{monitor.LOOPBACK}:{args.exporter_port}/metrics: run drills with --metrics-port "
        f"{args.exporter_port}; stop it with 'chaos-drill monitor down'; log "
        f"{prometheus.log_path}")
    print(prometheus.url, flush=True)
    return 0


def _check_monitor_ports(port: int, exporter_port: int) -> None:
    for flag, value in (("--port", port), ("--exporter-port", exporter_port)):
        if not 1 <= value <= 65535:
            raise UsageError(f"{flag} {value} is not a TCP port: pick one from 1 to 65535")
    if port == exporter_port:
        raise UsageError(f"--port and --exporter-port are both {port}: Prometheus would scrape "
                         "itself; give it another --port")
