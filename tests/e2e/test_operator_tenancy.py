"""The operator keeps to its tenants, on the real local cluster (KopfRunner runs it in a thread):
node faults only on nodes an administrator labelled drillable and never on the control plane, a
cap on how long a node stays cordoned, journal ConfigMaps owned by (and deleted with) their
ChaosDrill and never over the API's size limit, and a drill's series leaving the exporter."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from chaos.drill.node_guard import CONTROL_PLANE_LABEL, DRILLABLE_LABEL
from chaos.drill.restore import ANNOTATION
from chaos.drill.spec import GROUP, PLURAL, VERSION
from chaos.monitoring import metrics, metrics_server
from chaos.operator import handlers as operator
from chaos.operator import journal as operator_journal
from chaos.operator.settings import MAX_CORDON_ENV, METRICS_LINGER_ENV

from support import drill_object, wait_finished

pytestmark = pytest.mark.e2e


def runner() -> KopfRunner:
    return KopfRunner(["run", "--standalone", "--namespace", "demo"],
                      registry=operator.registry, timeout=240)


@pytest.fixture
def tenancy(operator_env: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The operator's environment with journals in ConfigMaps; every node's drillable and
    control-plane labels, as the test sets them, removed afterwards and every node uncordoned."""
    monkeypatch.setenv(operator_journal.ENABLED_ENV, "true")
    core = client.CoreV1Api(operator_env)
    before = {n.metadata.name: dict(n.metadata.labels or {}) for n in core.list_node().items}
    assert not [n for n, labels in before.items() if DRILLABLE_LABEL in labels
                or CONTROL_PLANE_LABEL in labels], f"a node is labelled already: {before}"
    try:
        yield operator_env
    finally:
        for node in before:
            core.patch_node(node, {"metadata": {"labels": {DRILLABLE_LABEL: None,
                                                           CONTROL_PLANE_LABEL: None}},
                                   "spec": {"unschedulable": None}})


def label(api: Any, node: str, **labels: str) -> None:
    names = {"drillable": DRILLABLE_LABEL, "control_plane": CONTROL_PLANE_LABEL}
    client.CoreV1Api(api).patch_node(node, {"metadata": {"labels": {
        names[key]: value for key, value in labels.items()}}})


def node_state(api: Any) -> dict[str, tuple[bool, str | None]]:
    """Per node: cordoned, and the restore record chaos-drill writes before it changes one."""
    return {n.metadata.name: (bool(n.spec.unschedulable),
                              (n.metadata.annotations or {}).get(ANNOTATION))
            for n in client.CoreV1Api(api).list_node().items}


def pod_uids(api: Any) -> set[str]:
    return {p.metadata.uid for p in client.CoreV1Api(api).list_namespaced_pod("demo").items}


def node_drill(name: str, node: str | None = None, **spec: Any) -> dict[str, Any]:
    doc = drill_object(name)
    del doc["spec"]["probe"], doc["spec"]["slo"]["minAvailability"]  # no traffic needed
    doc["spec"].update(rounds=1, fault={"type": "node_drain", **({"node": node} if node else {})},
                       **spec)
    return doc


def run_to_end(api: Any, doc: dict[str, Any], timeout: int = 150) -> dict[str, Any]:
    """Applies DOC and returns its final status; the ChaosDrill stays (the caller deletes it)."""
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, "demo", PLURAL,
                                                                 doc)
    return wait_finished(api, doc["metadata"]["name"], timeout)


def journal_of(api: Any, status: dict[str, Any]) -> list[dict[str, Any]]:
    where, name = status["journal"]["configMap"].split("/")
    text = client.CoreV1Api(api).read_namespaced_config_map(name, where).data[
        status["journal"]["key"]]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def delete_drill(api: Any, name: str) -> None:
    try:
        client.CustomObjectsApi(api).delete_namespaced_custom_object(GROUP, VERSION, "demo",
                                                                     PLURAL, name)
    except ApiException as error:
        if error.status != 404:
            raise


