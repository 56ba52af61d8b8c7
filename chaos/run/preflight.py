"""The checks a drill makes before its first fault: node faults' policy, a load drill's
autoscaler and metrics API, the cluster DNS before a probe, what dead runs left (undone, or a
refusal when it is on the target), a probe Service that answers, and pods that opted in. A part
DrillRun inherits."""

from __future__ import annotations

from typing import Any

from chaos.cluster import addons
from chaos.cluster.base import ClusterProvider, Progress
from chaos.cluster.kube import Workload
from chaos.drill import node_guard
from chaos.drill.fault_types import FaultType, Follow
from chaos.drill.restore import Restored, restore_dead_runs
from chaos.drill.spec import Drill
from chaos.drill.targeting import OPT_IN_LABEL, PodInfo, filter_opted_in
from chaos.errors import SafetyError
from chaos.observe.observer import Observer
from chaos.results.journal import Journal
from chaos.run.probing import probe_url


class Preflight:
    """Needs the run's drill, fault type, options, api, workload, provider, observer, journal
    and say; sets probe_url."""

    drill: Drill
    fault_type: FaultType
    options: Any
    api: Any
    workload: Workload
    provider: ClusterProvider
    observer: Observer
    journal: Journal
    say: Progress
    probe_url: str

    def _check_node_policy(self) -> None:
        """For node faults, before anything: the cordon cap, and spec.fault.node's labels (a
        victim's node is checked when the round picks it)."""
        action, policy = self.fault_type.node_action, self.options.node_policy
        if action == "cordon":
            why = node_guard.cap_refusal(self.drill.recovery_timeout_seconds, policy)
            if why is not None:
                raise SafetyError(why)
        if action and self.drill.fault.node:
            node_guard.check_node(self.api, self.drill.fault.node, policy)

    def _check_autoscaling(self) -> str | None:
        """For load: the workload's HPA and Service, found before anything starts (a one-line
        SpecError otherwise), and the metrics API the HPA reads, waited for (a cluster just
        brought up may still be starting metrics-server); None for every other fault."""
        if self.fault_type.follow is not Follow.AUTOSCALE:
            return None
        from chaos.drill.faults.load import autoscaler_for, service_for

        service_for(self.api, self.workload)
        autoscaler = autoscaler_for(self.api, self.workload)
        addons.wait_for_metrics(self.api, self.say)
        return autoscaler

    def _wait_for_dns(self) -> None:
        """Before the probe, whose path may call a Service by name (web's /cgi-bin/api does),
        and before dns_block: the cluster DNS serving, which a cluster just brought up may
        still be starting."""
        if self.options.dry_run:
            return
        if self.drill.probe is not None or self.drill.fault.type == "dns_block":
            addons.wait_for_dns(self.api, self.say)

    def _restore_dead_runs(self) -> None:
        """Undoes what dead runs left in the namespace and on nodes; refuses (SafetyError) when
        the target itself carries a change it cannot undo: a live run's without a target Lease
        (an older chaos-drill), or a record that cannot be read."""
        done: Restored = restore_dead_runs(self.api, self.workload.namespace, self.say,
                                           self.provider)
        for left in done.restored:
            self.journal.write("restored_leftover", kind=left.kind, name=left.name,
                               namespace=left.namespace, run=left.record.run,
                               original=left.record.original)
        for line in done.skipped:
            self.journal.write("warning", message=line)
        w = self.workload
        target = (w.kind, w.name, w.namespace)
        for bad in done.unreadable:
            if (bad.kind, bad.name, bad.namespace) == target:
                raise SafetyError(f"{w.kind} {w.namespace}/{w.name}: {bad.trouble()}")
        for left, why in done.left:
            if (left.kind, left.name, left.namespace) == target:
                raise SafetyError(f"{left.describe()}, and that run is alive ({why}) without "
                                  "holding the target: wait for it to end, then retry")

    def _refuse_early(self) -> None:
        """The checks that need the cluster but no fault: a probe Service that answers on the
        port, and opted-in pods to attack."""
        probe = self.drill.probe
        if probe is not None:
            self.probe_url = probe_url(self.api, self.drill)
        pods = [PodInfo.from_dict(p) for p in self.observer.pods().values()]
        if pods and not filter_opted_in(pods):
            w = self.workload
            raise SafetyError(f"no pod of {w.kind} {w.namespace}/{w.name} has opted in: label "
                              f"its pod template {OPT_IN_LABEL}=true to allow drills on it")

