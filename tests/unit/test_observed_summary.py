"""A watch's journal: observed incidents keep their origin and timing bound, and the events about
an incident's pods explain its slow phase in summary.json, report.html and junit.xml."""

from __future__ import annotations

import json
from typing import Any

from chaos.results.journal import parse_journal
from chaos.results.junit import junit_xml
from chaos.results.report import render_report
from chaos.results.summary import build_summary


def record(event: str, mono: float, **fields: Any) -> str:
    return json.dumps({"event": event, "ts": "2026-01-01T00:00:00.000+00:00", "mono": mono,
                       **fields})


BACKOFF = "Back-off restarting failed container web in pod {}_demo(u1)"
WATCH = "\n".join([
    record("watch_started", 90.0, namespace="demo", workload="Deployment/web"),
    record("fault_injected", 100.0, incident="o1", round=0, fault="container_kill",
           namespace="demo", workload="web", target_pod="web-1", target_uid="u1", node="n1",
           api_time="2026-01-01T00:00:07+00:00", origin="observed",
           injected_from="the container's terminated.finishedAt",
           detail="container web Error (exit code 137)", timing_uncertainty_seconds=0.4),
    record("phase", 100.4, incident="o1", phase="container_exited"),
    record("k8s_event", 100.5, reason="BackOff", object="Pod/web-1",
           message=BACKOFF.format("web-1"), count=1),
    record("k8s_event", 100.5, reason="BackOff", object="Pod/web-2",
           message=BACKOFF.format("web-2"), count=1),
    record("phase", 110.4, incident="o1", phase="restarted"),
    record("phase", 111.0, incident="o1", phase="ready"),
    record("incident_closed", 111.0, incident="o1", recovered=True, restart_count=2),
    record("k8s_event", 112.0, reason="BackOff", object="Pod/web-1",
           message=BACKOFF.format("web-1"), count=2),
    record("drill_finished", 113.0, aborted=False),
]) + "\n"


def test_an_observed_slow_restart_is_put_down_to_the_back_off() -> None:
    summary = build_summary(parse_journal(WATCH))
    assert summary.drill == "watch" and summary.fault == "observed (container_kill)"
    assert summary.passed and not summary.aborted
    [incident] = summary.incidents
    assert incident.origin == "observed" and incident.recovery_seconds == 11.0
    assert incident.timing is not None and "±0.400 s" in incident.timing
    assert [(e["reason"], e["pod"], e["at"]) for e in incident.events] == [
        ("BackOff", "web-1", 0.5)], "only its own pod's events, only until Ready"
    assert incident.causes == ("restart delayed 10.0 s by CrashLoopBackOff (BackOff event at "
                               "+0.5 s)",)
    data = summary.to_dict()["incidents"][0]
    assert data["origin"] == "observed" and data["causes"] == list(incident.causes)
    page = render_report(summary)
    assert 'class="observed">observed</span>' in page
    assert "why: restart delayed 10.0 s by CrashLoopBackOff" in page
    assert "o1 (observed) web-1" in junit_xml(summary)


def test_a_watch_that_saw_nothing_passes() -> None:
    start, finish = WATCH.splitlines()[0], WATCH.splitlines()[-1]
    summary = build_summary(parse_journal(start + "\n" + finish + "\n"))
    assert summary.passed and summary.incidents == ()
    assert [c.detail for c in summary.slo_checks] == ["the watch ended", "no disruption seen"]


def test_an_observed_incident_cut_short_names_what_held_it() -> None:
    lines = WATCH.splitlines()
    cut = lines[:5] + ['{"event":"incident_closed","ts":"2026-01-01T00:00:12.000+00:00",'
                       '"mono":105.0,"incident":"o1","recovered":false,'
                       '"reason":"the watch ended first"}', lines[-1]]
    [incident] = build_summary(parse_journal("\n".join(cut) + "\n")).incidents
    assert incident.recovery_seconds is None
    assert incident.causes == ("restart delayed 4.6 s by CrashLoopBackOff (BackOff event at "
                               "+0.5 s)",)


def test_a_scale_down_is_no_incident_and_the_report_names_it() -> None:
    journal = "\n".join([
        record("watch_started", 90.0, namespace="demo", workload="Deployment/web"),
        record("scaled_down", 95.0, pod="web-3", uid="u3", owner="ReplicaSet/web-abc",
               replicas=2, remaining=2),
        record("drill_finished", 99.0, aborted=False),
    ]) + "\n"
    summary = build_summary(parse_journal(journal))
    assert summary.passed and summary.incidents == ()
    assert summary.scale_downs == ("web-3: ReplicaSet/web-abc scaled to 2",)
    assert summary.to_dict()["scale_downs"] == ["web-3: ReplicaSet/web-abc scaled to 2"]
    assert ("removed, not incidents: web-3: ReplicaSet/web-abc scaled to 2"
            in render_report(summary))