def wait_configmaps_gone(api: Any, names: list[str], timeout: float) -> float:
    """Seconds until none of demo's ConfigMaps NAMES is left; the test fails after TIMEOUT."""
    began = time.monotonic()
    left: list[str] = names
    while time.monotonic() - began < timeout:
        present = {c.metadata.name for c in
                   client.CoreV1Api(api).list_namespaced_config_map("demo").items}
        left = [n for n in names if n in present]
        if not left:
            return time.monotonic() - began
        time.sleep(0.5)
    pytest.fail(f"ConfigMaps {left} still there {timeout:.0f}s after their ChaosDrill was deleted")


def assert_refused(api: Any, status: dict[str, Any], line: str) -> None:
    assert status["phase"] == "Failed" and status["reason"] == "Refused", status
    assert status["message"] == line and "\n" not in line, status
    assert status["attempts"] == 1, status
    events = journal_of(api, status)
    assert any(line in json.dumps(e) for e in events), events
    assert not [e for e in events if e["event"] == "fault_injected"], events


def test_node_faults_are_refused_off_labelled_workers_and_journals_go_with_the_drill(
        tenancy: Any) -> None:
    api = tenancy
    nodes, pods = node_state(api), pod_uids(api)
    node = sorted(nodes)[0]
    refused: list[dict[str, Any]] = []
    with runner() as kopf_runner:
        try:
            # not labelled: refused before anything (named node, and a victim's node)
            refused.append(run_to_end(api, node_drill("op-unlabelled", node)))
            assert_refused(api, refused[-1], f"node {node} is not labelled {DRILLABLE_LABEL}=true:"
                           f" an administrator opts it in with 'kubectl label node {node} "
                           f"{DRILLABLE_LABEL}=true'")
            refused.append(run_to_end(api, node_drill("op-victims-node")))
            assert refused[-1]["reason"] == "Refused", refused[-1]
            assert "is not labelled chaosdrill.dev/drillable=true" in refused[-1]["message"]
            # labelled, but a control-plane node: still refused
            label(api, node, drillable="true", control_plane="")
            refused.append(run_to_end(api, node_drill("op-control-plane", node)))
            assert_refused(api, refused[-1], f"node {node} is a control-plane node "
                           f"({CONTROL_PLANE_LABEL}): node faults never touch the control plane;"
                           " name a worker in spec.fault.node")
            assert node_state(api) == nodes and pod_uids(api) == pods, "a refusal changed things"
            configmaps = [s["journal"]["configMap"].split("/")[1] for s in refused]
            owners = [client.CoreV1Api(api).read_namespaced_config_map(
                c, "demo").metadata.owner_references for c in configmaps]
            assert all(o and o[0].kind == "ChaosDrill" for o in owners), owners
        finally:
            for name in ("op-unlabelled", "op-victims-node", "op-control-plane"):
                delete_drill(api, name)
        took = wait_configmaps_gone(api, configmaps, 60)
    assert kopf_runner.exit_code == 0, kopf_runner.output
    print(f"[tenancy] journal ConfigMaps garbage-collected {took:.1f}s after their ChaosDrills "
          "were deleted")


