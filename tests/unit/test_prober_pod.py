"""The prober pod: a restricted manifest, its output lines read back, its clock mapped onto
ours, where a drill probes from (against real loopback sockets), spec.probe.from, and the
cleanup of prober pods that dead runs left."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client

from chaos.drill import restore
from chaos.drill.loading import CRD_PATH, crd_schema, drill_from_object, parse_drill
from chaos.errors import SpecError
from chaos.observe.probe_lines import parse_line, slot_outcomes, window_from
from chaos.observe.prober import ProbeWindow
from chaos.observe.prober_pod import (
    IMAGE_ENV,
    PodProber,
    pod_problem,
    prober_pod_manifest,
    time_base,
)
from chaos.operator import install as operator_install
from chaos.run.probing import (
    REACH_TIMEOUT,
    choose_origin,
    host_refusal,
    reachable_from_host,
    via_default_route,
)
from chaos.run.runner import max_run_seconds

IMAGE = "chaosdrill.local/operator:abc123"
DRILL = """\
apiVersion: chaosdrill.dev/v1alpha1
kind: ChaosDrill
metadata: {name: probed, namespace: demo}
spec:
  target: {kind: Deployment, name: web}
  fault: {type: pod_delete}
"""


def manifest() -> dict[str, Any]:
    return prober_pod_manifest("r1", "demo", "http://10.96.0.10:80/", 20, 1.5, IMAGE, 900)


# -- the manifest ----------------------------------------------------------------------------

def test_the_pod_is_named_and_labelled_for_its_run() -> None:
    meta = manifest()["metadata"]
    assert (meta["name"], meta["namespace"]) == ("chaosdrill-prober-r1", "demo")
    assert meta["labels"]["chaosdrill.dev/prober"] == "true"
    assert meta["labels"]["chaosdrill.dev/run"] == "r1"
    assert meta["labels"]["app.kubernetes.io/name"] == "chaos-drill"  # never a target
    record = restore.Record.from_json(meta["annotations"][restore.ANNOTATION])
    assert record is not None and (record.run, record.fault) == ("r1", "probe")


def test_the_pod_meets_pod_security_restricted() -> None:
    spec = manifest()["spec"]
    assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 65532,
                                       "runAsGroup": 65532,
                                       "seccompProfile": {"type": "RuntimeDefault"}}
    [container] = spec["containers"]
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] == 65532
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert context["readOnlyRootFilesystem"] is True
    assert "privileged" not in context
    assert all("emptyDir" in volume for volume in spec["volumes"])  # no hostPath


def test_the_pod_has_no_token_and_bounded_resources_and_life() -> None:
    spec = manifest()["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert spec["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] == 900
    assert spec["terminationGracePeriodSeconds"] == 6  # the 1.5 s timeout + 2 s, and time to print
    [container] = spec["containers"]
    assert container["resources"] == {"requests": {"cpu": "100m", "memory": "64Mi"},
                                      "limits": {"cpu": "500m", "memory": "128Mi"}}


def test_the_pod_runs_the_standalone_prober_from_the_operator_image() -> None:
    [container] = manifest()["spec"]["containers"]
    assert (container["image"], container["imagePullPolicy"]) == (IMAGE, "IfNotPresent")
    assert container["command"] == ["/usr/bin/python3.11", "-m", "chaos.observe.prober",
                                    "http://10.96.0.10:80/", "--rate", "20", "--timeout", "1.5"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["PYTHONPATH"].split(":")[0] == "/app/src"  # where the operator image has chaos/
    assert env["PYTHONUNBUFFERED"] == "1"


def test_the_pod_prefers_a_control_plane_node_which_node_faults_never_pick() -> None:
    spec = manifest()["spec"]
    assert spec["tolerations"] == [{"key": "node-role.kubernetes.io/control-plane",
                                    "operator": "Exists", "effect": "NoSchedule"}]
    [preferred] = spec["affinity"]["nodeAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred["preference"]["matchExpressions"] == [
        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in spec["affinity"]["nodeAffinity"]


# -- its lines -------------------------------------------------------------------------------

WINDOW = {"seconds": 1.0, "requests": 20, "failures": 3, "longest_outage_seconds": 0.15,
          "start_seconds": 2.0, "ok": 17, "http_errors": 1, "connection_errors": 2,
          "timeouts": 0, "unsent": 0, "latency": {"10": 18, "300": 1},
          "failed_at": [[2.5, "connection"], [2.55, "connection"], [2.6, "http"]]}


def test_parse_line_started_window_stopped() -> None:
    started = parse_line('{"event": "started", "rate": 20, "wall": 1700000000.25}\n')
    assert (started.kind, started.data["wall"]) == ("started", 1700000000.25)
    window = parse_line(json.dumps(WINDOW).encode())
    assert (window.kind, window.data["requests"]) == ("window", 20)
    assert parse_line('{"event": "stopped", "requests": 40}').kind == "stopped"


@pytest.mark.parametrize("line", [
    "", "Traceback (most recent call last):", "null", "[1, 2]", '"text"', "{", b"\xff\xfe{",
    '{"event": "started"}', '{"event": "started", "wall": "soon"}', '{"event": "paused"}',
    '{"seconds": 1, "requests": 2}', '{"seconds": 1, "requests": "2", "failures": 0, '
    '"longest_outage_seconds": 0}', "[" * 100000,
])
def test_parse_line_calls_anything_else_garbage(line: str | bytes) -> None:
    assert parse_line(line).kind == "garbage"


def test_a_window_line_becomes_a_probe_window() -> None:
    window = window_from(WINDOW)
    assert isinstance(window, ProbeWindow)
    assert (window.seconds, window.requests, window.failures) == (1.0, 20, 3)
    assert window.longest_outage_seconds == 0.15


def test_a_window_line_whose_fields_do_not_fit_is_none() -> None:
    assert window_from({**WINDOW, "latency": {"10": [1, 2]}}) is None


def test_slot_outcomes_place_failures_where_they_were() -> None:
    outcomes = slot_outcomes(WINDOW, 20)
    assert len(outcomes) == 20 and outcomes.count(False) == 3
    assert [i for i, ok in enumerate(outcomes) if not ok] == [10, 11, 12]


def test_slot_outcomes_without_offsets_put_failures_last() -> None:
    data = {"requests": 5, "failures": 2}
    assert slot_outcomes(data, 5) == [True, True, True, False, False]
    assert slot_outcomes({"requests": 0, "failures": 0, "failed_at": [[0.1, "x"]]}, 5) == []


class Heard:
    def __init__(self) -> None:
        self.requests: list[bool] = []
        self.windows: list[ProbeWindow] = []

    def prober(self) -> PodProber:
        return PodProber(None, "r1", "demo", "http://10.96.0.10/", 20, 1, IMAGE, 600,
                         lambda ok, _latency: self.requests.append(ok), self.windows.append)


def test_the_pod_prober_counts_windows_once_and_garbage_without_raising() -> None:
    heard = Heard()
    prober = heard.prober()
    prober.feed('{"event": "started", "rate": 20, "wall": 1700000000.0}')
    assert prober.time_base is not None
    for line in ("oops", json.dumps(WINDOW), json.dumps(WINDOW), b"\xff",
                 json.dumps({**WINDOW, "start_seconds": 3.0, "failures": 0, "failed_at": [],
                             "longest_outage_seconds": 0.15})):
        prober.feed(line)  # the same window twice: a log followed again from its start
    assert (prober.requests, prober.failures, prober.longest_outage) == (40, 3, 0.15)
    assert (prober.garbage, prober.last_garbage) == (2, "\ufffd")
    assert len(heard.windows) == 2 and len(heard.requests) == 40
    assert heard.requests.count(False) == 3
    prober.feed('{"event": "stopped"}')


def test_a_second_started_line_keeps_the_first_time_base() -> None:
    prober = Heard().prober()
    prober.feed('{"event": "started", "rate": 20, "wall": 100.0}')
    first = prober.time_base
    prober.feed('{"event": "started", "rate": 20, "wall": 200.0}')
    assert prober.time_base == first


# -- the time base ---------------------------------------------------------------------------

def test_time_base_maps_the_pods_slot_zero_onto_our_monotonic_clock() -> None:
    # here, time.time() - time.monotonic() == 1_000_000; the pod's slot 0 at wall 1_000_050.5
    base = time_base(pod_wall=1_000_050.5, arrived=51.25, offset=1_000_000.0)
    assert base.slot_zero == pytest.approx(50.5)
    assert base.skew_bound == pytest.approx(0.75)  # the started line took at most this long


def test_time_base_shows_a_pod_clock_ahead_as_a_negative_delay() -> None:
    base = time_base(pod_wall=1_000_060.0, arrived=51.0, offset=1_000_000.0)
    assert base.skew_bound == pytest.approx(-9.0)


# -- the pod's state while it starts -----------------------------------------------------------

def waiting(reason: str, message: str = "") -> dict[str, Any]:
    return {"status": {"phase": "Pending", "containerStatuses": [
        {"state": {"waiting": {"reason": reason, "message": message}}}]}}


def test_pod_problem_names_a_missing_image_as_hopeless() -> None:
    state, hopeless = pod_problem(waiting("ErrImageNeverPull", f'image "{IMAGE}" not present'))
    assert hopeless and state.startswith("ErrImageNeverPull: image")


def test_pod_problem_waits_on_a_creating_or_unschedulable_pod() -> None:
    assert pod_problem(waiting("ContainerCreating")) == ("ContainerCreating", False)
    unscheduled = {"status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "message": "0/1 nodes are available"}]}}
    assert pod_problem(unscheduled) == ("unschedulable: 0/1 nodes are available", False)
    assert pod_problem({"status": {}}) == ("Pending", False)


def test_pod_problem_sees_an_exited_prober() -> None:
    ended = {"status": {"phase": "Failed", "containerStatuses": [
        {"state": {"terminated": {"reason": "Error", "exitCode": 1}}}]}}
    assert pod_problem(ended) == ("exited (Error, exit 1)", True)


# -- where to probe from, against real sockets -------------------------------------------------

class Failing(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def answering_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def silent_url() -> str:
    with socket.socket() as sock:  # a port just freed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_auto_probes_from_the_host_when_any_http_answer_comes(answering_url: str) -> None:
    assert reachable_from_host(answering_url)  # a 503 is an answer
    assert choose_origin("auto", answering_url) == "host"


def test_auto_probes_from_the_cluster_when_nothing_answers(silent_url: str) -> None:
    assert not reachable_from_host(silent_url)
    began = time.monotonic()
    assert choose_origin("auto", silent_url, ask_again=0.5) == "cluster"
    assert 0.5 <= time.monotonic() - began < 2, "asked again, then gave up"


def test_auto_asks_again_while_the_host_is_refused(silent_url: str) -> None:
    """A Service whose pods just became Ready is refused from the host until kube-proxy has
    their endpoints: auto waits for that rather than probing from a pod."""
    port = int(silent_url.rsplit(":", 1)[1].strip("/"))
    server = http.server.HTTPServer(("127.0.0.1", port), http.server.BaseHTTPRequestHandler,
                                    bind_and_activate=False)
    server.server_bind()  # bound, not listening: refused until half a second from now

    serving = threading.Event()

    def listen() -> None:
        server.server_activate()
        serving.set()
        server.serve_forever()

    later = threading.Timer(0.5, listen)
    later.start()
    try:
        began = time.monotonic()
        assert choose_origin("auto", silent_url) == "host"  # a 501 is an answer
        assert 0.4 < time.monotonic() - began < 3
    finally:
        later.cancel()
        if serving.wait(2):
            server.shutdown()
        server.server_close()


def test_auto_gives_up_on_a_host_that_accepts_but_never_answers() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        assert choose_origin("auto", url, timeout=0.2, ask_again=0.5) == "cluster"


def test_auto_asks_again_after_a_get_that_timed_out() -> None:
    """One GET of a cluster just brought up may time out: auto asks again rather than
    probing from a pod for the whole drill."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(5)

        def serve() -> None:
            first, _ = listener.accept()  # held unanswered past the client's timeout
            time.sleep(0.4)
            first.close()
            second, _ = listener.accept()
            with second:
                second.recv(1024)
                second.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        began = time.monotonic()
        assert choose_origin("auto", url, timeout=0.2) == "host"
        assert time.monotonic() - began >= 0.2, "the first GET timed out"
        server.join(5)
        assert not server.is_alive(), "both GETs came"


