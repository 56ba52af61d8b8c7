"""Benchmarks of drills: observer throughput over a recorded pod watch stream, detection latency
from the socket to the timeline during a real drill, peak memory of a drill watching 300 pods,
and a 5-round pod_delete drill end to end.

Run with `make bench` (or `.venv/bin/pytest tests/bench/test_drill_bench.py -m bench -s`).
Each benchmark prints its figures and merges them into tests/bench/results/drills.json, so a
run of one benchmark keeps the others' last figures. The throughput benchmark replays
tests/bench/data/pod-watch-stream.jsonl and needs no cluster; CHAOS_DRILL_RECORD=1 with
`-k test_record` records that stream afresh from the local cluster."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from benchsupport import CROWD_REPLICAS, kib, percentile, wait_crowd_gone
from kubernetes import client

from chaos.cluster import workloads
from chaos.cluster.local import LocalCluster
from chaos.drill.loading import load_drill
from chaos.drill.timeline import Incident
from chaos.observe.tracker import Tracker
from chaos.observe.watch import ResourceWatch
from chaos.results import read_journal
from chaos.results.summary import Summary
from chaos.run.runner import DrillRun, RunOptions

from support import REPO, Figures, wait_settled

pytestmark = pytest.mark.bench

RESULTS = Path(__file__).resolve().parent / "results" / "drills.json"
STREAM = Path(__file__).resolve().parent / "data" / "pod-watch-stream.jsonl"
WEB_KILL = REPO / "manifests" / "drills" / "web-pod-kill.yaml"

FAULT = "FAULT"
"""The stream's marker lines: {"type": "FAULT", "object": {incident, fault, target_pod,
target_uid, replicas}, "arrived": s}, where a drill injected a fault; every other line is one
pod watch event as ResourceWatch handed it on: {"type", "object", "arrived": s from the first}."""

POD_DELETE: dict[str, Any] = {"type": "pod_delete", "count": 1, "gracePeriodSeconds": 0}
WATCH_KINDS = ("ADDED", "MODIFIED", "DELETED")
REPLAY_RUNS = 7
REPLAY_EVENTS = 50_000
LATENCY_ROUNDS = 10
CROWD_ROUNDS = 3
CROWD_DRILLS = 3
WEB_KILL_RUNS = 3
RSS_POLL_SECONDS = 0.05


# -- figures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def figures() -> Iterator[Figures]:
    found = Figures()
    yield found
    found.save(RESULTS)


# -- drills -------------------------------------------------------------------------------------


def drill_file(folder: Path, name: str, **spec: Any) -> Path:
    """A ChaosDrill on Deployment web in demo; SPEC overrides (None drops a field). Without a
    probe only the recovery SLO applies: an availability SLO with no requests fails."""
    base: dict[str, Any] = {
        "target": {"kind": "Deployment", "name": "web"}, "fault": POD_DELETE,
        "rounds": 1, "intervalSeconds": 1, "seed": 42, "maxUnavailable": 1,
        "probe": {"service": "web", "port": 80, "path": "/", "ratePerSecond": 20},
        "slo": {"maxRecoverySeconds": 60, "minAvailability": 0},
    }
    merged = {key: value for key, value in {**base, **spec}.items() if value is not None}
    if "probe" not in merged:
        merged["slo"] = {"maxRecoverySeconds": merged["slo"]["maxRecoverySeconds"]}
    doc = {"apiVersion": "chaosdrill.dev/v1alpha1", "kind": "ChaosDrill",
           "metadata": {"name": name, "namespace": "demo"}, "spec": merged}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run_drill(cluster: LocalCluster, path: Path, out: Path) -> tuple[DrillRun, Summary]:
    run = DrillRun(load_drill(path), cluster, RunOptions(out_dir=out), print)
    return run, run.run()


# -- the recorded stream ------------------------------------------------------------------------


@pytest.mark.skipif(os.environ.get("CHAOS_DRILL_RECORD") != "1",
                    reason="records tests/bench/data/pod-watch-stream.jsonl afresh: "
                           "set CHAOS_DRILL_RECORD=1")
def test_record_pod_watch_stream(web: Any, cluster: LocalCluster, tmp_path: Path) -> None:
    """A pod watch on web, through ResourceWatch's callback, while real drills run: four
    rounds of pod_delete, then a scale to 5 and back to 3; the faults join as marker lines."""
    seen: list[tuple[str, dict[str, Any], float]] = []
    guard = threading.Lock()

    def keep(kind: str, obj: dict[str, Any], arrived: float) -> None:
        with guard:
            seen.append((kind, obj, arrived))

    watch = ResourceWatch("pods", client.CoreV1Api(web).list_namespaced_pod, keep, "demo",
                          label_selector="app=web").start()
    assert watch.synced.wait(30)
    faults: list[tuple[str, dict[str, Any], float]] = []
    try:
        for name, fault, rounds in (("pod-delete", POD_DELETE, 4),
                                    ("scale", {"type": "scale", "replicas": 5}, 1)):
            path = drill_file(tmp_path, name, fault=fault, rounds=rounds, probe=None)
            _, summary = run_drill(cluster, path, tmp_path / name)
            assert summary.passed, summary.slo_checks
            for record in read_journal(tmp_path / name / "journal.jsonl"):
                if record.event == "fault_injected":
                    marker = {key: record.get(key) for key in
                              ("fault", "target_pod", "target_uid")}
                    marker.update(incident=f"{name}-{record.get('incident')}",
                                  replicas=fault.get("replicas", 0))
                    faults.append((FAULT, marker, record.mono))
        wait_settled(web, 3)
    finally:
        watch.stop()
    assert watch.restarts == 0, "the recording should be one unbroken watch"
    lines = sorted(seen + faults, key=lambda event: event[2])
    start = lines[0][2]
    STREAM.parent.mkdir(parents=True, exist_ok=True)
    with STREAM.open("w") as stream:
        for kind, obj, arrived in lines:
            stream.write(json.dumps({"type": kind, "object": obj,
                                     "arrived": round(arrived - start, 6)},
                                    separators=(",", ":")) + "\n")
    print(f"\nrecorded {len(seen)} pod events and {len(faults)} faults into "
          f"{STREAM.relative_to(REPO)} ({STREAM.stat().st_size // 1024} KiB)")


# -- observer throughput ------------------------------------------------------------------------


def follow(tracker: Tracker, fault: dict[str, Any], at: float) -> None:
    """Opens the incident a marker line records, as the runner does when it injects."""
    incident = Incident(fault["incident"], 1, fault["fault"], "demo", "web",
                        fault["target_pod"], fault["target_uid"])
    incident.mark("injected", at)
    if fault["fault"] == "scale":
        tracker.follow_scale(incident, int(fault["replicas"]))
    else:
        tracker.follow_replacement(incident)


def decoded(lines: Sequence[bytes], tracker: Tracker) -> Iterator[tuple[str, dict[str, Any],
                                                                       float]]:
    """Every line decoded as the watch decodes it; markers open incidents on the way."""
    for line in lines:
        event = json.loads(line)
        if event["type"] == FAULT:
            follow(tracker, event["object"], event["arrived"])
        else:
            yield event["type"], event["object"], event["arrived"]


def replay_once(lines: Sequence[bytes]) -> list[tuple[str, str]]:
    """One session through a fresh Tracker (the stream's pod uids repeat from one pass to the
    next); returns the (incident, phase) entries it made."""
    entries: list[tuple[str, str]] = []
    tracker = Tracker(on_phase=lambda incident, phase, *_: entries.append((incident.id, phase)))
    tracker.replay(decoded(lines, tracker))
    return entries


@contextmanager
def on_one_core() -> Iterator[int]:
    """Pins this process to one CPU for the duration; yields that CPU."""
    allowed = os.sched_getaffinity(0)
    cpu = max(allowed)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, allowed)


def test_observer_throughput_over_a_replayed_stream(figures: Figures) -> None:
    lines = STREAM.read_bytes().splitlines()
    pod_events = sum(1 for line in lines if not line.startswith(b'{"type":"FAULT"'))
    faults = len(lines) - pod_events
    expected = replay_once(lines)
    incidents = {incident for incident, _ in expected}
    assert len(incidents) == faults, "every recorded fault opens an incident"
    assert {incident for incident, phase in expected if phase == "ready"} == incidents, expected
    passes = math.ceil(REPLAY_EVENTS / pod_events)
    rates, decode_rates = [], []
    with on_one_core() as cpu:
        for _ in range(REPLAY_RUNS):
            began = time.perf_counter()
            for _ in range(passes):
                entries = replay_once(lines)
            rates.append(passes * pod_events / (time.perf_counter() - began))
            assert entries == expected
            began = time.perf_counter()
            for _ in range(passes):
                for line in lines:
                    json.loads(line)
            decode_rates.append(passes * pod_events / (time.perf_counter() - began))
    figures.add("observer_throughput", "events/s", rates, goal_min=5000,
                events_per_run=passes * pod_events, stream_pod_events=pod_events,
                stream_faults=faults, stream_kib=STREAM.stat().st_size // 1024, cpu=cpu,
                what="json.loads of each recorded line + Tracker.replay, incidents open")
    figures.add("observer_throughput_json_decode_only", "events/s", decode_rates,
                what="json.loads of the same lines alone, for comparison")


# -- detection latency --------------------------------------------------------------------------


def test_detection_latency_socket_to_timeline(web: Any, cluster: LocalCluster, tmp_path: Path,
                                              figures: Figures) -> None:
    """A 10-round pod_delete drill, probe on; for each timeline entry, the time from the chunk
    that carried its event being read off the socket (ResourceWatch's arrival time) to the
    entry written to the journal; and the same for every pod watch event handled."""
    path = drill_file(tmp_path, "latency", rounds=LATENCY_ROUNDS)
    run = DrillRun(load_drill(path), cluster, RunOptions(out_dir=tmp_path / "out"), print)
    phases: list[float] = []
    decisions: list[float] = []
    events: list[float] = []
    enter_timeline = run.observer.tracker.on_phase

    def timed_phase(incident: Incident, phase: str, mono: float,
                    api_time: datetime | None) -> None:
        decisions.append(time.monotonic() - mono)
        enter_timeline(incident, phase, mono, api_time)
        phases.append(time.monotonic() - mono)

    pod_watch = next(w for w in run.observer.watches if w.name == "pods")
    handle_event = pod_watch.on_event

    def timed_event(kind: str, pod: dict[str, Any], arrived: float) -> None:
        handle_event(kind, pod, arrived)
        if kind in WATCH_KINDS:
            events.append(time.monotonic() - arrived)

    run.observer.tracker.on_phase = timed_phase
    pod_watch.on_event = timed_event
    summary = run.run()
    assert summary.passed, summary.slo_checks
    assert len(summary.incidents) == LATENCY_ROUNDS
    assert len(phases) == 5 * LATENCY_ROUNDS, "five phases after injected, per incident"
    ms = [s * 1000 for s in phases]
    decided_ms = [s * 1000 for s in decisions]
    figures.add("detection_latency_socket_to_timeline", "ms", ms, goal_p99_max=50,
                p99=round(percentile(ms, 0.99), 3), p95=round(percentile(ms, 0.95), 3),
                rounds=LATENCY_ROUNDS,
                socket_to_tracker_decision_ms={
                    "median": round(statistics.median(decided_ms), 3),
                    "p99": round(percentile(decided_ms, 0.99), 3)},
                what="chunk read off the socket to the phase's journal line written and "
                     "fsynced, per timeline entry")
    event_ms = [s * 1000 for s in events]
    figures.add("pod_event_socket_to_handled", "ms", event_ms,
                p99=round(percentile(event_ms, 0.99), 3),
                p95=round(percentile(event_ms, 0.95), 3),
                what="every pod watch event of the same drill: socket to Observer done")


# -- memory of a drill watching 300 pods --------------------------------------------------------


def crowd() -> dict[str, Any]:
    """300 sleeping pause containers, opted in, under the namespace's restricted policy."""
    labels = {"app": "crowd", "chaosdrill.dev/allow": "true"}
    container = {
        "name": "pause", "image": "chaosdrill.local/pause:1", "imagePullPolicy": "IfNotPresent",
        "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}, "limits": {"memory": "16Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    return {
        "metadata": {"name": "crowd", "namespace": "demo", "labels": labels},
        "spec": {
            "replicas": CROWD_REPLICAS, "selector": {"matchLabels": {"app": "crowd"}},
            "template": {"metadata": {"labels": labels}, "spec": {
                "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 1,
                "enableServiceLinks": False,
                "securityContext": {"runAsNonRoot": True, "runAsUser": 65534,
                                    "runAsGroup": 65534,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [container]}},
        },
    }


@dataclass
class MemoryTrace:
    """A child process's VmRSS, polled, and its VmHWM (peak RSS) as last read before it ended.
    Not wait4's ru_maxrss: that also counts the pytest process the child was forked from."""

    rss_kib: list[int] = field(default_factory=list)
    peak_kib: int = 0
    exit_code: int = -1
    seconds: float = 0.0


TRACE_DEADLINE_SECONDS = 900


def run_and_trace(command: list[str], log: Path) -> MemoryTrace:
    trace = MemoryTrace()
    began = time.monotonic()
    with log.open("w") as output:
        proc = subprocess.Popen(command, cwd=REPO, stdout=output, stderr=output)
        deadline = began + TRACE_DEADLINE_SECONDS
        while proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait(timeout=30)
                pytest.fail(f"{' '.join(command)} still running after {TRACE_DEADLINE_SECONDS}s")
            try:
                rss, peak = kib(proc.pid, "VmRSS"), kib(proc.pid, "VmHWM")
            except OSError:  # it ended between poll and read
                continue
            if rss:  # an exiting process has no memory left to report
                trace.rss_kib.append(rss)
                trace.peak_kib = max(trace.peak_kib, peak)
            time.sleep(RSS_POLL_SECONDS)  # the sampling period, not a wait for a condition
    trace.exit_code, trace.seconds = proc.returncode, time.monotonic() - began
    return trace


def namespace_events(api: Any) -> int:
    """How many Events demo holds: the drill's events watch lists (and decodes) them all."""
    listing = client.CoreV1Api(api).list_namespaced_event("demo", _preload_content=False)
    return len(json.loads(listing.data)["items"])


def crowd_drill(path: Path, out: Path) -> MemoryTrace:
    """One `chaos-drill run` of PATH on crowd, traced; checks it saw all 300 pods and passed."""
    trace = run_and_trace([sys.executable, "-m", "chaos", "run", str(path), "--out", str(out)],
                          out.with_suffix(".log"))
    assert trace.exit_code == 0, out.with_suffix(".log").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert [i["recovery_seconds"] is not None for i in summary["incidents"]] == [
        True] * CROWD_ROUNDS
    selections = [r.get("lines")[0] for r in read_journal(out / "journal.jsonl")
                  if r.event == "selection"]
    assert selections == [f"{CROWD_REPLICAS} pods considered"] * CROWD_ROUNDS
    return trace


def test_memory_of_a_drill_watching_300_pods(web: Any, tmp_path: Path,
                                             figures: Figures) -> None:
    """Three runs of a 3-round pod_delete drill on the 300 pods of Deployment crowd, each a
    `chaos-drill run` process whose VmRSS is polled and whose VmHWM is its peak."""
    apps = client.AppsV1Api(web)
    began = time.monotonic()
    apps.create_namespaced_deployment("demo", crowd())
    traces: list[MemoryTrace] = []
    try:
        workloads.wait_steady(web, "demo", "crowd", timeout=600)
        crowd_ready = time.monotonic() - began
        path = drill_file(tmp_path, "crowd", target={"kind": "Deployment", "name": "crowd"},
                          rounds=CROWD_ROUNDS, probe=None)
        events = namespace_events(web)
        for number in range(CROWD_DRILLS):
            traces.append(crowd_drill(path, tmp_path / f"run-{number}"))
    finally:
        apps.delete_namespaced_deployment("crowd", "demo")
        gone_from = time.monotonic()
        wait_crowd_gone(web)
        crowd_gone = time.monotonic() - gone_from
    figures.add("drill_peak_rss_watching_300_pods", "MiB",
                [t.peak_kib / 1024 for t in traces], goal_max=150,
                rss_median_mib=[round(statistics.median(t.rss_kib) / 1024, 1) for t in traces],
                what="VmHWM of the `chaos-drill run` process, last read before it exited "
                     "(VmRSS polled every 50 ms; rss_median_mib is the median of those polls)",
                pods=CROWD_REPLICAS, rounds=CROWD_ROUNDS, namespace_events_at_start=events,
                drill_seconds=[round(t.seconds, 1) for t in traces],
                crowd_ready_seconds=round(crowd_ready, 1),
                crowd_gone_seconds=round(crowd_gone, 1))
    print(f"\ncrowd of {CROWD_REPLICAS} Ready in {crowd_ready:.0f} s, gone in {crowd_gone:.0f} s")


# -- a 5-round pod_delete drill -----------------------------------------------------------------


def test_five_round_pod_delete_drill(web: Any, tmp_path: Path, figures: Figures) -> None:
    """manifests/drills/web-pod-kill.yaml through the CLI, as a user runs it; wall time from
    the command's start to its exit, recovery figures from its summary.json."""
    walls: list[float] = []
    medians: list[float] = []
    recoveries: list[float] = []
    for number in range(WEB_KILL_RUNS):
        wait_settled(web, 3)
        out = tmp_path / f"run-{number}"
        began = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "chaos", "run", str(WEB_KILL), "--out",
                                 str(out)], cwd=REPO, capture_output=True, text=True,
                                timeout=600)
        walls.append(time.monotonic() - began)
        assert result.returncode == 0, result.stderr
        summary = json.loads((out / "summary.json").read_text())
        assert len(summary["incidents"]) == 5
        medians.append(summary["recovery"]["median"])
        recoveries += [i["recovery_seconds"] for i in summary["incidents"]]
    figures.add("web_pod_kill_5_rounds_wall", "s", walls,
                drill="manifests/drills/web-pod-kill.yaml", interval_seconds=10,
                note="4 intervals of 10 s are 40 s of the wall time")
    figures.add("web_pod_kill_5_rounds_recovery_median", "s", medians,
                what="summary.json recovery.median of each run")
    figures.add("web_pod_kill_recovery_all_incidents", "s", recoveries,
                p95=round(percentile(recoveries, 0.95), 3))
