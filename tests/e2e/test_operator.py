"""The operator runs a ChaosDrill object on the real cluster with the CLI's runner and reports
its verdict in the object's status; KopfRunner runs it in a thread, as kopf's own tests do."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from chaos.drill import restore
from chaos.drill.spec import GROUP, PLURAL, VERSION
from chaos.operator import handlers as operator
from chaos.operator import journal as operator_journal
from chaos.results import read_journal

from support import drill_object, wait_finished

pytestmark = pytest.mark.e2e


def wait_for(list_call: Callable[..., Any], args: tuple[Any, ...], name: str, timeout: int,
             condition: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    """Watch the object called name until condition holds for an event; the test fails if the
    watch ends first. The watch starts with the object as it is now, so nothing is missed."""
    seen: list[str] = []
    stream = watch.Watch().stream(list_call, *args, field_selector=f"metadata.name={name}",
                                  timeout_seconds=timeout, _request_timeout=timeout + 10)
    for event in stream:
        seen.append(f"{event['type']} {_brief(event['object'])}")
        if condition(event):
            return dict(event)
    pytest.fail(f"{what}: not within {timeout}s; saw {seen[-5:] or 'no events'}")


def _brief(obj: Any) -> str:
    if isinstance(obj, client.V1Deployment):
        return f"replicas={obj.spec.replicas} ready={obj.status.ready_replicas}"
    status = obj.get("status") if isinstance(obj, dict) else obj.status.to_dict()
    return str(status or {})[:300]


def drills(api: Any) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """The list call and arguments that watch ChaosDrills in demo."""
    return (client.CustomObjectsApi(api).list_namespaced_custom_object,
            (GROUP, VERSION, "demo", PLURAL))


def wait_gone(custom: Any, name: str, timeout: float) -> None:
    """Until the ChaosDrill demo/NAME is gone (its finalizer released); it may be already."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            custom.get_namespaced_custom_object(GROUP, VERSION, "demo",
                                                PLURAL, name, _request_timeout=10)
        except ApiException as error:
            if error.status == 404:
                return
            raise
        time.sleep(0.5)
    pytest.fail(f"ChaosDrill {name} still there {timeout:.0f}s after it was deleted")


def wait_replicas(api: Any, replicas: int, timeout: int, what: str) -> None:
    wait_for(client.AppsV1Api(api).list_namespaced_deployment, ("demo",), "web", timeout,
             lambda event: event["object"].spec.replicas == replicas, what)


def test_operator_runs_a_chaosdrill_and_writes_status(operator_env: Any) -> None:
    web = operator_env
    custom = client.CustomObjectsApi(web)
    with KopfRunner(["run", "--standalone", "--namespace", "demo"],
                    registry=operator.registry, timeout=240) as runner:
        custom.create_namespaced_custom_object(GROUP, VERSION, "demo",
                                               PLURAL, drill_object("op-drill"))
        try:
            status = wait_finished(web, "op-drill", 180)
        finally:
            custom.delete_namespaced_custom_object(GROUP, VERSION, "demo",
                                                   PLURAL, "op-drill")
    assert runner.exit_code == 0, runner.output
    assert status["phase"] == "Passed" and status["passed"] is True
    assert status["incidents"] == 2 and status["recovered"] == 2
    assert (Path(status["resultsDir"]) / "journal.jsonl").exists()
    assert (Path(status["resultsDir"]) / "summary.json").exists()


@pytest.fixture
def pods_capped(operator_env: Any) -> Iterator[None]:
    """A ResourceQuota holding demo at the pods it has: a scale-up stays unrecovered, so the
    drill keeps web scaled until it is stopped (or its recovery times out)."""
    core = client.CoreV1Api(operator_env)
    running = len(core.list_namespaced_pod("demo", field_selector="status.phase=Running").items)
    quota = {"metadata": {"name": "cap-pods"}, "spec": {"hard": {"pods": str(running)}}}
    core.create_namespaced_resource_quota("demo", quota)
    try:
        wait_for(core.list_namespaced_resource_quota, ("demo",), "cap-pods", 30,
                 lambda event: "pods" in (event["object"].status.hard or {}),
                 "ResourceQuota cap-pods in force")
        yield
    finally:
        core.delete_namespaced_resource_quota("cap-pods", "demo")


