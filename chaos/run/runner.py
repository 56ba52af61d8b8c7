"""Runs a drill: steady state, then per round select, inject, observe until recovered; restores
what it changed even when interrupted, and always leaves a journal and results."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaos.cluster import kube
from chaos.cluster.base import ClusterProvider, Progress
from chaos.cluster.kube import WORKLOAD_KINDS
from chaos.drill import lease_keeper, leases, node_guard, restore
from chaos.drill.fault_types import Follow, fault_type
from chaos.drill.faults import Fault, FaultContext, FaultTarget, fault_for
from chaos.drill.resolve import resolve_workload
from chaos.drill.spec import DEFAULT_LOAD_SECONDS, Drill, ProbeSpec
from chaos.drill.targeting import (
    PodInfo,
    TargetingParams,
    check_node,
    select_targets,
)
from chaos.drill.timeline import Incident, incident_id, scale_in_seconds
from chaos.errors import FaultError, JournalError
from chaos.monitoring.drill_metrics import DrillMetrics
from chaos.observe.observer import Observer
from chaos.observe.prober_pod import pod_name
from chaos.results import JOURNAL_NAME, rebuild_results, salvage_results
from chaos.results.journal import CLI_REMEDY, Journal
from chaos.results.summary import Summary
from chaos.run import facts
from chaos.run.preflight import Preflight
from chaos.run.probing import choose_origin, host_refusal, prober_image
from chaos.run.steady import AUTOSCALER_SYNC_SECONDS, STEADY_GRACE_SECONDS, SteadyState

PROBER_DEADLINE_MARGIN = 600


@dataclass
class RunOptions:
    out_dir: Path
    dry_run: bool = False
    seed: int | None = None
    metrics: DrillMetrics | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    node_policy: node_guard.NodePolicy = node_guard.NodePolicy()
    on_round: Callable[[int], None] | None = None
    on_inject: Callable[[Incident], None] | None = None
    on_incident: Callable[[Incident], None] | None = None
    journal_remedy: str = CLI_REMEDY
    """What a failed journal write's line tells the reader to do."""

    def open_journal(self) -> Journal:
        return Journal.open(self.out_dir / JOURNAL_NAME, remedy=self.journal_remedy)


def max_run_seconds(drill: Drill) -> int:
    """A bound on how long a run of DRILL lasts (every wait at its longest, and a margin): the
    prober pod's activeDeadlineSeconds, a backstop if nothing removes it."""
    kind = fault_type(drill.fault.type)
    lasts = kind.follow is Follow.AUTOSCALE or kind.lifted_after_duration
    load = (drill.fault.duration_seconds or DEFAULT_LOAD_SECONDS) if lasts else 0
    per_round = (drill.interval_seconds + 2 * drill.recovery_timeout_seconds + load
                 + STEADY_GRACE_SECONDS + AUTOSCALER_SYNC_SECONDS)
    return int(drill.rounds * per_round) + PROBER_DEADLINE_MARGIN


