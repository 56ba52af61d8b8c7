"""The advice after a drill: each rule alone over a small evidence model, and the whole chain
from a hand-written journal to summary.json, the verdict lines and report.html."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chaos.results.advice import (
    advise,
    rule_crash_loop,
    rule_drain_without_pdb,
    rule_identical_probes,
    rule_no_readiness,
    rule_one_replica,
    rule_same_node,
    rule_traffic_to_gone_pod,
)
from chaos.results.evidence import Evidence, IncidentEvidence, PodPlace, evidence_from
from chaos.results.incidents import IncidentResult
from chaos.results.journal import parse_journal
from chaos.results.report import render_report
from chaos.results.summary import build_summary
from chaos.results.weak_spots import ContainerFacts, WorkloadFacts

PROBE = '{"httpGet": {"path": "/"}}'
REPLACED = {"injected": 0.0, "target_gone": 0.1, "replacement_created": 0.2, "scheduled": 0.3,
            "started": 1.0, "ready": 4.0}


def result(id: str = "r1-i1", fault: str = "pod_delete", phases: Mapping[str, float] = REPLACED,
           node: str = "node-1", events: Sequence[Mapping[str, Any]] = (),
           pod: str = "web-a") -> IncidentResult:
    return IncidentResult(id=id, round=int(id[1]), fault=fault, target_pod=pod, node=node,
                          injected_at="", phases=phases, recovery_seconds=phases.get("ready"),
                          restart_count=0, closed=True, reason=None, ordered=True,
                          api_cross_check=None, events=tuple(events))


def facts(replicas: int = 3, pdbs: tuple[str, ...] = ("web",), readiness: str | None = PROBE,
          liveness: str | None = '{"httpGet": {"path": "/healthz"}}') -> WorkloadFacts:
    return WorkloadFacts("Deployment", "web", "demo", replicas,
                         (ContainerFacts("web", readiness, liveness),), pdbs=pdbs)


def places(*nodes: str) -> tuple[PodPlace, ...]:
    return tuple(PodPlace(f"web-{chr(97 + i)}", node, True) for i, node in enumerate(nodes))


def evidence(*incidents: IncidentEvidence, workload: WorkloadFacts | None = None,
             probed: bool = True, fault: str = "pod_delete") -> Evidence:
    return Evidence(fault, workload or facts(), incidents, probed)


def seen(res: IncidentResult, placement: tuple[PodPlace, ...] = places("node-1", "node-2"),
         failures: tuple[float, ...] = (), ready: tuple[tuple[float, int], ...] = ((0.0, 2),),
         span: float = 5.0, while_ready: tuple[float, ...] = (),
         others: int = 1) -> IncidentEvidence:
    return IncidentEvidence(res, placement, failures, ready, span, while_ready, others)


def test_one_replica_names_the_time_without_a_ready_pod_and_the_failures() -> None:
    alone = seen(result(), places("node-1"), failures=(0.2, 0.25, 3.9),
                 ready=((0.0, 1), (0.1, 0), (4.2, 1)))
    found = rule_one_replica(evidence(alone, workload=facts(1)))
    assert found is not None and found.check == "replicas"
    assert found.evidence == ("r1-i1: web-a was the only pod; no pod was Ready for 4.1 s; "
                              "3 requests failed from +0.2 s to +3.9 s")
    assert rule_one_replica(evidence(seen(result()))) is None
    assert rule_one_replica(evidence(seen(result(fault="scale"), places("node-1")))) is None


def test_all_pods_on_the_stopped_node() -> None:
    stopped = seen(result(fault="node_stop", node="node-2"), places("node-2", "node-2", "node-2"),
                   ready=((0.0, 3), (40.0, 0), (52.5, 1)), span=53.0)
    found = rule_same_node(evidence(stopped, fault="node_stop"))
    assert found is not None and found.check == "spread"
    assert found.finding == "all 3 pods were on one node when it was stopped"
    assert "web-a, web-b, web-c all ran on node-2; no pod was Ready for 12.5 s" in found.evidence
    spread = seen(result(fault="node_stop", node="node-2"), places("node-1", "node-2"))
    assert rule_same_node(evidence(spread)) is None


def test_a_drain_without_pdb_that_evicted_two_at_once() -> None:
    placement = places("node-1", "node-1", "node-2")
    drained = [seen(result(f"r1-i{n}", "node_drain", pod=f"web-{p}"), placement,
                    ready=((0.0, 3), (0.2, 1), (3.0, 3)))
               for n, p in ((1, "a"), (2, "b"))]
    found = rule_drain_without_pdb(evidence(*drained, workload=facts(pdbs=())))
    assert found is not None
    assert found.finding == "the drain evicted 2 of 3 pods at once: no PodDisruptionBudget"
    assert found.evidence.endswith("web-a, web-b evicted from node-1 without waiting for "
                                   "replacements; Ready replicas fell to 1")
    assert rule_drain_without_pdb(evidence(*drained)) is None  # it has a PDB
    assert rule_drain_without_pdb(evidence(drained[0], workload=facts(pdbs=()))) is None


def test_failures_while_others_were_ready_point_at_the_endpoints() -> None:
    hit = seen(result(), failures=(0.1, 0.15, 0.3), while_ready=(0.1, 0.15, 0.3), others=2)
    found = rule_traffic_to_gone_pod(evidence(hit))
    assert found is not None and found.check == "endpoints"
    assert found.evidence == ("r1-i1: 3 requests failed from +0.1 s to +0.3 s after web-a was "
                              "hit, while 2 other pod(s) were Ready")
    assert rule_traffic_to_gone_pod(evidence(hit, probed=False)) is None
    assert rule_traffic_to_gone_pod(evidence(seen(result(), failures=(0.1,)))) is None


def test_no_readiness_probe_and_failures_after_the_start() -> None:
    bare = facts(readiness=None, liveness=None)
    early = seen(result(), failures=(0.1, 0.2))
    assert rule_no_readiness(evidence(early, workload=bare)) is None
    late = seen(result(), failures=(0.1, 1.2, 1.5))
    found = rule_no_readiness(evidence(late, workload=bare))
    assert found is not None
    assert found.evidence.startswith("r1-i1: 2 requests failed from +1.2 s to +1.5 s, after "
                                     "the container started at +1.0 s")
    assert rule_no_readiness(evidence(late)) is None  # it has a readiness probe


def test_identical_probes_when_the_run_restarted_a_container() -> None:
    restart = {"injected": 0.0, "container_exited": 0.1, "restarted": 1.2, "ready": 2.5}
    same = facts(liveness=PROBE)
    restarted = seen(result(fault="liveness_break", phases=restart))
    found = rule_identical_probes(evidence(restarted, workload=same))
    assert found is not None and "restarted at +1.2 s and was Ready again at +2.5 s" in \
        found.evidence
    assert rule_identical_probes(evidence(restarted)) is None
    assert rule_identical_probes(evidence(seen(result()), workload=same)) is None


def test_crash_loop_back_off_names_the_wait() -> None:
    restart = {"injected": 0.0, "container_exited": 0.1, "restarted": 10.4, "ready": 11.0}
    back_off = {"at": 0.3, "reason": "BackOff", "pod": "web-a",
                "message": "Back-off restarting failed container web in pod web-a"}
    looped = seen(result(fault="container_kill", phases=restart, events=[back_off]))
    found = rule_crash_loop(evidence(looped))
    assert found is not None
    assert found.evidence.startswith("r1-i1: the restart waited 10.3 s after the container "
                                     "exited (BackOff event at +0.3 s")
    quick = seen(result(fault="container_kill", phases=restart))
    assert rule_crash_loop(evidence(quick)) is None
    at_once = {**restart, "restarted": 1.2, "ready": 1.5}  # a back-off that held nothing
    assert rule_crash_loop(evidence(seen(result(fault="container_kill", phases=at_once,
                                                events=[back_off])))) is None


def test_a_healthy_run_gets_no_advice() -> None:
    assert advise(evidence(seen(result()), seen(result("r2-i1")))) == ()


def record(event: str, mono: float, **fields: Any) -> str:
    return json.dumps({"event": event, "ts": "2025-01-01T12:00:00.000+00:00", "mono": mono,
                       **fields})


DRILL = {"apiVersion": "chaosdrill.dev/v1alpha1", "kind": "ChaosDrill",
         "metadata": {"name": "one", "namespace": "demo"},
         "spec": {"target": {"kind": "Deployment", "name": "web"},
                  "fault": {"type": "pod_delete", "gracePeriodSeconds": 0},
                  "probe": {"service": "web", "port": 80}}}
ALONE = facts(1, pdbs=())


def one_replica_journal(others: int = 0) -> list[str]:
    """A pod_delete of web-a; with OTHERS more pods Ready that the fault did not hit."""
    pods = [{"name": f"web-{chr(97 + n)}", "node": "node-1", "ready": True}
            for n in range(1 + others)]
    lines = [record("drill_started", 90.0, drill=DRILL, dry_run=False),
             record("workload", 95.0, ready=1, desired=1),
             record("workload_facts", 96.0, facts=ALONE.to_dict()),
             record("probe_started", 96.5, url="http://x", origin="host"),
             record("round_started", 100.0, round=1),
             record("placement", 100.0, round=1, pods=pods),
             record("fault_injected", 100.0, incident="r1-i1", round=1, fault="pod_delete",
                    namespace="demo", workload="web", target_pod="web-a", target_uid="u1",
                    node="node-1", api_time=None),
             record("phase", 100.1, incident="r1-i1", phase="target_gone"),
             record("workload", 100.2, ready=0, desired=1),
             # slot 0 at 98.0: failures at +2.1, +2.3 and +4.9 s are 100.1, 100.3 and 102.9;
             # the first while the workload still counted the deleted pod Ready
             record("probe_window", 101.0, seconds=1.0, start_seconds=2.0, requests=20,
                    failures=2, longest_outage_seconds=0.0,
                    failed_at=[[2.1, "connection"], [2.3, "connection"]]),
             record("probe_window", 103.0, seconds=1.0, start_seconds=4.0, requests=20,
                    failures=1, longest_outage_seconds=0.0, failed_at=[[4.9, "connection"]]),
             record("phase", 103.0, incident="r1-i1", phase="ready"),
             record("workload", 103.2, ready=1, desired=1),
             record("incident_closed", 103.5, incident="r1-i1", recovered=True),
             record("drill_finished", 104.0, aborted=False)]
    return lines


def test_evidence_from_a_journal() -> None:
    records = parse_journal("\n".join(one_replica_journal()))
    summary = build_summary(records)
    found = evidence_from(records, summary.incidents, "pod_delete")
    incident = found.incidents[0]
    assert found.facts == ALONE and found.probed
    assert incident.placement == (PodPlace("web-a", "node-1", True),)
    assert incident.failures == (0.1, 0.3, 2.9)
    assert incident.ready_counts == ((0.0, 1), (0.2, 0), (3.2, 1))
    assert incident.seconds_without_ready() == 3.0
    assert incident.ready_at(0.1) == 1 and incident.failures_while_ready == ()


def test_failures_count_as_while_ready_only_with_other_pods_ready() -> None:
    records = parse_journal("\n".join(one_replica_journal(others=2)))
    incident = evidence_from(records, build_summary(records).incidents, "pod_delete").incidents[0]
    assert incident.others_ready == 2
    assert incident.failures_while_ready == (0.1,)


def test_the_advice_reaches_summary_json_the_verdict_and_the_report() -> None:
    summary = build_summary(parse_journal("\n".join(one_replica_journal())))
    advice = summary.to_dict()["advice"]
    assert [a["check"] for a in advice] == ["replicas"]
    assert set(advice[0]) == {"check", "finding", "evidence", "fix"}
    assert "no pod was Ready for 3.0 s; 3 requests failed from +0.1 s to +2.9 s" in \
        advice[0]["evidence"]
    assert "no pod was Ready for 3.0 s" in render_report(summary)


def test_an_older_journal_without_facts_or_placement_still_summarises() -> None:
    lines = [line for line in one_replica_journal()
             if '"workload_facts"' not in line and '"placement"' not in line]
    summary = build_summary(parse_journal("\n".join(lines)))
    assert summary.advice == ()


def test_the_verdict_prints_the_advice(tmp_path: Path) -> None:
    from chaos.cli.commands import verdict

    summary = build_summary(parse_journal("\n".join(one_replica_journal())))
    lines: list[str] = []
    verdict(summary, tmp_path, lines.append)
    at = lines.index("advice (1):")
    assert lines[at + 1].startswith("  [replicas] one replica: each of the 1 pod_delete")
    assert lines[at + 2].startswith("      evidence: r1-i1: web-a was the only pod")
    assert lines[at + 3].startswith("      fix: run 2 or more replicas")