def test_deleting_a_running_chaosdrill_stops_and_restores(operator_env: Any, pods_capped: None,
                                                          tmp_path: Path) -> None:
    web = operator_env
    original = client.AppsV1Api(web).read_namespaced_deployment("web", "demo").spec.replicas
    scaled = original + 2
    doc = drill_object("op-scale")
    # the quota keeps the new replicas from being created: without restore-on-delete, web
    # would stay scaled until recovery times out
    doc["spec"].update(rounds=1, recoveryTimeoutSeconds=180,
                       fault={"type": "scale", "replicas": scaled})
    custom = client.CustomObjectsApi(web)
    with KopfRunner(["run", "--standalone", "--namespace", "demo"],
                    registry=operator.registry, timeout=240) as runner:
        custom.create_namespaced_custom_object(GROUP, VERSION, "demo",
                                               PLURAL, doc)
        wait_replicas(web, scaled, 120, f"web scaled to {scaled} by the drill")
        custom.delete_namespaced_custom_object(GROUP, VERSION, "demo",
                                               PLURAL, "op-scale")
        wait_replicas(web, original, 60,
                      f"web back to {original} replicas after the ChaosDrill was deleted")
        # released within seconds of the restore, not when a kopf timeout runs out
        wait_for(*drills(web), "op-scale", 15, lambda event: event["type"] == "DELETED",
                 "ChaosDrill op-scale gone (its finalizer released)")
    assert runner.exit_code == 0, runner.output
    records = read_journal(next(tmp_path.glob("demo-op-scale-*")) / "journal.jsonl")
    finished = [r for r in records if r.event == "drill_finished"]
    assert finished and finished[0].get("aborted") is True
    closed = [r for r in records if r.event == "incident_closed"]
    assert closed and closed[0].get("recovered") is False  # stopped mid-incident, as intended


def test_a_drill_on_a_missing_workload_fails_in_one_line_without_retrying(
        operator_env: Any) -> None:
    web = operator_env
    doc = drill_object("op-missing")
    doc["spec"]["target"]["name"] = "nope"
    custom = client.CustomObjectsApi(web)
    with KopfRunner(["run", "--standalone", "--namespace", "demo"],
                    registry=operator.registry, timeout=240) as runner:
        custom.create_namespaced_custom_object(GROUP, VERSION, "demo",
                                               PLURAL, doc)
        try:
            status = wait_finished(web, "op-missing", 120)
        finally:
            custom.delete_namespaced_custom_object(GROUP, VERSION, "demo",
                                                   PLURAL, "op-missing")
        wait_gone(custom, "op-missing", 60)
    assert runner.exit_code == 0, runner.output
    assert status["phase"] == "Failed" and status["passed"] is False
    message = status["message"]
    assert "nope" in message and "\n" not in message, message
    # a user error is a verdict, not a reason for kopf to try again
    assert status["attempts"] == 1, status
    assert "will retry" not in runner.output and "Traceback" not in runner.output, runner.output


@contextlib.contextmanager
def no_new_configmaps(api: Any, namespace: str) -> Iterator[None]:
    """A ResourceQuota that lets NAMESPACE hold no more ConfigMaps than it has: creating one is
    refused (403, exceeded quota) until the quota is deleted again."""
    core = client.CoreV1Api(api)
    have = len(core.list_namespaced_config_map(namespace).items)
    name = "chaos-drill-test-no-configmaps"
    core.create_namespaced_resource_quota(namespace, {
        "metadata": {"name": name}, "spec": {"hard": {"count/configmaps": str(have)}}})
    try:
        deadline = time.monotonic() + 30
        while not (core.read_namespaced_resource_quota(name, namespace)
                   .status.used or {}).get("count/configmaps"):
            assert time.monotonic() < deadline, "the quota controller never counted"
            time.sleep(0.2)
        yield
    finally:
        core.delete_namespaced_resource_quota(name, namespace)


def test_a_journal_that_cannot_be_kept_fails_the_drill_restored(
        operator_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    web = operator_env
    monkeypatch.setenv(operator_journal.ENABLED_ENV, "true")  # as in the cluster
    doc = drill_object("op-unkept")
    doc["spec"].update(rounds=3, intervalSeconds=1, fault={"type": "scale", "replicas": 5})
    custom = client.CustomObjectsApi(web)
    with no_new_configmaps(web, "demo"), KopfRunner(
            ["run", "--standalone", "--namespace", "demo"], registry=operator.registry,
            timeout=240) as runner:
        custom.create_namespaced_custom_object(GROUP, VERSION, "demo", PLURAL, doc)
        try:
            status = wait_finished(web, "op-unkept", 180)
        finally:
            custom.delete_namespaced_custom_object(GROUP, VERSION, "demo", PLURAL, "op-unkept")
        wait_gone(custom, "op-unkept", 60)
    assert runner.exit_code == 0, runner.output
    assert status["phase"] == "Failed" and status["attempts"] == 1, status
    message = status["message"]
    assert message.startswith("cannot keep the journal in ConfigMap demo/"), message
    assert "exceeded quota" in message, message
    assert "restored" in message and "\n" not in message, message
    assert "will retry" not in runner.output and "Traceback" not in runner.output, runner.output
    records = read_journal(Path(status["resultsDir"]) / "journal.jsonl")
    assert [r.get("round") for r in records if r.event == "fault_injected"] == [1], (
        "the first incident's keep failed: no further round")
    deployment = client.AppsV1Api(web).read_namespaced_deployment("web", "demo")
    assert deployment.spec.replicas == 3
    assert restore.ANNOTATION not in (deployment.metadata.annotations or {})
