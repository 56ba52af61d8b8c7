"""The `workshop` command: a cluster (up, or the one of --provider), the sample app with its
autoscaler, then a lesson plan run step by step on the live page as the trainer's keys say
(chaos.view.presenter); Ctrl-C restores what the running step changed and ends with the summary."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from datetime import datetime
from pathlib import Path

from chaos.cli import views
from chaos.cluster import kube, providers
from chaos.cluster.base import ClusterProvider, Progress
from chaos.drill.plan import DEFAULT_PLAN, Plan, load_plan
from chaos.drill.resolve import resolve_workload
from chaos.drill.signals import SignalStop
from chaos.drill.spec import Drill
from chaos.errors import ChaosDrillError, UsageError
from chaos.observe.observer import Observer
from chaos.results.journal import Journal
from chaos.run.runner import DrillRun, RunOptions
from chaos.view.controls import Controls, read_terminal
from chaos.view.live import LiveView
from chaos.view.model import ViewModel
from chaos.view.presenter import Lesson, StepResult, describe, result_of
from chaos.view.web import WebView

DEFAULT_WEB_PORT = 8080
KEY_HINT = "→ or space (Enter here): run / next · r: repeat · s: skip · Ctrl-C: end"


class Interrupt(threading.Event):
    """Ctrl-C's event (SignalStop sets it): also stops the step that runs, so it restores."""

    def __init__(self) -> None:
        super().__init__()
        self.step: threading.Event | None = None

    def set(self) -> None:
        super().set()
        step = self.step
        if step is not None:
            step.set()


def workshop_command(args: argparse.Namespace, say: Progress) -> int:
    plan = load_plan(args.plan or DEFAULT_PLAN)  # a bad plan is refused before anything
    out = Path(args.out) if args.out else (
        Path("chaos-drill-results") / f"workshop-{datetime.now():%Y%m%d-%H%M%S}")
    if (out / "workshop.json").exists():
        raise UsageError(f"{out} already holds a workshop: pick another --out")
    view = LiveView()
    try:
        return Workshop(args, plan, out, view).run()
    finally:
        view.close()


