"""The sample app's second tier on the real cluster: `deploy --autoscale` brings both tiers and an
HPA on web only; a web pod finds `api` by name through kube-dns and its /cgi-bin/api goes
through; a drill that deletes every api pod shows as failed requests through web while api is
down, and web answers again once api is back."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaos.cluster import workloads
from chaos.cluster.local import LocalCluster
from chaos.drill.loading import load_drill
from chaos.results import read_journal
from chaos.results.journal import JournalRecord
from chaos.run.runner import DrillRun, RunOptions

from support import REPO, cli, run_in

pytestmark = pytest.mark.e2e
API_NAME = "api.demo.svc.cluster.local"
DRILL = REPO / "manifests" / "drills" / "api-pod-kill.yaml"
SETTLE_SECONDS = 10.0
"""How long after api's last Ready web may still fail: kube-proxy routes to the new pod a
moment after it is Ready."""


def api_pods(api: Any) -> set[str]:
    pods = client.CoreV1Api(api).list_namespaced_pod("demo", label_selector="app=api").items
    return {p.metadata.name for p in pods if not p.metadata.deletion_timestamp}


def test_deploy_autoscale_brings_both_tiers_and_an_autoscaler_on_web_only(web: Any) -> None:
    autoscalers = client.AutoscalingV2Api(web).list_namespaced_horizontal_pod_autoscaler
    try:
        result = cli("deploy", "--autoscale")
        assert result.returncode == 0, result.stderr
        assert "waiting for deployment api to be Ready" in result.stdout + result.stderr
        assert [h.spec.scale_target_ref.name for h in autoscalers("demo").items] == ["web"]
        for name in ("web", "api"):
            deployment = client.AppsV1Api(web).read_namespaced_deployment(name, "demo")
            assert workloads.deployment_steady(deployment), name
    finally:
        result = cli("deploy")
    assert result.returncode == 0, result.stderr
    assert autoscalers("demo").items == [], "deploy without --autoscale removes it"


def test_a_web_pod_calls_api_by_name(web: Any) -> None:
    core = client.CoreV1Api(web)
    pod = core.list_namespaced_pod("demo", label_selector="app=web").items[0].metadata.name
    answer = run_in(web, pod, "nslookup", API_NAME)
    assert core.read_namespaced_service("api", "demo").spec.cluster_ip in answer, answer
    # kube-proxy may still route to an api pod deploy just replaced: wait for its rules
    deadline = time.monotonic() + 30
    page = ""
    while not any(page.endswith(f": {name}\n") for name in api_pods(web)):
        assert time.monotonic() < deadline, f"/cgi-bin/api in {pod} for 30 s: {page!r}"
        time.sleep(0.5)
        page = run_in(web, pod, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/cgi-bin/api")
    assert page.startswith(f"{pod} called http://{API_NAME}:80/cgi-bin/whoami: "), page


def outage_spans(records: list[JournalRecord]) -> list[tuple[float, float]]:
    """Per round: from its first injection to its last replacement Ready, plus the settling."""
    spans: dict[int, list[float]] = {}
    round_of: dict[str, int] = {}
    for r in records:
        if r.event == "fault_injected":
            round_of[r.get("incident")] = r.get("round")
            spans.setdefault(r.get("round"), [r.mono, r.mono])
        if r.event == "phase" and r.get("phase") == "ready":
            span = spans[round_of[r.get("incident")]]
            span[1] = max(span[1], r.mono)
    return [(begin, ready + SETTLE_SECONDS) for begin, ready in spans.values()]


def test_killing_every_api_pod_fails_requests_through_web_until_api_is_back(
        web: Any, cluster: LocalCluster, tmp_path: Path) -> None:
    # as shipped (its interval must leave web time to answer again), but two of its rounds
    drill = replace(load_drill(DRILL), rounds=2)
    assert drill.interval_seconds > SETTLE_SECONDS + 2
    out = tmp_path / "out"
    summary = DrillRun(drill, cluster, RunOptions(out_dir=out), print).run()
    print(f"availability through web: {summary.availability}")
    assert summary.passed, summary.slo_checks
    assert len(summary.incidents) == 2 * drill.rounds, "every round takes both api pods"
    assert all(i.recovery_seconds is not None and i.ordered for i in summary.incidents)
    assert summary.availability.failures > 0 and summary.availability.longest_outage_seconds > 0

    records = read_journal(out / "journal.jsonl")
    spans = outage_spans(records)
    windows = [(r.mono - r.get("seconds"), r.mono, r.get("failures"))
                for r in records if r.event == "probe_window"]
    for begin, end, failures in windows:  # web's tier fails only while api is down
        assert not failures or any(begin < e and end > b for b, e in spans), (begin, spans)
    # and does so in every round: each request due while a call through web hangs fails
    for b, e in spans:
        assert any(f for begin, end, f in windows if begin < e and end > b), (b, e, windows)
    for (_, settled), (next_begin, _) in zip(spans, spans[1:], strict=False):
        between = [f for begin, end, f in windows if begin >= settled and end <= next_begin]
        assert between and not any(between), "web answers again before the next round"
