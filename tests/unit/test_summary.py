"""Summaries rebuilt from hand-written journals; the junit.xml and report.html made from them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from chaos.errors import ChaosDrillError
from chaos.observe.observer import Observer
from chaos.observe.probe_window import WindowTally
from chaos.results import rebuild_results, write_results
from chaos.results.journal import Journal, parse_journal
from chaos.results.junit import junit_xml
from chaos.results.report import render_report
from chaos.results.summary import Summary, build_summary


def drill_started(slo: str = '{"maxRecoverySeconds": 30, "minAvailability": 0.95}') -> str:
    return (
        '{"event":"drill_started","ts":"2025-01-01T12:00:00.000+00:00","mono":90.0,'
        '"drill":{"apiVersion":"chaosdrill.dev/v1alpha1","kind":"ChaosDrill",'
        '"metadata":{"name":"web-pod-kill","namespace":"demo"},'
        '"spec":{"target":{"kind":"Deployment","name":"web"},"fault":{"type":"pod_delete"},'
        f'"rounds":2,"probe":{{"service":"web","port":80}},"slo":{slo}}}}}}}\n'
    )


ROUND_1 = """\
{"event":"round_started","ts":"2025-01-01T12:00:10.000+00:00","mono":100.0,"round":1}
{"event":"fault_injected","ts":"2025-01-01T12:00:10.000+00:00","mono":100.0,"incident":"r1-i1","round":1,"fault":"pod_delete","namespace":"demo","workload":"web","target_pod":"web-abc-1","target_uid":"u1","node":"node-1","api_time":"2025-01-01T12:00:10+00:00"}
{"event":"phase","ts":"2025-01-01T12:00:10.200+00:00","mono":100.2,"incident":"r1-i1","phase":"target_gone","api_time":null}
{"event":"phase","ts":"2025-01-01T12:00:10.300+00:00","mono":100.3,"incident":"r1-i1","phase":"replacement_created","api_time":"2025-01-01T12:00:10+00:00"}
{"event":"phase","ts":"2025-01-01T12:00:10.350+00:00","mono":100.35,"incident":"r1-i1","phase":"scheduled"}
{"event":"phase","ts":"2025-01-01T12:00:11.500+00:00","mono":101.5,"incident":"r1-i1","phase":"started"}
{"event":"phase","ts":"2025-01-01T12:00:13.000+00:00","mono":103.0,"incident":"r1-i1","phase":"ready","api_time":"2025-01-01T12:00:13+00:00"}
{"event":"incident_closed","ts":"2025-01-01T12:00:13.000+00:00","mono":103.0,"incident":"r1-i1","recovered":true}
{"event":"probe_window","ts":"2025-01-01T12:00:11.000+00:00","mono":101.0,"seconds":1.0,"requests":20,"failures":2,"longest_outage_seconds":0.1}
{"event":"probe_window","ts":"2025-01-01T12:00:12.000+00:00","mono":102.0,"seconds":1.0,"requests":20,"failures":0,"longest_outage_seconds":0.1}
"""

ROUND_2 = """\
{"event":"round_started","ts":"2025-01-01T12:00:23.000+00:00","mono":113.0,"round":2}
{"event":"fault_injected","ts":"2025-01-01T12:00:23.000+00:00","mono":113.0,"incident":"r2-i1","round":2,"fault":"pod_delete","namespace":"demo","workload":"web","target_pod":"web-abc-2<script>","target_uid":"u2","node":"node-1"}
{"event":"phase","ts":"2025-01-01T12:00:23.100+00:00","mono":113.1,"incident":"r2-i1","phase":"target_gone"}
{"event":"phase","ts":"2025-01-01T12:00:28.000+00:00","mono":118.0,"incident":"r2-i1","phase":"ready"}
{"event":"incident_closed","ts":"2025-01-01T12:00:28.000+00:00","mono":118.0,"incident":"r2-i1","recovered":true}
{"event":"probe_window","ts":"2025-01-01T12:00:24.000+00:00","mono":114.0,"seconds":1.0,"requests":60,"failures":0,"longest_outage_seconds":0.1}
"""

FINISHED = (
    '{"event":"drill_finished","ts":"2025-01-01T12:00:30.000+00:00","mono":120.0,'
    '"aborted":false}\n'
)
TRUNCATED = '{"event":"probe_window","ts":"2025-01-01T12:00:'


def summarise(text: str) -> Summary:
    return build_summary(parse_journal(text))


def test_complete_run_passes() -> None:
    summary = summarise(drill_started() + ROUND_1 + ROUND_2 + FINISHED + TRUNCATED)
    assert (summary.drill, summary.namespace) == ("web-pod-kill", "demo")
    assert summary.fault == "pod_delete"
    assert summary.started == "2025-01-01T12:00:00.000+00:00"
    assert summary.finished == "2025-01-01T12:00:30.000+00:00"
    assert not summary.aborted and summary.passed
    assert [i.recovery_seconds for i in summary.incidents] == pytest.approx([3.0, 5.0])
    first = summary.incidents[0]
    assert list(first.phases) == [
        "injected", "target_gone", "replacement_created", "scheduled", "started", "ready"
    ]
    assert first.phases["started"] == pytest.approx(1.5)
    assert first.api_cross_check is not None and "agrees" in first.api_cross_check
    assert summary.recovery.count == 2
    assert summary.recovery.median == pytest.approx(4.0)
    assert summary.recovery.p95 == pytest.approx(5.0)
    assert summary.recovery.max == pytest.approx(5.0)
    assert summary.availability.requests == 100 and summary.availability.failures == 2
    assert summary.availability.ratio == pytest.approx(0.98)
    assert summary.availability.longest_outage_seconds == pytest.approx(0.1)
    assert [c.name for c in summary.slo_checks] == [
        "drill_completed", "all_recovered", "max_recovery_seconds", "min_availability"
    ]


def test_crash_leaves_an_unclosed_incident_that_fails() -> None:
    crashed = ROUND_2.replace(
        '{"event":"incident_closed","ts":"2025-01-01T12:00:28.000+00:00","mono":118.0,'
        '"incident":"r2-i1","recovered":true}\n',
        "",
    )
    summary = summarise(drill_started() + ROUND_1 + crashed + TRUNCATED)
    assert summary.aborted and summary.finished is None and not summary.passed
    second = summary.incidents[1]
    assert second.recovery_seconds is None and not second.closed
    assert second.reason == "never closed: the run ended first"
    checks = {c.name: c for c in summary.slo_checks}
    assert not checks["drill_completed"].passed
    assert not checks["all_recovered"].passed
    assert "r2-i1" in checks["all_recovered"].detail
    assert not checks["max_recovery_seconds"].passed
    assert summary.recovery.count == 1


def test_impossible_slo_fails_and_junit_says_so() -> None:
    slo = '{"maxRecoverySeconds": 0.001, "minAvailability": 1}'
    summary = summarise(drill_started(slo) + ROUND_1 + ROUND_2 + FINISHED)
    assert not summary.passed
    checks = {c.name: c for c in summary.slo_checks}
    assert not checks["max_recovery_seconds"].passed
    detail = checks["max_recovery_seconds"].detail
    assert "slowest recovery 5.000 s (r2-i1), need <= 0.001 s" in detail
    assert not checks["min_availability"].passed and checks["all_recovered"].passed

    suite = ET.fromstring(junit_xml(summary)).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("time")) == ("4", "2", "30.000")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == set(checks)
    failure = cases["max_recovery_seconds"].find("failure")
    assert failure is not None and "need <= 0.001 s" in (failure.get("message") or "")
    assert cases["all_recovered"].find("failure") is None


def test_aborted_run() -> None:
    aborted = FINISHED.replace('"aborted":false', '"aborted":true,"reason":"Ctrl-C"')
    summary = summarise(drill_started() + ROUND_1 + aborted)
    assert summary.aborted and summary.abort_reason == "Ctrl-C" and not summary.passed


def test_no_probe_traffic_fails_the_availability_check() -> None:
    summary = summarise(drill_started() + ROUND_1.split('{"event":"probe_window"')[0] + FINISHED)
    check = {c.name: c for c in summary.slo_checks}["min_availability"]
    assert not check.passed and check.detail == ("the probe recorded no request, need 0.95: its "
                                                 "prober reported no window before the drill "
                                                 "ended")


def test_dry_run_passes_with_no_incidents() -> None:
    started = drill_started().replace('"mono":90.0,', '"mono":90.0,"dry_run":true,')
    summary = summarise(started + FINISHED)
    assert summary.dry_run and summary.passed
    assert [c.name for c in summary.slo_checks] == ["drill_completed", "all_recovered"]


def test_journal_without_drill_started() -> None:
    with pytest.raises(ChaosDrillError, match="no drill_started"):
        summarise(ROUND_1)


def test_report_is_offline_and_escaped() -> None:
    page = render_report(summarise(drill_started() + ROUND_1 + ROUND_2 + FINISHED))
    assert "<script>" not in page and "web-abc-2&lt;script&gt;" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page
    assert page.count("<svg") == 2 and "PASSED" in page


def test_write_and_rebuild_results(tmp_path: Path) -> None:
    (tmp_path / "journal.jsonl").write_text(drill_started() + ROUND_1 + ROUND_2 + FINISHED)
    summary = rebuild_results(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["journal.jsonl", "junit.xml", "report.html", "summary.json"]
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["passed"] is True and data["incidents"][0]["recovery_seconds"] == 3.0
    assert data == summary.to_dict()
    assert write_results(tmp_path, summary)[0].name == "summary.json"


def test_open_loop_windows_give_failure_kinds_and_latency(tmp_path: Path) -> None:
    """Windows as the Observer journals them: mono at each second's end, every new field; the
    summary adds the failures by kind and latency percentiles, summary.json and the report too."""
    journal = Journal.open(tmp_path / "windows.jsonl")
    prober = SimpleNamespace(start_mono=100.0, requests=15, failures=3)
    observer = cast(Observer, SimpleNamespace(journal=journal, prober=prober, listeners=[],
                                              metrics=None))
    tally = WindowTally(10)
    outcomes = {3: ("timeout", 0.3), 4: ("unsent", None), 12: ("http_error", 0.005)}
    for slot in range(15):
        window = tally.add(slot, *outcomes.get(slot, ("ok", 0.01)))
        if window:
            Observer._on_window(observer, window)
    last = tally.flush()
    assert last is not None
    Observer._on_window(observer, last)
    journal.close()

    windows = (tmp_path / "windows.jsonl").read_text()
    records = parse_journal(windows)
    assert [(r.mono, r.get("start_seconds"), r.get("seconds")) for r in records] == [
        (101.0, 0.0, 1.0), (101.5, 1.0, 0.5)]
    first = records[0]
    assert {k: first.get(k) for k in ("requests", "failures", "timeouts", "unsent", "ok")} == {
        "requests": 10, "failures": 2, "timeouts": 1, "unsent": 1, "ok": 8}
    assert first.get("failed_at") == [[0.3, "timeout"], [0.4, "unsent"]]
    assert first.get("latency") == {"10": 8, "300": 1} and first.get("latency_max_seconds") == 0.3

    (tmp_path / "journal.jsonl").write_text(drill_started() + windows + FINISHED)
    summary = rebuild_results(tmp_path)
    availability = summary.availability
    assert (availability.requests, availability.failures) == (15, 3)
    assert (availability.timeouts, availability.unsent, availability.http_errors,
            availability.connection_errors) == (1, 1, 1, 0)
    assert (availability.latency_p50_seconds, availability.latency_p90_seconds,
            availability.latency_p99_seconds, availability.latency_max_seconds) == (
        0.01, 0.01, 0.3, 0.3)
    data = json.loads((tmp_path / "summary.json").read_text())["availability"]
    assert set(data) == {"requests", "failures", "ratio", "longest_outage_seconds",
                         "http_errors", "connection_errors", "timeouts", "unsent",
                         "latency_p50_seconds", "latency_p90_seconds", "latency_p99_seconds",
                         "latency_max_seconds"}
    page = (tmp_path / "report.html").read_text()
    assert "3 failed: 1 HTTP 5xx, 1 timeouts, 1 unsent" in page
    assert "p50 0.010 s, p90 0.010 s, p99 0.300 s, max 0.300 s" in page


def test_old_journals_have_no_latency() -> None:
    availability = summarise(drill_started() + ROUND_1 + ROUND_2 + FINISHED).availability
    assert availability.timeouts == availability.unsent == 0
    assert availability.latency_p50_seconds is None and availability.latency_max_seconds is None


OOM_ROUND = """\
{"event":"round_started","ts":"2025-01-01T12:00:10.000+00:00","mono":100.0,"round":1}
{"event":"fault_injected","ts":"2025-01-01T12:00:10.000+00:00","mono":100.0,"incident":"r1-i1","round":1,"fault":"oom_kill","namespace":"demo","workload":"web","target_pod":"web-abc-1","target_uid":"u1","node":"node-1"}
{"event":"phase","ts":"2025-01-01T12:00:10.200+00:00","mono":100.2,"incident":"r1-i1","phase":"container_exited","restart_count":0}
{"event":"phase","ts":"2025-01-01T12:00:11.000+00:00","mono":101.0,"incident":"r1-i1","phase":"restarted","restart_count":1,"exit_reason":"OOMKilled"}
{"event":"phase","ts":"2025-01-01T12:00:11.100+00:00","mono":101.1,"incident":"r1-i1","phase":"ready","restart_count":1,"exit_reason":"OOMKilled"}
{"event":"incident_closed","ts":"2025-01-01T12:00:11.100+00:00","mono":101.1,"incident":"r1-i1","recovered":true,"restart_count":1,"exit_reason":"OOMKilled"}
"""


def test_an_in_place_restart_carries_its_exit_reason_to_summary_and_report() -> None:
    summary = summarise(drill_started() + OOM_ROUND + FINISHED)
    [incident] = summary.incidents
    assert incident.exit_reason == "OOMKilled" and incident.restart_count == 1
    assert list(incident.phases) == ["injected", "container_exited", "restarted", "ready"]
    assert summary.to_dict()["incidents"][0]["exit_reason"] == "OOMKilled"
    assert "container exited: OOMKilled" in render_report(summary)
    assert summarise(drill_started() + ROUND_1 + FINISHED).incidents[0].exit_reason is None


def oom_rounds(reason: str, kills: int) -> str:
    """Two oom_kill rounds on the same pod (an in-place restart keeps its UID); the kernel's
    count of the second joins the second incident only."""
    second = (OOM_ROUND.replace("r1-i1", "r2-i1").replace('"round":1', '"round":2')
              .replace("12:00:1", "12:00:2").replace('"mono":10', '"mono":11')
              .replace("OOMKilled", reason))
    note = ('{"event":"kernel_oom_kills","ts":"2025-01-01T12:00:21.200+00:00","mono":111.2,'
            f'"target_uid":"u1","pod":"web-abc-1","count":{kills}}}\n')
    return drill_started() + OOM_ROUND + second + note + FINISHED


def test_the_kernels_oom_kills_join_the_last_incident_on_that_pod() -> None:
    summary = summarise(oom_rounds("Error", 1))
    first, second = summary.incidents
    assert first.kernel_oom_kills is None and second.kernel_oom_kills == 1
    assert summary.to_dict()["incidents"][1]["kernel_oom_kills"] == 1
    report = render_report(summary)
    assert ("container exited: Error; the kernel OOM-killed 1 process in the container (the "
            "runtime reported Error: it missed the OOM event)") in report
    agreed = render_report(summarise(oom_rounds("OOMKilled", 1)))
    assert "the kernel OOM-killed 1 process in the container" in agreed
    assert "missed the OOM event" not in agreed
    assert "the kernel logged no OOM kill in the container" in render_report(
        summarise(oom_rounds("Error", 0)))