def test_host_and_cluster_are_taken_as_said(silent_url: str, answering_url: str) -> None:
    assert choose_origin("host", silent_url) == "host"
    assert choose_origin("cluster", answering_url) == "cluster"


def test_a_url_out_by_the_default_route_is_never_probed_from_the_host(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """kind's Service range (or a remote cluster's) has no route here: one GET from the host
    would leave the machine, so auto probes from the cluster and host is refused in one line.
    TEST-NET-3 goes by the default route on any machine with one; nothing is sent to it."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    if not via_default_route("203.0.113.5"):
        pytest.skip("this machine has no default route")
    assert not via_default_route("127.0.0.1")
    url = "http://203.0.113.5:80/"
    began = time.monotonic()
    assert choose_origin("auto", url) == "cluster"
    assert time.monotonic() - began < REACH_TIMEOUT, "no GET was tried"
    with pytest.raises(SpecError, match=r"^spec.probe.from: host, but this machine reaches "
                                        r"203.0.113.5 only through its default route"):
        choose_origin("host", url)
    assert choose_origin("cluster", url) == "cluster"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")  # in a pod: that is the way
    assert not via_default_route("203.0.113.5")


def test_a_provider_refusal_keeps_the_probe_off_the_host(answering_url: str) -> None:
    """kind's route to its Services leads to another kind cluster's node: auto probes from the
    cluster without a GET from here, host is refused in one line naming the reason."""
    reason = "this host's route to 10.251.0.0/16 goes to 172.30.0.5, a node of another cluster"
    assert choose_origin("auto", answering_url, refusal=reason) == "cluster"
    with pytest.raises(SpecError, match=r"^spec.probe.from: host, but this host's route to "
                                        r"10.251.0.0/16 goes to 172.30.0.5.*: use from: cluster"):
        choose_origin("host", answering_url, refusal=reason)
    assert host_refusal(object(), answering_url) is None, "a provider without routes has none"


def test_the_pod_outlives_every_wait_of_its_drill() -> None:
    drill = parse_drill(DRILL.replace("type: pod_delete}", "type: pod_delete}\n  rounds: 3"))
    assert max_run_seconds(drill) >= 3 * (drill.interval_seconds
                                          + 2 * drill.recovery_timeout_seconds)


# -- spec.probe.from -------------------------------------------------------------------------

def test_probe_from_defaults_to_auto_and_round_trips() -> None:
    drill = parse_drill(DRILL + "  probe: {service: web, port: 80}\n")
    assert drill.probe is not None and drill.probe.origin == "auto"
    for origin in ("host", "cluster", "auto"):
        drill = parse_drill(DRILL + f"  probe: {{service: web, port: 80, from: {origin}}}\n")
        assert drill.probe is not None and drill.probe.origin == origin
        assert drill.to_object()["spec"]["probe"]["from"] == origin
        assert drill_from_object(drill.to_object()) == drill


def test_probe_from_errors_name_the_field() -> None:
    with pytest.raises(SpecError) as caught:
        parse_drill(DRILL + "  probe: {service: web, port: 80, from: pod}\n", "drill.yaml")
    assert str(caught.value) == ("drill.yaml:7: spec.probe.from: 'pod' is not allowed; use one "
                                 "of host, cluster, auto")


def test_the_crd_schema_has_probe_from() -> None:
    field = crd_schema()["properties"]["spec"]["properties"]["probe"]["properties"]["from"]
    assert (field["type"], field["enum"], field["default"]) == (
        "string", ["host", "cluster", "auto"], "auto")
    assert "prober pod" in field["description"]
    crd = yaml.safe_load(CRD_PATH.read_text())
    assert crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"] == crd_schema()


# -- cleanup and rights ----------------------------------------------------------------------

def prober_pod(run: str) -> client.V1Pod:
    record = restore.Record("r" + run, "probe", None, "elsewhere", 1, "2024-01-01T00:00:00")
    meta = client.V1ObjectMeta(name=f"chaosdrill-prober-{run}", namespace="demo",
                               labels={restore.PROBER_LABEL: "true"},
                               annotations={restore.ANNOTATION: record.to_json()})
    return client.V1Pod(metadata=meta)


def test_prober_pods_of_dead_runs_are_removed_and_live_ones_left() -> None:
    found = restore.Findings()
    restore._sort("Pod", [prober_pod("1"), prober_pod("2")], found)
    dead, live = found.leftovers
    assert dead.kind == live.kind == restore.PROBER_POD
    restore.ACTIVE_RUNS[live.record.run] = ""
    try:
        judged = restore.judge_runs(None, [dead.record, live.record], print)
    finally:
        restore.ACTIVE_RUNS.pop(live.record.run)
    assert (judged[dead.record.run].alive, judged[live.record.run].alive) == (False, True)
    assert "prober left running by probe run r1" in dead.describe()


def test_the_operator_may_run_prober_pods_and_names_their_image() -> None:
    docs = operator_install.operator_documents(IMAGE, ["demo"])
    target = next(d for d in docs if d["kind"] == "ClusterRole"
                  and d["metadata"]["name"] == "chaos-drill-operator-target")
    verbs = {(r, v) for rule in target["rules"] for r in rule["resources"] for v in rule["verbs"]}
    assert {("pods", v) for v in ("create", "delete", "get", "list")} <= verbs
    assert ("pods/log", "get") in verbs
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert {"name": IMAGE_ENV, "value": IMAGE} in container["env"]
