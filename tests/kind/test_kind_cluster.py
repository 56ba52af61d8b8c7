"""The kind provider for real: a three-node kind cluster from the node image `make kind` builds
(the session's, tests/kind/conftest.py), the sample workload deployed through the provider,
drills run on it, and a `cluster down` that leaves nothing on the host. The tests pass in any
order: each asks for the state it needs (`kind_up`, `kind_web`). Run last by `make test`, alone
by `make test-kind`."""

from __future__ import annotations

import socket
import ssl
import stat
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream
from kubernetes.utils import parse_quantity

from chaos.cluster import addons, dockerd, kind, kind_host, kind_images, kube, serving_certs
from chaos.cluster.local import LocalCluster
from chaos.drill import restore
from chaos.drill.loading import load_drill
from chaos.drill.spec import GROUP, PLURAL, VERSION
from chaos.errors import SetupError
from chaos.images import node as nodeimage
from chaos.operator import install as operator_install
from chaos.results import read_journal
from chaos.run.runner import DrillRun, RunOptions

from support import (
    FAULTS,
    KindSession,
    cli,
    host_sysctls,
    leaked,
    one_error,
    running_cli,
    wait_finished,
    wait_node_ready,
    write_drill,
)

# Bringing the cluster up cold (loading the node image into Docker, three nodes) takes minutes.
pytestmark = [pytest.mark.e2e, pytest.mark.kind, pytest.mark.timeout(900)]

def say(message: str) -> None:
    print(f"[kind] {message}", flush=True)


def test_local_refuses_while_kind_runs(kind_up: KindSession) -> None:
    with pytest.raises(SetupError, match=r"^a kind cluster of chaos-drill is up: run "
                                         r"'chaos-drill cluster down --provider kind' first"):
        LocalCluster().up(say)


def test_three_nodes_ready_with_their_own_pod_ranges(kind_up: KindSession) -> None:
    with kube.api_client(kind_up.provider.kubeconfig()) as api:
        nodes = client.CoreV1Api(api).list_node(_request_timeout=30).items
    assert len(nodes) == 3 and all(kube.node_ready(n) for n in nodes)
    assert sorted(n.metadata.name for n in nodes) == [
        "chaos-drill-control-plane", "chaos-drill-worker", "chaos-drill-worker2"]
    cidrs = {n.spec.pod_cidr for n in nodes}
    assert len(cidrs) == 3 and all(c.startswith("10.250.") for c in cidrs)


def test_the_admin_kubeconfig_is_private_and_kept(kind_up: KindSession) -> None:
    """It holds the admin's client key: 0600 under any umask, not rewritten when unchanged."""
    path = kind_up.provider.kubeconfig()
    path.chmod(0o644)
    again = kind_up.provider.kubeconfig()
    assert again == path and stat.S_IMODE(path.stat().st_mode) == 0o600
    inode = path.stat().st_ino
    kind_up.provider.kubeconfig()
    assert path.stat().st_ino == inode


def test_nodes_apply_no_host_wide_sysctl(kind_up: KindSession) -> None:
    """A privileged node's systemd-sysctl writes the host's kernel for any key that is not
    namespaced; what it reads at boot holds none, and it did apply the node's own."""
    node = "chaos-drill-worker"
    places = " ".join(f"/{place}" for place in nodeimage.SYSCTL_FILES)
    listing = dockerd.run("exec", node, "sh", "-c",
                          f"find -L {places} -maxdepth 1 -name '*.conf' -type f "
                          "-exec cat {} + 2>/dev/null; true", timeout=60)
    keys = [key for line in listing.splitlines() if (key := nodeimage.sysctl_key(line))]
    assert "net.ipv4.conf.all.rp_filter" in keys
    assert [key for key in keys if nodeimage.host_wide(key)] == []
    state = dockerd.run("exec", node, "systemctl", "show", "-p", "Result", "--value",
                        "systemd-sysctl.service", timeout=60).strip()
    assert state == "success"