class DrillRun(SteadyState, Preflight):
    """One run of one drill; `run` returns the summary, also written to the output folder."""

    def __init__(self, drill: Drill, provider: ClusterProvider, options: RunOptions,
                 say: Progress) -> None:
        self.drill, self.provider, self.options, self.say = drill, provider, options, say
        self.api = kube.api_client(provider.kubeconfig())
        self.workload = resolve_workload(self.api, drill)
        self.fault_type = fault_type(drill.fault.type)
        self.fault_type.check_provider(provider)
        check_node(drill.fault.node, kube.node_names(self.api) if drill.fault.node else [])
        self._check_node_policy()
        self.fault: Fault = fault_for(drill.fault.type)
        seed = options.seed if options.seed is not None else drill.seed
        self.rng = random.Random(seed)
        options.out_dir.mkdir(parents=True, exist_ok=True)
        self.autoscaler = self._check_autoscaling()
        self.journal = options.open_journal()
        self.journal.on_failure = self._journal_failed
        self.unwritten_summary: Summary | None = None  # set when results cannot be written
        self.observer = Observer(self.api, self.workload, self.journal, options.metrics,
                                 autoscaler=self.autoscaler,
                                 service=drill.probe.service if drill.probe else None)
        self.run_id = restore.new_run_id()
        self.ctx = FaultContext(self.api, provider, drill, self.workload, say, {}, self.run_id,
                                options.node_policy, self.journal.write)
        self.probe_url = ""
        w = self.workload
        target = (w.kind, w.name) if w.kind in WORKLOAD_KINDS else ("Pods", w.selector)
        holder = leases.Holder.this_process(self.run_id, f"{drill.namespace}/{drill.name}")
        self.leases = lease_keeper.LeaseKeeper(self.api, w.namespace, holder, target, say,
                                         self._lost_leases)

    def _lost_leases(self, why: str) -> None:
        """Another run may now take the target: stop injecting and restore at once."""
        self.say(f"{why}: stopping and restoring")
        self.journal.write("warning", message=why)
        self.options.stop.set()

    def _journal_failed(self, error: JournalError) -> None:
        """The first failed journal write (any thread): no more faults; run() raises it."""
        self.say("the journal cannot be written: stopping and restoring")
        self.options.stop.set()

    def run(self) -> Summary:
        """Runs every round; whatever happens, restores, closes the journal and writes results.
        A stop (signal, operator deletion) ends it early with an aborted summary; an error is
        raised after the results are written."""
        drill, journal = self.drill, self.journal
        journal.write("drill_started", drill=drill.to_object(), dry_run=self.options.dry_run,
                      workload=f"{self.workload.kind}/{self.workload.name}", run=self.run_id)
        restore.ACTIVE_RUNS[self.run_id] = "" if self.options.dry_run else self.leases.place
        reason: str | None = None
        try:
            self.journal.check()
            self._prepare()
            for round_number in range(1, drill.rounds + 1):
                if self.options.stop.is_set():
                    reason = self.leases.lost or "stopped"
                    break
                self._round(round_number)
                if round_number < drill.rounds:
                    self.options.stop.wait(drill.interval_seconds)
            if reason is None and not self.options.dry_run and not self.options.stop.is_set():
                self._steady_after()
        except KeyboardInterrupt:
            reason = "interrupted"
        except Exception as error:
            self._finish(kube.explain(error))
            if self.journal.failure is not None:  # the cause: its stop made the error
                raise self._salvage(self.journal.failure) from None
            with contextlib.suppress(Exception):  # the error raised below matters more
                rebuild_results(self.options.out_dir)
            raise
        self._finish(reason)
        if self.journal.failure is not None:
            raise self._salvage(self.journal.failure)
        return rebuild_results(self.options.out_dir)

    def _salvage(self, failure: JournalError) -> JournalError:
        """Writes the results it can; keeps the summary when they cannot be written."""
        summary, written = salvage_results(self.options.out_dir, self.journal.unwritten)
        self.unwritten_summary = None if written else summary
        return failure

    def _prepare(self) -> None:
        """Everything before the first fault: the target held (its Lease), watches, checks that
        can refuse, leftovers of dead runs undone, the prober, steady state."""
        if not self.options.dry_run:
            self.leases.take()
        self.observer.start()
        self._refuse_early()
        facts.journal_facts(self.api, self.workload, self.journal)
        if not self.options.dry_run:
            self._restore_dead_runs()
        metrics, slo = self.options.metrics, self.drill.slo
        if metrics:
            metrics.running(True)
            if slo.max_recovery_seconds and slo.min_availability is not None:
                metrics.slo(slo.max_recovery_seconds, slo.min_availability)
            metrics.scale_slo(slo.max_scale_out_seconds, slo.max_scale_in_seconds)
        # steady before the prober starts too: a workload still coming up (deploy --no-wait)
        # must not count as failed requests before the first fault
        self._check_steady(STEADY_GRACE_SECONDS)
        self._wait_for_dns()
        self._start_prober()
        self._check_steady(STEADY_GRACE_SECONDS)

    def _finish(self, reason: str | None) -> None:
        reason = reason or self.leases.lost
        try:
            self.fault.restore(self.ctx)
        except Exception as error:
            reason = reason or f"restore failed: {kube.explain(error)}"
            self.say(f"could not restore ({kube.explain(error)}): run 'chaos-drill restore'")
        finally:
            restore.ACTIVE_RUNS.pop(self.run_id, None)
            try:
                self.observer.stop()
            except Exception as error:  # the prober pod stays: restore removes it
                self.say(kube.explain(error))
                self.journal.write("warning", message=kube.explain(error))
            self.leases.release()  # after the prober pod: what is left belongs to a dead run
            if self.options.metrics:
                self.options.metrics.running(False)
            aborted = reason is not None or self.options.stop.is_set()
            extra: dict[str, Any] = {"reason": reason} if reason else {}
            self.journal.write("drill_finished", aborted=aborted, **extra)
            self.journal.close()

    def _start_prober(self) -> None:
        """Probes from the host or from a prober pod, as spec.probe.from says (auto: the host
        if the URL answers there); says which, and journals it in probe_started."""
        probe = self.drill.probe
        if probe is None:
            return
        origin = choose_origin(probe.origin, self.probe_url,
                               refusal=host_refusal(self.provider, self.probe_url))
        what = f"probing {self.probe_url} {probe.rate_per_second:g} times a second"
        fields: dict[str, Any] = {}
        if origin == "cluster":
            where = f"{self.workload.namespace}/{pod_name(self.run_id)}"
            if self.options.dry_run:
                self.say(f"dry run: would start pod {where} for {what}")
                return
            image = prober_image(self.provider, self.api, self.say)
            prober = self.observer.start_pod_prober(
                self.run_id, self.probe_url, probe.rate_per_second, probe.timeout_seconds,
                image, max_run_seconds(self.drill))
            self.say(f"{what} from pod {where}")
            fields = {"pod": where, "image": image}
            if prober.time_base is not None:
                fields.update(slot_zero_mono=round(prober.time_base.slot_zero, 6),
                              skew_bound_seconds=round(prober.time_base.skew_bound, 3))
        else:
            self.say(f"{what} from the host")
            self.observer.start_prober(self.probe_url, probe.rate_per_second,
                                       probe.timeout_seconds)
        self._journal_probe(probe, origin, fields)

    def _journal_probe(self, probe: ProbeSpec, origin: str, fields: dict[str, Any]) -> None:
        self.journal.write("probe_started", url=self.probe_url, origin=origin,
                           setting=probe.origin, rate=probe.rate_per_second,
                           timeout=probe.timeout_seconds, **fields)

    def _round(self, round_number: int) -> None:
        drill = self.drill
        if round_number > 1:
            self._check_steady(drill.recovery_timeout_seconds)
        self.journal.write("round_started", round=round_number)
        if self.options.on_round:
            self.options.on_round(round_number)
        self.ctx.pod_status = self.observer.pods()
        pods = [PodInfo.from_dict(p) for p in self.ctx.pod_status.values()]
        self.journal.write("placement", round=round_number,
                           pods=facts.placement(self.ctx.pod_status))
        params = TargetingParams.for_drill(drill, self.workload.match_labels)
        selection = select_targets(pods, params, self.rng, datetime.now(UTC))
        self.journal.write("selection", round=round_number, lines=selection.describe(),
                           victims=[p.name for p in selection.victims])
        targets = self.fault.targets(self.ctx, selection.victims)
        if self.options.dry_run:
            for line in selection.describe():
                self.say(f"dry run, round {round_number}: {line}")
            for target in targets:
                self.say(f"dry run: would {drill.fault.type} {_describe(target)}")
            return
        if not targets:
            self.say(f"round {round_number}: no eligible target; skipped")
            return
        incidents = [self._inject(round_number, i, t) for i, t in enumerate(targets, start=1)]
        self._await_recovery(incidents)
        self.fault.restore(self.ctx)

    def _inject(self, round_number: int, index: int, target: FaultTarget) -> Incident:
        self.journal.check()
        pod = target.pod
        incident = Incident(incident_id(round_number, index), round_number, self.drill.fault.type,
                            self.workload.namespace, self.workload.name,
                            pod.name if pod else self.workload.name, pod.uid if pod else "",
                            target.node)
        with self.observer.changed:
            mono, wall = time.monotonic(), datetime.now(UTC)
            incident.mark("injected", mono, wall)
            self.observer.follow(incident, self.fault_type.follow, self.drill.fault.container,
                                 target.replicas)
        self.journal.write("fault_injected", mono=mono, incident=incident.id,
                           round=round_number, fault=incident.fault,
                           namespace=incident.namespace, workload=incident.workload,
                           target_pod=incident.target_pod, target_uid=incident.target_uid,
                           node=incident.node, api_time=wall.isoformat(),
                           service=incident.service)
        try:
            self.journal.check()  # a fault the journal cannot hold is not injected
            done = self.fault.act(self.ctx, target)
        except JournalError:
            self.observer.close(incident)
            raise
        except FaultError as error:
            self.observer.close(incident)
            self.journal.write("incident_closed", incident=incident.id, recovered=False,
                               reason=str(error))
            raise
        if self.options.metrics:
            self.options.metrics.fault_injected(incident.fault)
        self._record_event(target, incident, done)
        self.say(f"{incident.id}: {done}")
        if self.options.on_inject:
            self.options.on_inject(incident)
        return incident

    def _record_event(self, target: FaultTarget, incident: Incident, done: str) -> None:
        """One Kubernetes Event per injected fault, on the pod (or the workload for scale)."""
        pod = target.pod
        involved = client.V1ObjectReference(
            kind="Pod" if pod else self.workload.kind, namespace=self.workload.namespace,
            name=pod.name if pod else self.workload.name, uid=pod.uid if pod else None)
        now = datetime.now(UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name="chaos-drill-",
                                         namespace=self.workload.namespace),
            involved_object=involved, reason="ChaosDrillFault", type="Warning",
            message=f"chaos-drill {self.drill.name} {incident.id}: {done}",
            source=client.V1EventSource(component="chaos-drill"),
            first_timestamp=now, last_timestamp=now, count=1)
        try:
            client.CoreV1Api(self.api).create_namespaced_event(self.workload.namespace, event)
        except ApiException as error:
            self.journal.write("warning", message=f"could not record Event: {error.reason}")

    def _await_recovery(self, incidents: list[Incident]) -> None:
        """Waits until every incident settled (for load: also scaled back in; for a fault lifted
        after its duration: lifted first) or the recovery timeout passed."""
        timeout = self.drill.recovery_timeout_seconds
        lasts = self.drill.fault.duration_seconds or DEFAULT_LOAD_SECONDS
        lifted = not self.fault_type.lifted_after_duration
        if self.fault_type.follow is Follow.AUTOSCALE or not lifted:
            timeout += lasts
        deadline = time.monotonic() + timeout
        lift_at = min(i.phases["injected"] for i in incidents) + lasts
        while True:
            with self.observer.changed:
                pending = [i for i in incidents if not i.settled]
                left = deadline - time.monotonic()
                if not pending or left <= 0 or self.options.stop.is_set():
                    break
                due = lift_at - time.monotonic() if not lifted else left
                if due > 0:
                    self.observer.changed.wait(min(left, due, 0.5))
                    continue
            lifted = self._lift(incidents)
        with self.observer.changed:
            for incident in incidents:
                self.observer.close(incident)
        for incident in incidents:
            self._close(incident)

    def _lift(self, incidents: list[Incident]) -> bool:
        """Ends a fault that lasts its duration: marks each incident lifted as the runner starts
        removing it (the pod may turn Ready before the removal returns), then restores."""
        mono = time.monotonic()
        for incident in incidents:
            self.observer.mark(incident, "lifted", mono)
        self.fault.restore(self.ctx)
        self.say(f"lifted {self.drill.fault.type}")
        return True

    def _close(self, incident: Incident) -> None:
        recovered = incident.recovered
        extra: dict[str, Any] = {"restart_count": incident.restart_count}
        if incident.exit_reason:
            extra["exit_reason"] = incident.exit_reason
        if incident.follow is Follow.AUTOSCALE:
            extra["peak_replicas"] = incident.peak_replicas
        if not recovered:
            extra["reason"] = "stopped" if self.options.stop.is_set() else "recovery timed out"
        self.journal.write("incident_closed", incident=incident.id, recovered=recovered, **extra)
        if self.options.metrics:
            self.options.metrics.incident_closed(incident.fault, incident.recovery_seconds,
                                                 incident.phase_durations())
            self.options.metrics.traffic(incident.fault, incident.offsets())
            if incident.follow is Follow.AUTOSCALE:
                self.options.metrics.scaled(incident.fault, incident.recovery_seconds,
                                            scale_in_seconds(incident, self.drill))
        if self.options.on_incident:
            self.options.on_incident(incident)
        if recovered:
            phases = ", ".join(f"{p} +{t:.3f}s" for p, t in incident.offsets().items()
                               if p != "injected")
            exited = f"; exit reason {incident.exit_reason}" if incident.exit_reason else ""
            self.say(f"{incident.id}: recovered in {incident.recovery_seconds:.3f}s ({phases})"
                     f"{exited}")
        else:
            self.say(f"{incident.id}: NOT recovered ({extra['reason']})")


def _describe(target: FaultTarget) -> str:
    if target.pod:
        return f"pod {target.pod.namespace}/{target.pod.name} on {target.node}"
    return f"the workload to {target.replicas} replicas" if target.replicas else "the workload"
