"""Restore records: what a run writes (with its Lease), what is read back, and every way a record
can be unusable, each found with a one-line reason that names the object and the fix."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from kubernetes import client

from chaos.drill import leases, restore
from chaos.errors import RestoreError

GOOD: dict[str, Any] = {"run": "abc", "fault": "scale", "original": 3, "host": "laptop",
                        "pid": 42, "at": "2026-01-01T00:00:00+00:00",
                        "lease": "demo/chaos-drill-run-abc"}


def text(**changes: Any) -> str:
    data = {**GOOD, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...})


def test_a_record_round_trips_with_its_lease() -> None:
    record = restore.Record.parse(text(), "Deployment")
    assert record == restore.Record("abc", "scale", 3, "laptop", 42,
                                    "2026-01-01T00:00:00+00:00", "demo/chaos-drill-run-abc")
    assert restore.Record.parse(record.to_json(), "Deployment") == record


def test_a_record_without_a_lease_is_read_as_an_older_chaos_drills() -> None:
    record = restore.Record.parse(text(lease=...), "Deployment")
    assert record.lease == ""


def test_a_run_in_this_process_writes_its_lease_into_its_records() -> None:
    restore.ACTIVE_RUNS["run9"] = "demo/chaos-drill-run-run9"
    try:
        record = restore.Record.now("run9", "scale", 3)
    finally:
        restore.ACTIVE_RUNS.pop("run9")
    assert (record.lease, record.host) == ("demo/chaos-drill-run-run9", socket.gethostname())
    assert restore.Record.now("elsewhere", "scale", 3).lease == ""


@pytest.mark.parametrize("kind, raw, problem", [
    ("Deployment", "not json{", "it is not JSON"),
    ("Deployment", "[1, 2]", "it is not a JSON object"),
    ("Deployment", text(run=..., pid=...), "it has no run, pid"),
    ("Deployment", text(original=None), "its original is null, not a replica count"),
    ("Deployment", text(original="3"), "its original is \"3\", not a replica count"),
    ("StatefulSet", text(original=True), "its original is true, not a replica count"),
    ("ReplicaSet", text(original=-1), "its original is -1, not a replica count"),
    ("Node", text(fault="node_drain", original=1),
     "its original is 1, not true or false (the cordon)"),
    ("Node", text(fault="node_stop", original=None),
     "its original is null, not the provider that stopped it"),
    ("Node", text(fault="scale"), "its fault is scale, which changes no node"),
    ("Pod", text(pid="42"), "its pid is \"42\", not a number"),
    ("Pod", text(run=""), "its run is \"\", not a name"),
    ("Job", text(lease="nowhere"), "its lease is \"nowhere\", not namespace/name"),
])
def test_an_unusable_record_says_why(kind: str, raw: str, problem: str) -> None:
    with pytest.raises(RestoreError) as caught:
        restore.Record.parse(raw, kind)
    assert str(caught.value) == problem


def test_records_whose_value_is_unused_accept_null() -> None:
    for kind in ("Pod", "Job"):
        assert restore.Record.parse(text(original=None), kind).original is None
    assert restore.Record.parse(text(fault="node_drain", original=False), "Node").original is \
        False
    assert restore.Record.parse(text(fault="node_stop", original="local"), "Node").original == \
        "local"


def obj(name: str, annotation: str, namespace: str | None = "demo",
        labels: dict[str, str] | None = None) -> Any:
    return client.V1Deployment(metadata=client.V1ObjectMeta(
        name=name, namespace=namespace, labels=labels,
        annotations={restore.ANNOTATION: annotation}))


def test_unreadable_records_are_set_apart_with_one_line_naming_the_object_and_fix() -> None:
    found = restore.Findings()
    restore._sort("Deployment", [obj("web", text()), obj("api", text(original=None)),
                                 client.V1Deployment(metadata=client.V1ObjectMeta(name="x"))],
                  found)
    assert [left.name for left in found.leftovers] == ["web"]
    [bad] = found.unreadable
    line = bad.describe()
    assert "\n" not in line
    assert line == ("skipped Deployment demo/api: its restore record cannot be used (its "
                    "original is null, not a replica count): check the object by hand, then "
                    "remove the annotation (kubectl annotate deployment -n demo api "
                    "chaosdrill.dev/restore-)")
    nodes = restore.Findings()
    restore._sort("Node", [obj("node-1", "{", namespace=None)], nodes)
    assert nodes.unreadable[0].describe().startswith("skipped Node node-1: ")
    assert "kubectl annotate node node-1 chaosdrill.dev/restore-" in \
        nodes.unreadable[0].describe()


def test_a_stopped_node_is_its_own_kind_of_leftover() -> None:
    found = restore.Findings()
    restore._sort("Node", [obj("node-2", text(fault="node_stop", original="local"), None),
                           obj("node-1", text(fault="node_drain", original=False), None)], found)
    assert [(left.kind, left.name) for left in found.leftovers] == [
        (restore.STOPPED_NODE, "node-2"), ("Node", "node-1")]
    assert found.leftovers[0].describe().startswith("Node node-2: stopped by node_stop run abc")


def test_a_stopped_node_is_started_only_by_its_own_provider() -> None:
    record = restore.Record.parse(text(fault="node_stop", original="kind"), "Node")
    left = restore.Leftover(restore.STOPPED_NODE, "chaos-drill-worker", "", record)
    with pytest.raises(RestoreError) as caught:
        restore.undo(None, left, provider=None)
    assert str(caught.value) == (
        "skipped Node chaos-drill-worker: stopped by node_stop run abc on the kind provider, "
        "and only that provider can start it: run 'chaos-drill restore --provider kind' where "
        "that cluster runs")


def test_runs_are_judged_without_the_api_when_they_name_no_lease() -> None:
    here = restore.Record("mine", "scale", 3, socket.gethostname(), 1, "t")
    other_host = restore.Record("theirs", "scale", 3, "another-host", 1, "t")
    restore.ACTIVE_RUNS["mine"] = ""
    try:
        judged = restore.judge_runs(None, [here, other_host], print)
    finally:
        restore.ACTIVE_RUNS.pop("mine")
    assert judged["mine"] == leases.Judgement(True, "it runs in this process")
    assert not judged["theirs"].alive and "names no Lease" in judged["theirs"].why