def egress_rejected() -> int:
    """Packets the egress rule has rejected so far."""
    listing = subprocess.run(["iptables", "-w", "-L", "DOCKER-USER", "-n", "-v", "-x"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    return sum(int(line.split()[0]) for line in listing.splitlines()
               if kind_host.EGRESS_COMMENT in line)


def test_what_a_node_sends_outside_is_rejected_here(kind_up: KindSession) -> None:
    """A connection from a node to an address beyond the default route meets our rule (and is
    refused at once) instead of leaving the machine."""
    before = egress_rejected()
    out = dockerd.run("exec", "chaos-drill-worker", "bash", "-c",
                      "timeout 5 bash -c 'echo > /dev/tcp/198.51.100.1/80' 2>&1; echo rc=$?",
                      timeout=30, check=False)
    assert "rc=0" not in out and "rc=124" not in out, out
    assert egress_rejected() > before, "the packet did not meet the egress rule"


def in_pod(core: Any, pod: str, *command: str) -> str:
    return str(stream(core.connect_get_namespaced_pod_exec, pod, "demo",
                      command=["/bin/busybox", *command], stderr=True, stdin=False, stdout=True,
                      tty=False, _request_timeout=30))


def until(what: str, attempt: Any, timeout: float = 60) -> str:
    """ATTEMPT's output once it has WHAT in it; its last output in the failure otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        output = attempt()
        if what in output:
            return str(output)
        assert time.monotonic() < deadline, f"no {what!r} within {timeout:.0f}s: {output}"
        time.sleep(1)


GET = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 5 {} {}"
"""An HTTP request by nc: busybox-static's wget crashes in these pods (static glibc)."""


def test_service_dns_logs_and_exec_from_a_pod(kind_web: Any) -> None:
    """From a web pod (exec): the web Service by ClusterIP, every web pod by its IP (across
    nodes), the Service's name through CoreDNS; and the pod's logs through the kubelet."""
    core = client.CoreV1Api(kind_web)
    pods = sorted(core.list_namespaced_pod("demo", label_selector="app=web").items,
                  key=lambda p: p.metadata.name)
    assert len({p.spec.node_name for p in pods}) >= 2, "the pods should span the workers"
    service_ip = core.read_namespaced_service("web", "demo").spec.cluster_ip
    dns_ip = core.read_namespaced_service("kube-dns", "kube-system").spec.cluster_ip
    client_pod = pods[0].metadata.name
    assert in_pod(core, client_pod, "hostname").strip() == client_pod
    for address, port in [(service_ip, 80), *((p.status.pod_ip, 8080) for p in pods)]:
        until("chaos-drill web",
              lambda a=address, p=port: in_pod(core, client_pod, "sh", "-c", GET.format(a, p)))
    answer = until(service_ip, lambda: in_pod(core, client_pod, "nslookup",
                                              "web.demo.svc.cluster.local", dns_ip))
    assert "web.demo.svc.cluster.local" in answer
    logs = core.read_namespaced_pod_log(client_pod, "demo", _request_timeout=30)
    assert "response:200" in logs


def until_found(read: Any, timeout: float = 60) -> Any:
    """READ()'s result once it stops answering 404 Not Found."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return read()
        except ApiException as error:
            assert error.status == 404 and time.monotonic() < deadline, error
        time.sleep(1)


def test_metrics_api_serves_every_node_and_a_web_pod(kind_web: Any) -> None:
    """`kubectl top` through the metrics API: NodeMetrics for each node and PodMetrics for a web
    pod. metrics-server verifies each kubelet's serving cert with the cluster CA (no insecure
    TLS), as the host does here: the CA signed each on a CSR chaos-drill approved for that node.
    `cluster up` does not wait for the metrics API (load drills do): neither does this test."""
    addons.wait_for_metrics(kind_web, print)
    core, custom = client.CoreV1Api(kind_web), client.CustomObjectsApi(kind_web)
    nodes = core.list_node(_request_timeout=30).items
    for node in nodes:
        usage = custom.get_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes",
                                                 node.metadata.name)["usage"]
        assert parse_quantity(usage["cpu"]) > 0 and parse_quantity(usage["memory"]) > 0, usage
    pod = core.list_namespaced_pod("demo", label_selector="app=web").items[0].metadata.name
    metrics = until_found(lambda: custom.get_namespaced_custom_object(
        "metrics.k8s.io", "v1beta1", "demo", "pods", pod, _request_timeout=10))
    assert [c["name"] for c in metrics["containers"]] == ["web"], metrics
    assert parse_quantity(metrics["containers"][0]["usage"]["memory"]) > 0, metrics
    args = client.AppsV1Api(kind_web).read_namespaced_deployment(
        "metrics-server", "kube-system").spec.template.spec.containers[0].args
    assert "--kubelet-insecure-tls" not in args
    context = ssl.create_default_context(cafile=kind_web.configuration.ssl_ca_cert)
    for node in nodes:
        ip = next(a.address for a in node.status.addresses if a.type == "InternalIP")
        with socket.create_connection((ip, 10250), timeout=10) as sock, \
                context.wrap_socket(sock, server_hostname=ip) as tls:
            peer = tls.getpeercert()
        assert peer and ("commonName", f"system:node:{node.metadata.name}") in [
            pair for names in peer["subject"] for pair in names], peer
    approved = {csr.spec.username: [c.reason for c in csr.status.conditions]
                for csr in client.CertificatesV1Api(kind_web).list_certificate_signing_request(
                    _request_timeout=30).items if csr.spec.signer_name == serving_certs.SIGNER}
    assert approved == {f"system:node:{n.metadata.name}": ["ChaosDrillApproved"]
                        for n in nodes}


def test_operator_installs_runs_a_drill_and_uninstalls(kind_web: Any, tmp_path: Path) -> None:
    """`chaos-drill operator install --provider kind`: its image loaded with kind's loading
    (unless a drill's prober pod had it loaded already), the Deployment Ready, an applied
    pod_delete ChaosDrill ends Passed; uninstall removes it."""
    installed = cli("operator", "install", "--provider", "kind", "--timeout", "180")
    assert installed.returncode == 0, installed.stderr[-3000:]
    apps, custom = client.AppsV1Api(kind_web), client.CustomObjectsApi(kind_web)
    deployment = apps.read_namespaced_deployment("chaos-drill-operator", "chaos-drill")
    assert deployment.status.ready_replicas == deployment.spec.replicas == 2
    image = deployment.spec.template.spec.containers[0].image
    for node in (line.split()[0] for line in node_states()):
        assert image in {reference for reference, _ in kind_images.held(node)}, (node, image)
    drill = yaml.safe_load(write_drill(tmp_path, FAULTS["pod_delete"], probe=None).read_text())
    custom.create_namespaced_custom_object(GROUP, VERSION, "demo",
                                           PLURAL, drill)
    try:
        status = wait_finished(kind_web, "e2e", 180)
    finally:
        custom.delete_namespaced_custom_object(GROUP, VERSION, "demo",
                                               PLURAL, "e2e")
        uninstalled = cli("operator", "uninstall", "--provider", "kind", "--timeout", "180")
    assert status["phase"] == "Passed", status
    assert status["incidents"] == 1 and status["recovered"] == 1, status
    assert uninstalled.returncode == 0, uninstalled.stderr[-3000:]
    rbac = client.RbacAuthorizationV1Api(kind_web)
    part_of = operator_install.PART_OF
    assert operator_install.NAMESPACE not in [
        n.metadata.name for n in client.CoreV1Api(kind_web).list_namespace().items]
    assert not rbac.list_cluster_role(label_selector=part_of).items
    assert not rbac.list_cluster_role_binding(label_selector=part_of).items
    assert not rbac.list_role_binding_for_all_namespaces(label_selector=part_of).items
    assert not client.ApiextensionsV1Api(kind_web).list_custom_resource_definition(
        label_selector=part_of).items


@pytest.mark.parametrize("fault", ["pod_delete", "container_kill", "scale", "node_drain"])
def test_drill_recovers(fault: str, kind_web: Any, kind_up: KindSession, tmp_path: Path) -> None:
    drill = load_drill(write_drill(tmp_path, FAULTS[fault], probe=None))
    summary = DrillRun(drill, kind_up.provider, RunOptions(out_dir=tmp_path / "out"), say).run()
    assert summary.passed, summary.slo_checks
    assert summary.incidents and all(i.recovery_seconds for i in summary.incidents)
    nodes = client.CoreV1Api(kind_web).list_node(_request_timeout=30).items
    assert not any(n.spec.unschedulable for n in nodes), "node_drain must uncordon"



def test_node_stop_drill_reschedules_on_the_other_worker(kind_web: Any, kind_up: KindSession,
                                                         tmp_path: Path) -> None:
    """node_stop takes down the victim's node (a worker: the control plane is tainted), wherever
    an earlier drill (node_drain) left the pods, at the moment the drill says: Docker's own
    record of the node container's end is within 2 s of the injection's (a `docker stop`
    shut it down over 10 s)."""
    drill = load_drill(write_drill(tmp_path, FAULTS["node_stop"], probe=None,
                                   slo={"maxRecoverySeconds": 300}))
    summary = DrillRun(drill, kind_up.provider, RunOptions(out_dir=tmp_path / "out"), say).run()
    assert summary.incidents, "the drill opened no incident"
    assert all(i.recovery_seconds for i in summary.incidents), summary.incidents
    assert {i.node for i in summary.incidents} <= {"chaos-drill-worker", "chaos-drill-worker2"}
    injected = next(r for r in read_journal(tmp_path / "out" / "journal.jsonl")
                    if r.event == "fault_injected")
    ended = dockerd.run("inspect", "-f", "{{.State.FinishedAt}}", injected.get("node"),
                        timeout=30).strip()
    died = datetime.fromisoformat(ended[:26].rstrip("Z") + "+00:00")  # to microseconds
    after = (died - datetime.fromisoformat(injected.ts)).total_seconds()
    print(f"node container ended {after:.3f} s after the injection's record")
    assert -0.5 <= after <= 2.0, (ended, injected.ts)  # `docker stop` took 10 s
    assert node_states() == [
        "chaos-drill-control-plane running", "chaos-drill-worker running",
        "chaos-drill-worker2 running"], "the stopped node must be started again"


def node_states() -> list[str]:
    states = dockerd.run("ps", "-a", "--filter", f"label={kind.CLUSTER_LABEL}=chaos-drill",
                         "--format", "{{.Names}} {{.State}}", timeout=30).split("\n")
    return sorted(line for line in states if line)


def test_restore_after_sigkill_mid_node_stop_starts_the_node_container_again(
        kind_web: Any, kind_up: KindSession, tmp_path: Path) -> None:
    """A drill killed outright while its node is stopped leaves the node container exited and
    the stop recorded on the Node; `restore --provider kind` starts the container again, puts
    the routes back (pods on it reach the others' again) and the node is Ready."""
    spec = write_drill(tmp_path, FAULTS["node_stop"], probe=None,
                       slo={"maxRecoverySeconds": 300})
    with running_cli("run", str(spec), "--provider", "kind", "--out", str(tmp_path / "out")) \
            as (_, output):
        output.wait_for(": stopped node ", timeout=180)
    core = client.CoreV1Api(kind_web)
    stopped = [n for n in core.list_node(_request_timeout=30).items
               if restore.ANNOTATION in (n.metadata.annotations or {})]
    assert len(stopped) == 1, "node_stop records the stop on the node"
    node = stopped[0].metadata.name
    assert f"{node} exited" in node_states(), "the killed run left the node stopped"
    result = cli("restore", "--namespace", "demo", "--provider", "kind")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"restoring Node {node}: stopped by node_stop run " in result.stderr, result.stderr
    assert node_states() == ["chaos-drill-control-plane running", "chaos-drill-worker running",
                             "chaos-drill-worker2 running"]
    wait_node_ready(kind_web, node, timeout=120)
    assert restore.ANNOTATION not in (core.read_node(node).metadata.annotations or {})
    again = cli("restore", "--namespace", "demo", "--provider", "kind")
    assert "nothing left to restore" in again.stderr, again.stderr


def test_up_refuses_a_broken_cluster_and_leaves_it_as_it_is(kind_up: KindSession) -> None:
    """A node container stopped behind chaos-drill's back: `cluster up` says which and how to
    fix it, exit 2, and neither removes the cluster nor starts the node."""
    dockerd.run("stop", "chaos-drill-worker2", timeout=120)
    try:
        message = one_error(cli("cluster", "up", "--provider", "kind"))
        assert message == ("kind cluster chaos-drill exists but is broken: node container "
                           "chaos-drill-worker2 is exited: run 'chaos-drill cluster down "
                           "--provider kind', then up again")
        assert node_states() == ["chaos-drill-control-plane running",
                                 "chaos-drill-worker running", "chaos-drill-worker2 exited"]
        assert kind.running_here()
    finally:
        kind_up.provider.start_node("chaos-drill-worker2", say)


def test_down_leaves_nothing(kind_up: KindSession) -> None:
    """Also: no packet from the nodes or pods left by the default route in this whole session."""
    assert leaked() == 0, "packets from the kind nodes or pods left the machine"
    provider = kind_up.provider
    provider.down(say)
    assert provider.leftovers() == []
    assert not kind.running_here()
    if provider.engine.started() is None:
        assert not dockerd.engine_up(), "the dockerd we started must be stopped"
    after = host_sysctls()
    changed = {k: (v, after.get(k)) for k, v in kind_up.host_before.items() if after.get(k) != v}
    assert changed == {}