def test_a_node_fault_over_the_cordon_cap_is_refused_and_a_running_one_uncordons_at_it(
        tenancy: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    api = tenancy
    core = client.CoreV1Api(api)
    web = core.list_namespaced_pod("demo", label_selector="app=web").items
    on = [p.spec.node_name for p in web]
    node = max(set(on), key=on.count)
    other = next(n for n in node_state(api) if n != node)
    label(api, node, drillable="true")
    with runner() as kopf_runner:
        try:
            status = run_to_end(api, node_drill("op-long", node, recoveryTimeoutSeconds=301))
            assert_refused(api, status, "spec.recoveryTimeoutSeconds 301 would keep a node "
                           "cordoned up to 301 s, over the operator's cap of 300 s: set it to "
                           "300 or less")
        finally:
            delete_drill(api, "op-long")
        # within the cap on paper (recovery 8 s), yet it would hold the node longer: web's
        # budget holds the eviction back 3 s, and the replacement has nowhere to go (the other
        # node is cordoned too) until the cap uncordons the drained node
        cap = 8.0
        monkeypatch.setenv(MAX_CORDON_ENV, f"{cap:g}")
        policy = client.PolicyV1Api(api)
        policy.patch_namespaced_pod_disruption_budget("web", "demo",
                                                      {"spec": {"maxUnavailable": 0}})
        core.patch_node(other, {"spec": {"unschedulable": True}})
        changes: list[tuple[float, bool]] = []
        nodes = watch.Watch()
        threading.Thread(target=follow_cordon, args=(api, node, changes, nodes, 120),
                         daemon=True).start()
        try:
            client.CustomObjectsApi(api).create_namespaced_custom_object(
                GROUP, VERSION, "demo", PLURAL,
                node_drill("op-capped", node, recoveryTimeoutSeconds=cap))
            cordoned_at = wait_cordoned(changes, 90)
            time.sleep(max(0.0, cordoned_at + 3 - time.monotonic()))  # the budget's hold
            policy.patch_namespaced_pod_disruption_budget("web", "demo",
                                                          {"spec": {"maxUnavailable": 1}})
            status = wait_finished(api, "op-capped", 120)
            events = journal_of(api, status)
        finally:
            delete_drill(api, "op-capped")
            policy.patch_namespaced_pod_disruption_budget("web", "demo",
                                                          {"spec": {"maxUnavailable": 1}})
            core.patch_node(other, {"spec": {"unschedulable": None}})
            nodes.stop()
    assert kopf_runner.exit_code == 0, kopf_runner.output
    uncordoned = [t for t, cordoned in changes if not cordoned and t > cordoned_at]
    assert uncordoned, changes
    held = uncordoned[0] - cordoned_at
    capped = [e for e in events if e["event"] == "cordon_capped"]
    assert capped and capped[0]["node"] == node and capped[0]["cap_seconds"] == cap, events
    finished = next(e["mono"] for e in events if e["event"] == "drill_finished")
    print(f"[tenancy] cap {cap:g} s: {node} cordoned for {held:.2f} s (by the node watch); "
          f"the drill ended {finished - capped[0]['mono']:.1f} s after the cap uncordoned it")
    assert cap - 0.5 <= held <= cap + 1.5, changes
    assert not core.read_node(node).spec.unschedulable


def wait_cordoned(changes: list[tuple[float, bool]], timeout: float) -> float:
    """When the node watch first saw the node cordoned; the test fails after TIMEOUT."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cordoned = [t for t, on in changes if on]
        if cordoned:
            return cordoned[0]
        time.sleep(0.1)
    pytest.fail(f"the drill did not cordon the node within {timeout:.0f}s: {changes}")


def follow_cordon(api: Any, node: str, changes: list[tuple[float, bool]], nodes: watch.Watch,
                  timeout: int) -> None:
    """Appends (monotonic time, cordoned) whenever NODE's spec.unschedulable changes; ends when
    NODES is stopped, after TIMEOUT, or quietly when the connection drops (a later test may take
    the cluster down while it waits)."""
    last: bool | None = None
    try:
        for event in nodes.stream(client.CoreV1Api(api).list_node,
                                  field_selector=f"metadata.name={node}",
                                  timeout_seconds=timeout, _request_timeout=timeout + 10):
            now = bool(event["object"].spec.unschedulable)
            if now != last:
                changes.append((time.monotonic(), now))
                last = now
    except (ApiException, HTTPError, OSError):
        return


def test_three_attempts_of_oversized_journals_never_hit_the_size_limit(
        operator_env: Any, tmp_path: Path) -> None:
    """operator_journal.save, as each attempt calls it, against the real API server."""
    api = operator_env
    custom = client.CustomObjectsApi(api)
    made = custom.create_namespaced_custom_object(GROUP, VERSION, "demo", PLURAL,
                                                  drill_object("op-big-journal"))
    uid, name = made["metadata"]["uid"], made["metadata"]["name"]
    configmap = operator_journal.configmap_name(name, uid)
    try:
        for attempt in (1, 2, 3):
            journal = tmp_path / f"attempt-{attempt}.jsonl"
            journal.write_text("".join(json.dumps({"event": "probe_window", "n": n,
                                                   "pad": "p" * 300}) + "\n"
                                       for n in range(6000)))  # about 2 MiB each
            operator_journal.save(api, "demo", configmap, f"attempt-{attempt}.jsonl", journal,
                                  operator_journal.owner(name, uid))
        data = client.CoreV1Api(api).read_namespaced_config_map(configmap, "demo").data
        assert sorted(data) == ["attempt-1.jsonl", "attempt-2.jsonl", "attempt-3.jsonl"]
        size = sum(len(v.encode()) for v in data.values())
        assert size < 1024 * 1024, size
        first = json.loads(data["attempt-3.jsonl"].splitlines()[0])
        assert first["event"] == "journal_truncated" and first["lines_dropped"] > 0
    finally:
        delete_drill(api, name)
    wait_configmaps_gone(api, [configmap], 60)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def web_series(text: str) -> list[str]:
    return [line for line in text.splitlines()
            if not line.startswith("#") and 'workload="web"' in line]


def wait_scrape(port: int, want: Callable[[list[str]], bool], timeout: float, what: str) -> float:
    began = time.monotonic()
    series: list[str] = []
    while time.monotonic() - began < timeout:
        series = web_series(scrape(port))
        if want(series):
            return time.monotonic() - began
        time.sleep(0.2)
    pytest.fail(f"{what}: not within {timeout:.0f}s; web's series: {series[:5]}")


def test_a_drills_series_leave_the_exporter_when_it_ends_or_is_deleted(
        operator_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    api = operator_env
    metrics.register_families(operator.METRICS)
    server = metrics_server.serve(operator.METRICS, 0, "127.0.0.1")
    port = server.port
    try:
        assert web_series(scrape(port)) == []
        with runner() as kopf_runner:
            # ends: its series stay METRICS_LINGER seconds, then go
            monkeypatch.setenv(METRICS_LINGER_ENV, "5")
            try:
                status = run_to_end(api, drill_object("op-series-end"))
                assert status["phase"] == "Passed", status
                injected = [s for s in web_series(scrape(port))
                            if s.startswith("chaosdrill_faults_injected_total")
                            and 'fault="pod_delete"' in s]
                assert injected and injected[0].endswith(" 2.0"), injected
                gone_after = wait_scrape(port, lambda s: s == [], 20, "series gone after end")
            finally:
                delete_drill(api, "op-series-end")
            # deleted while running: its series go at once, whatever the linger
            monkeypatch.setenv(METRICS_LINGER_ENV, "300")
            doc = drill_object("op-series-deleted")
            doc["spec"].update(rounds=5, intervalSeconds=5)
            client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, "demo",
                                                                         PLURAL, doc)
            try:
                wait_scrape(port, lambda s: any("chaosdrill_drill_running" in x
                                                and x.endswith(" 1.0") for x in s),
                            90, "the drill running on the exporter")
            finally:
                delete_drill(api, "op-series-deleted")
            gone_deleted = wait_scrape(port, lambda s: s == [], 60, "series gone after delete")
        assert kopf_runner.exit_code == 0, kopf_runner.output
    finally:
        server.close()
    print(f"[tenancy] web's series left the exporter {gone_after:.1f}s after the drill ended "
          f"(linger 5 s) and {gone_deleted:.1f}s after a running drill's ChaosDrill was deleted")
