"""The operator runs a ChaosDrill object on the real cluster with the CLI's runner and reports
its verdict in the object's status; KopfRunner runs it in a thread, as kopf's own tests do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kopf.testing import KopfRunner
from kubernetes import client, watch

from chaos import operator, workloads
from chaos.cluster.local import LocalCluster
from chaos.results import read_journal

pytestmark = pytest.mark.e2e
REPO = Path(__file__).parents[2]


def drill_object(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((REPO / "manifests/drills/web-pod-kill.yaml").read_text())
    doc["metadata"] = {"name": name, "namespace": "demo"}
    doc["spec"].update(rounds=2, intervalSeconds=1)
    doc["spec"]["slo"]["minAvailability"] = 0
    return doc


def wait_established(api: Any, name: str) -> None:
    extensions = client.ApiextensionsV1Api(api)
    for event in watch.Watch().stream(extensions.list_custom_resource_definition,
                                      field_selector=f"metadata.name={name}", timeout_seconds=30):
        conditions = event["object"].status.conditions or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
    raise TimeoutError(f"CRD {name} not Established in 30s")


def wait_finished(api: Any, name: str, timeout: int) -> dict[str, Any]:
    custom = client.CustomObjectsApi(api)
    stream = watch.Watch().stream(custom.list_namespaced_custom_object, operator.GROUP,
                                  operator.VERSION, "demo", operator.PLURAL,
                                  field_selector=f"metadata.name={name}", timeout_seconds=timeout)
    for event in stream:
        status = event["object"].get("status") or {}
        if status.get("phase") in operator.FINISHED:
            return dict(status)
    raise TimeoutError(f"ChaosDrill {name} did not finish in {timeout}s")


@pytest.fixture
def operator_env(web: Any, cluster: LocalCluster, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Any:
    """The CRD installed and Established; the operator pointed at the cluster and tmp_path."""
    crd = list(workloads.documents(REPO / "manifests" / "crds"))
    workloads.apply(web, crd, print)
    wait_established(web, crd[0]["metadata"]["name"])
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig()))
    monkeypatch.setenv("CHAOS_DRILL_OPERATOR_OUT", str(tmp_path))
    return web


def test_operator_runs_a_chaosdrill_and_writes_status(operator_env: Any) -> None:
    web = operator_env
    custom = client.CustomObjectsApi(web)
    with KopfRunner(["run", "--standalone", "--namespace", "demo"],
                    registry=operator.registry, timeout=240) as runner:
        custom.create_namespaced_custom_object(operator.GROUP, operator.VERSION, "demo",
                                               operator.PLURAL, drill_object("op-drill"))
        try:
            status = wait_finished(web, "op-drill", 180)
        finally:
            custom.delete_namespaced_custom_object(operator.GROUP, operator.VERSION, "demo",
                                                   operator.PLURAL, "op-drill")
    assert runner.exit_code == 0, runner.output
    assert status["phase"] == "Passed" and status["passed"] is True
    assert status["incidents"] == 2 and status["recovered"] == 2
    assert (Path(status["resultsDir"]) / "journal.jsonl").exists()
    assert (Path(status["resultsDir"]) / "summary.json").exists()


def test_deleting_a_running_chaosdrill_stops_and_restores(operator_env: Any,
                                                          tmp_path: Path) -> None:
    web = operator_env
    doc = drill_object("op-scale")
    doc["spec"].update(rounds=3, intervalSeconds=60, fault={"type": "scale", "replicas": 5})
    custom = client.CustomObjectsApi(web)
    apps = client.AppsV1Api(web)
    with KopfRunner(["run", "--standalone", "--namespace", "demo"],
                    registry=operator.registry, timeout=240) as runner:
        custom.create_namespaced_custom_object(operator.GROUP, operator.VERSION, "demo",
                                               operator.PLURAL, doc)
        stream = watch.Watch().stream(custom.list_namespaced_custom_object, operator.GROUP,
                                      operator.VERSION, "demo", operator.PLURAL,
                                      field_selector="metadata.name=op-scale",
                                      timeout_seconds=120)
        for event in stream:  # the first round has run: the workload was scaled and healed
            if (event["object"].get("status") or {}).get("incidents") == 1:
                break
        custom.delete_namespaced_custom_object(operator.GROUP, operator.VERSION, "demo",
                                               operator.PLURAL, "op-scale")
        gone = watch.Watch().stream(custom.list_namespaced_custom_object, operator.GROUP,
                                    operator.VERSION, "demo", operator.PLURAL,
                                    field_selector="metadata.name=op-scale", timeout_seconds=90)
        for event in gone:
            if event["type"] == "DELETED":
                break
    assert runner.exit_code == 0, runner.output
    assert apps.read_namespaced_deployment("web", "demo").spec.replicas == 3
    records = read_journal(next(tmp_path.glob("demo-op-scale-*")) / "journal.jsonl")
    finished = [r for r in records if r.event == "drill_finished"]
    assert finished and finished[0].get("aborted") is True