class Workshop:
    def __init__(self, args: argparse.Namespace, plan: Plan, out: Path, view: LiveView) -> None:
        self.args, self.plan, self.out, self.view = args, plan, out, view
        self.say: Progress = view.say
        self.lesson = Lesson(plan)
        self.model = ViewModel(f"workshop: {plan.title}", mode="workshop")
        self.controls = Controls(self.say)
        self.interrupt = Interrupt()
        self.idle: tuple[Observer, Journal] | None = None
        self.publish()

    def publish(self) -> None:
        self.model.set_lesson(self.lesson.to_dict())

    def run(self) -> int:
        args = self.args
        shared = views.share_address(args)  # refused before anything
        web = WebView(self.model, DEFAULT_WEB_PORT if args.web is None else args.web,
                      args.web_host, controls=self.controls.press)
        try:
            if not views.is_loopback(args.web_host):
                self.say(f"warning: the page listens on {args.web_host}: anyone who reaches "
                         "this machine sees it; the keys work only on this machine's browser")
            self.say(f"presenter page on {web.url} (open it on this machine: keys work there)")
            if shared is not None:
                views.share(web, shared, args.share_viewers, self.say)
            provider = providers.from_args(args)
            from chaos.cli.commands import bring_up  # commands imports views too

            bring_up(provider, self.say, autoscale=True, steps=("setup 1/2", "setup 2/2"))
            self._lesson(provider)
        finally:
            self._stop_idle()
            self.publish()
            web.close()
        return self._finish()

    def _lesson(self, provider: ClusterProvider) -> None:
        api = kube.api_client(provider.kubeconfig())
        signals = SignalStop(self.interrupt, self.say,
                             doing="restoring the running step, then the summary").start()
        read_terminal(sys.stdin, self.controls)
        try:
            self.view.attach(self._watch_idle(api), "", self.model)
            self._show()
            while not self.lesson.ended and not self.interrupt.is_set():
                key = self.controls.get(timeout=0.2)
                if key is None:
                    continue
                shown = self.lesson.index
                step = self.lesson.press(key)
                if step is not None:
                    self._run_step(step, provider)
                if not self.interrupt.is_set() and (step is not None
                                                    or self.lesson.index != shown):
                    self._watch_idle(api)
                self.publish()
                if not self.interrupt.is_set():
                    self._show()
        finally:
            signals.close()
        if self.interrupt.is_set():
            self.lesson.interrupted()

    def _show(self) -> None:
        lesson = self.lesson
        if lesson.summary:
            self.say("summary shown; Enter (or → on the page) ends the workshop")
            return
        number, step = lesson.index + 1, self.plan.steps[lesson.index]
        state = lesson.status[lesson.index]
        self.say(f"step {number}/{len(self.plan.steps)}: {step.title} ({state}); {KEY_HINT}")

    def _run_step(self, index: int, provider: ClusterProvider) -> None:
        step, lesson = self.plan.steps[index], self.lesson
        self._stop_idle()
        lesson.started(index)
        out = self.out / f"{index + 1:02d}-{step.drill.name}"
        if lesson.runs[index] > 1:
            out = out.with_name(f"{out.name}-run{lesson.runs[index]}")
        options = RunOptions(out_dir=out)
        self.model.new_drill(step.drill.rounds, step.drill.fault.type)
        self.publish()
        self.interrupt.step = options.stop
        self.controls.run_with(options.stop)
        if self.interrupt.is_set():
            options.stop.set()
        self.say(f"step {index + 1}: {step.title}: {step.drill.rounds} round(s) of "
                 f"{step.drill.fault.type}; journal {out / 'journal.jsonl'}")
        try:
            result = self._drill(step.drill, provider, options, str(out))
        finally:
            self.interrupt.step = None
            lesson.skip_asked = self.controls.skipped
            self.controls.run_with(None)
        lesson.finished(index, result)
        self.model.finished({"PASSED": True, "FAILED": False}.get(result.verdict),
                            result.detail or result.verdict)
        self.say(f"step {index + 1}: {describe(result)}")

    def _drill(self, drill: Drill, provider: ClusterProvider, options: RunOptions,
               out: str) -> StepResult:
        try:
            run = DrillRun(drill, provider, options, self.say)
            views.feed(self.model, run)
            return result_of(run.run(), out)
        except Exception as error:  # the workshop goes on: the trainer may repeat or skip
            if not isinstance(error, (ChaosDrillError, *kube.USER_ERRORS)):
                raise
            message = str(error) if isinstance(error, ChaosDrillError) else kube.explain(error)
            self.say(f"error: {message}")
            return StepResult("ERROR", detail=message, out=out)

    def _watch_idle(self, api: object) -> Observer | None:
        """Between steps the page still shows the shown step's pods live (its target, when it
        can be found: if not, running the step says why)."""
        self._stop_idle()
        step = self.plan.steps[self.lesson.index]
        try:
            workload = resolve_workload(api, step.drill)
        except ChaosDrillError as error:
            self.say(f"step {self.lesson.index + 1}: {error}")
            return None
        journal = Journal(tempfile.TemporaryFile("w+b", buffering=0))
        self.model.set_workload(workload.kind, workload.name, workload.namespace)
        observer = Observer(api, workload, journal, None)
        observer.add_listener(self.model)
        self.idle = observer, journal
        observer.start()
        return observer

    def _stop_idle(self) -> None:
        idle, self.idle = self.idle, None
        if idle is not None:
            idle[0].stop()
            idle[1].close()

    def _finish(self) -> int:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "workshop.json").write_text(json.dumps(self.lesson.to_dict(), indent=2))
        for line in self.lesson.summary_lines():
            self.say(line)
        self.say(f"results in {self.out}")
        verdicts = {r.verdict for r in self.lesson.results if r is not None}
        return 1 if verdicts & {"FAILED", "ERROR"} else 0
