"""Small helpers shared by the e2e and bench tests (tests/ is on sys.path through conftest.py)."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import math
import os
import platform
import selectors
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.stream import stream

from chaos import resources
from chaos.cluster import (
    addons,
    kind_host,
    kube,
    memory_hog,
    node_access,
    pki,
    processes,
    workloads,
)
from chaos.cluster.base import ClusterProvider, MemoryHog
from chaos.cluster.kind import KindCluster
from chaos.drill import partition, restore
from chaos.drill.faults.load import LOAD_LABEL
from chaos.drill.loading import load_drill
from chaos.drill.spec import GROUP, PLURAL, VERSION
from chaos.monitoring.query import Sample, Series
from chaos.operator import handlers as operator
from chaos.resources import KUBERNETES_VERSION, cache_dir
from chaos.results import JournalRecord, read_journal
from chaos.results.summary import Summary
from chaos.run.runner import DrillRun, RunOptions

needs_prometheus = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="prometheus not installed: run 'make setup' (installs Debian's prometheus)",
)
"""Marks tests that start Debian's Prometheus (make setup installs it, so CI never skips)."""


REPO = Path(__file__).resolve().parents[1]

KUBECTL = cache_dir() / f"kubernetes-tools-v{KUBERNETES_VERSION}" / "bin" / "kubectl"
"""The kubectl of the pinned Kubernetes, which `make kind` builds (never one the host may have)."""

SYSCTL_ROOTS = ("fs", "kernel", "vm", "net/ipv4", "net/ipv6/conf/all", "net/bridge")
SYSCTL_CHANGING = ("kernel/ns_last_pid", "kernel/random/", "fs/dentry-state", "fs/file-nr",
                   "fs/inode-", "kernel/tainted", "fs/quota/", "kernel/sched_", "net/ipv4/tcp_mem",
                   "net/ipv4/udp_mem", "fs/binfmt_misc/")
PROVOKING_SYSCTLS = {
    # Debian's links policy (procps' sysctl.d), as a node's systemd-sysctl would apply it
    "fs/protected_fifos": "0", "fs/protected_regular": "0", "fs/protected_symlinks": "0",
    # what kubelet sets when protectKernelDefaults is off
    "kernel/panic": "0", "kernel/panic_on_oops": "0", "vm/overcommit_memory": "0",
}
"""Host settings set, for a test, to values a cluster would change, so that a change left
behind shows on any machine, not only on one where they still have a fresh machine's values."""


def host_sysctls() -> dict[str, str]:
    """Every writable host sysctl under SYSCTL_ROOTS that does not change on its own."""
    found = {}
    for root in SYSCTL_ROOTS:
        base = Path("/proc/sys", root)
        for path in base.rglob("*") if base.exists() else []:
            key = str(path.relative_to("/proc/sys"))
            if (path.is_file() and path.stat().st_mode & 0o200
                    and not key.startswith(SYSCTL_CHANGING)):
                try:
                    found[key] = path.read_text().strip()
                except OSError:
                    pass
    return found


@contextmanager
def sysctls_set(values: dict[str, str]) -> Iterator[None]:
    """The host's sysctls set to VALUES meanwhile, put back as they were afterwards."""
    before = {key: Path("/proc/sys", key).read_text().strip() for key in values}
    try:
        for key, value in values.items():
            Path("/proc/sys", key).write_text(value)
        yield
    finally:
        for key, value in before.items():
            Path("/proc/sys", key).write_text(value)

FAULTS: dict[str, dict[str, Any]] = {
    "pod_delete": {"type": "pod_delete", "gracePeriodSeconds": 0},
    "container_kill": {"type": "container_kill"},
    "oom_kill": {"type": "oom_kill"},
    "liveness_break": {"type": "liveness_break"},
    "scale": {"type": "scale", "replicas": 5},
    "node_drain": {"type": "node_drain"},
    "node_stop": {"type": "node_stop"},
}


def write_drill(tmp_path: Path, fault: dict[str, Any], **spec: Any) -> Path:
    """A one-round drill on demo/web with a probe; SPEC fields override (None removes one)."""
    doc: dict[str, Any] = {
        "apiVersion": "chaosdrill.dev/v1alpha1", "kind": "ChaosDrill",
        "metadata": {"name": "e2e", "namespace": "demo"},
        "spec": {"target": {"kind": "Deployment", "name": "web"}, "fault": fault,
                 "rounds": 1, "intervalSeconds": 0, "seed": 7,
                 "probe": {"service": "web", "port": 80, "ratePerSecond": 20},
                 "slo": {"maxRecoverySeconds": 120, "minAvailability": 0}, **spec},
    }
    doc["spec"] = {key: value for key, value in doc["spec"].items() if value is not None}
    if "probe" not in doc["spec"]:
        doc["spec"]["slo"].pop("minAvailability", None)  # it needs a probe
    path = tmp_path / "drill.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run_drill(provider: ClusterProvider, path: Path, out: Path,
              say: Callable[[str], None] = print, **options: Any) -> Summary:
    """The drill at PATH run in this process on PROVIDER, its results in OUT; OPTIONS are
    RunOptions' (dry_run, on_inject, ...)."""
    return DrillRun(load_drill(path), provider, RunOptions(out_dir=out, **options), say).run()


def run_in(api: Any, pod: str, *command: str) -> str:
    """What a busybox COMMAND in demo's POD prints (stdout and stderr), within 30 s."""
    return str(stream(client.CoreV1Api(api).connect_get_namespaced_pod_exec, pod, "demo",
                      command=["/bin/busybox", *command], stderr=True, stdin=False, stdout=True,
                      tty=False, _request_timeout=30))


def as_operator(api: Any) -> Any:
    """An API client that authenticates with a fresh token (10 min) of the in-cluster
    operator's own ServiceAccount."""
    request = {"spec": {"audiences": [], "expirationSeconds": 600}}
    token = client.CoreV1Api(api).create_namespaced_service_account_token(
        "chaos-drill-operator", "chaos-drill", request).status.token
    configuration = client.Configuration()
    configuration.host = api.configuration.host
    configuration.ssl_ca_cert = api.configuration.ssl_ca_cert
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(configuration)


def drill_object(name: str) -> dict[str, Any]:
    """manifests/drills/web-pod-kill.yaml as ChaosDrill demo/NAME, 2 rounds 1 s apart, no
    availability SLO."""
    doc: dict[str, Any] = yaml.safe_load((REPO / "manifests/drills/web-pod-kill.yaml").read_text())
    doc["metadata"] = {"name": name, "namespace": "demo"}
    doc["spec"].update(rounds=2, intervalSeconds=1)
    doc["spec"]["slo"]["minAvailability"] = 0
    return doc


def wait_finished(api: Any, name: str, timeout: int) -> dict[str, Any]:
    """The ChaosDrill demo/NAME's status once Passed or Failed; the test fails after TIMEOUT
    seconds."""
    seen: list[Any] = []
    events = watch.Watch().stream(
        client.CustomObjectsApi(api).list_namespaced_custom_object, GROUP,
        VERSION, "demo", PLURAL, field_selector=f"metadata.name={name}",
        timeout_seconds=timeout, _request_timeout=timeout + 10)
    for event in events:
        status = event["object"].get("status") or {}
        seen.append(status)
        if status.get("phase") in operator.FINISHED:
            return dict(status)
    pytest.fail(f"ChaosDrill {name} not Passed or Failed within {timeout}s; saw {seen[-3:]}")


def pod(uid: str, *, ready: bool = True, node: str = "node-1", deleting: bool = False,
        restarts: int = 0, running: bool = True, scheduled: bool = True) -> dict[str, Any]:
    """A pod object as the watch delivers it, for unit tests of what reads pods."""
    conditions = []
    if scheduled:
        conditions.append({"type": "PodScheduled", "status": "True",
                           "lastTransitionTime": "2026-01-01T00:00:01Z"})
    conditions.append({"type": "Ready", "status": "True" if ready else "False",
                       "lastTransitionTime": "2026-01-01T00:00:02Z"})
    state = {"running": {"startedAt": "2026-01-01T00:00:02Z"}} if running else {"waiting": {}}
    meta: dict[str, Any] = {"uid": uid, "name": f"web-{uid}", "namespace": "demo",
                            "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:03Z"
    return {"metadata": meta, "spec": {"nodeName": node if scheduled else None,
                                       "containers": [{"name": "web"}]},
            "status": {"phase": "Running" if running else "Pending", "conditions": conditions,
                       "containerStatuses": [{"name": "web", "ready": ready, "state": state,
                                              "restartCount": restarts,
                                              "containerID": f"containerd://{uid}"}]}}


def build_dist(out: Path) -> tuple[Path, Path]:
    """The sdist of this checkout and the wheel built from it (as `python -m build` makes them,
    offline: the virtualenv's setuptools), in OUT."""
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out),
                    str(REPO)], check=True, capture_output=True, timeout=300)
    return next(out.glob("*.tar.gz")), next(out.glob("*.whl"))


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m chaos ARGS` to its end (at most ten minutes)."""
    return subprocess.run([sys.executable, "-m", "chaos", *args], capture_output=True,
                          text=True, timeout=600, cwd=REPO, env=env)


ERROR_PREFIX = "chaos-drill: error: "


def error_line(stderr: str, *needles: str, alone: bool = False) -> str:
    """The message (after "error: ") of the one error line in a CLI run's STDERR, holding every
    NEEDLE; no traceback. Progress lines before it are allowed, unless ALONE: then stderr is that
    one line and nothing else."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1, stderr
    if alone:
        assert lines == errors and errors[0].startswith(ERROR_PREFIX), stderr
    message = errors[0].split("error: ", 1)[1]
    for needle in needles:
        assert needle in message, errors[0]
    return message


def one_error(result: subprocess.CompletedProcess[str], *needles: str,
              alone: bool = False) -> str:
    """The one error message of a CLI run that exited 2 (see error_line)."""
    assert result.returncode == 2, result.stdout + result.stderr
    return error_line(result.stderr, *needles, alone=alone)


class Output:
    """A child's output read by a thread, so tests wait on it with deadlines and never block on
    a pipe: `wait_for` a line, then `finish` for the rest."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lines: list[str] = []
        self._partial = b""
        self._changed = threading.Condition()
        self._done = False
        self._thread = threading.Thread(target=self._read, name="output", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # a pty whose other side closed reads EIO
                chunk = b""
            with self._changed:
                if not chunk:
                    if self._partial:
                        self.lines.append(self._partial.decode(errors="replace"))
                    self._done = True
                    self._changed.notify_all()
                    return
                *complete, self._partial = (self._partial + chunk).split(b"\n")
                self.lines += [line.decode(errors="replace") for line in complete]
                self._changed.notify_all()

    def wait_for(self, needle: str, timeout: float) -> str:
        """The first line holding NEEDLE; fails the test, with the last lines, after TIMEOUT."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((line for line in self.lines if needle in line), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self._done:
                    pytest.fail(f"no line with {needle!r} in {timeout}s; last lines:\n"
                                + "\n".join(self.lines[-15:]))
                self._changed.wait(min(left, 1.0))

    def type(self, keys: str) -> None:
        """KEYS typed into the child's terminal (start_cli's KEYBOARD)."""
        os.write(self.fd, keys.encode())

    def finish(self, timeout: float) -> str:
        """Everything the child wrote, once it closed its end; fails the test after TIMEOUT."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            pytest.fail(f"output still open after {timeout}s; last lines:\n"
                        + "\n".join(self.lines[-15:]))
        return "\n".join(self.lines)


def start_cli(*args: str, tty: bool = False,
              keyboard: bool = False) -> tuple[subprocess.Popen[bytes], Output]:
    """`python -m chaos ARGS` in the background, its stderr read by an Output; with TTY its
    stderr is a pseudo-terminal, as a trainer's, so the live view draws; with KEYBOARD its stdin
    is that terminal too (`Output.type` keys into it)."""
    if tty or keyboard:
        leader, follower = os.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "chaos", *args], cwd=REPO,
                                stdin=follower if keyboard else subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=follower)
        os.close(follower)
        return proc, Output(leader)
    proc = subprocess.Popen([sys.executable, "-m", "chaos", *args], cwd=REPO,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    assert proc.stderr is not None
    return proc, Output(proc.stderr.fileno())


REAP_SECONDS = 30
"""How long a SIGKILLed CLI has to be reaped."""


@contextmanager
def running_cli(*args: str, tty: bool = False,
                keyboard: bool = False) -> Iterator[tuple[subprocess.Popen[bytes], Output]]:
    """start_cli for the length of a with block: however the block ends, the process is
    SIGKILLed if it still runs and reaped within REAP_SECONDS, so no test leaves a drill
    running. The Output stays readable after the block (`finish` it there)."""
    proc, output = start_cli(*args, tty=tty, keyboard=keyboard)
    try:
        yield proc, output
    finally:
        proc.kill()  # nothing when it has exited and been reaped
        proc.wait(timeout=REAP_SECONDS)


@contextlib.contextmanager
def zombie() -> Iterator[int]:
    """The PID of a child that has exited and is not yet reaped (as a killed daemon whose
    parent reaps late), reaped on leaving."""
    child = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 30
        while (processes.stat_fields(child.pid) or ["Z"])[0] != "Z":
            assert time.monotonic() < deadline, "true did not exit within 30s"
            time.sleep(0.01)
        yield child.pid
    finally:
        child.wait(timeout=30)


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def has_finite_value(samples: list[Sample]) -> bool:
    """An instant query's result holds at least one number (not NaN, not ±Inf)."""
    return any(math.isfinite(sample.value) for sample in samples)


def has_finite_point(series: list[Series]) -> bool:
    """A range query's result holds at least one number: a graph would draw something."""
    return any(math.isfinite(value) for one in series for _, value in one.points)


def pids_with_argument(argument: str) -> list[int]:
    """Processes (not zombies) whose command line holds `argument` exactly."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            arguments = (proc / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if argument.encode() in arguments:
            found.append(int(proc.name))
    return found


def crowd_deployment(replicas: int, name: str = "crowd") -> dict[str, Any]:
    """A Deployment of sleeping pause containers in namespace demo, opted in to drills, that
    passes the namespace's restricted Pod Security policy, for benchmarks with many pods."""
    labels = {"app": name, "chaosdrill.dev/allow": "true"}
    container = {
        "name": "pause", "image": "chaosdrill.local/pause:1", "imagePullPolicy": "IfNotPresent",
        "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}, "limits": {"memory": "16Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    pod_spec = {
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 1,
        "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "demo", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def machine() -> dict[str, Any]:
    """What a benchmark ran on."""

    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines
                if line.startswith("model name")), platform.processor())
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "kernel": platform.release(),
            "python": platform.python_version(),
            "memory_total_gib": round(int(meminfo["MemTotal"].split()[0]) / 1024**2, 1),
            "kubernetes": f"v{resources.KUBERNETES_VERSION}", "etcd": f"v{resources.ETCD_VERSION}"}


@dataclass
class Figures:
    """What a benchmark session measured: one entry per benchmark, merged into a results file."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, name: str, unit: str, samples: Sequence[float], **extra: Any) -> None:
        self.entries[name] = {
            "unit": unit,
            "median": round(statistics.median(samples), 3),
            "min": round(min(samples), 3),
            "max": round(max(samples), 3),
            "samples": [round(s, 3) for s in samples],
            "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **extra,
        }

    def save(self, results: Path) -> None:
        """Merges these entries into RESULTS (keeping other benchmarks' last figures)."""
        if not self.entries:
            return
        old = json.loads(results.read_text()) if results.exists() else {}
        merged = {"machine": machine(),
                  "benchmarks": {**old.get("benchmarks", {}), **self.entries}}
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
        for name, entry in self.entries.items():
            print(f"\n{name}: median {entry['median']} {entry['unit']} "
                  f"(min {entry['min']}, max {entry['max']}, n {len(entry['samples'])})")
        print(f"written to {results}", flush=True)


@dataclass(frozen=True)
class Listener:
    """One listening socket: TCP in LISTEN, or a bound UDP socket with no peer."""

    protocol: str
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int


def _proc_net_address(text: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """Decodes /proc/net/tcp's "0100007F:1F90": 32-bit words in host (little-endian) order."""
    host, port = text.split(":")
    raw = b"".join(bytes.fromhex(host[i:i + 8])[::-1] for i in range(0, len(host), 8))
    return ipaddress.ip_address(raw), int(port, 16)


def listeners(pid: int) -> list[Listener]:
    """Every listening TCP and UDP socket (IPv4 and IPv6) PID holds open, seen in its own network
    namespace: /proc/PID/net/* entries whose inode is among /proc/PID/fd's sockets."""
    proc = Path("/proc", str(pid))
    inodes = set()
    for fd in (proc / "fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        for line in (proc / "net" / protocol).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            unconnected_udp = protocol.startswith("udp") and _proc_net_address(remote)[1] == 0
            if inode in inodes and (state == "0A" or unconnected_udp):
                address, port = _proc_net_address(local)
                found.append(Listener(protocol, address, port))
    return found


# -- kind: packets that leave the machine

@dataclass
class KindSession:
    """The kind cluster the tests of tests/kind share: its provider, the host's sysctls from
    before it, and how long its first bring-up took."""

    provider: KindCluster
    host_before: dict[str, str]
    up_seconds: float | None = None


LEAK_SOURCES = ("172.16.0.0/12", "10.250.0.0/15")
"""Docker's networks and the kind cluster's pods and Services."""
LEAK_COMMENT = "chaos-drill test: kind packets leaving"


def watch_leaks(action: str) -> None:
    """Adds (-I) or deletes (-D) counting rules in mangle POSTROUTING, which sees only packets
    that really leave by the default route, after every filter rule."""
    out = kind_host.default_interface()
    for source in LEAK_SOURCES:
        subprocess.run(["iptables", "-w", "-t", "mangle", action, "POSTROUTING", "-o", out,
                        "-s", source, "-m", "comment", "--comment", LEAK_COMMENT],
                       capture_output=True, timeout=30, check=action == "-I")


def leaked() -> int:
    listing = subprocess.run(["iptables", "-w", "-t", "mangle", "-L", "POSTROUTING", "-n", "-v",
                              "-x"], capture_output=True, text=True, timeout=30,
                             check=True).stdout
    return sum(int(line.split()[0]) for line in listing.splitlines() if LEAK_COMMENT in line)


# -- pods that settled, fresh pods

def ready_pods(pods: list[Any]) -> list[Any]:
    """The PODS Ready and not terminating."""
    return [p for p in pods if kube.pod_ready(p) and not p.metadata.deletion_timestamp]


def restarts(pod: Any) -> int:
    """How often POD's containers restarted (a crash loop's back-off grows with it)."""
    return sum(c.restart_count or 0 for c in (pod.status and pod.status.container_statuses) or [])


def settled(pods: list[Any], replicas: int, fresh: bool = False) -> bool:
    """Exactly REPLICAS pods, all Ready, none terminating; with FRESH none restarted either."""
    return len(pods) == replicas == len(ready_pods(pods)) and (
        not fresh or not any(restarts(p) for p in pods))


def vmstat_oom_kills() -> int:
    """The kernel's count of OOM kills since boot (/proc/vmstat), machine-wide: the drill's own
    count, from the kernel log, is checked against its rise."""
    for line in Path("/proc/vmstat").read_text().splitlines():
        name, _, value = line.partition(" ")
        if name == "oom_kill":
            return int(value)
    raise AssertionError("/proc/vmstat has no oom_kill count")


def stand_in_hog(access: node_access.NodeAccess, container: str
                 ) -> tuple[MemoryHog, subprocess.Popen[str]]:
    """A process started on ACCESS's node the hog's way (setsid, in CONTAINER's PID namespace)
    that holds no memory and would run for two minutes: a hog whose drill died before its
    container. Its PID and start time are as that node's /proc gives them."""
    main = memory_hog.task_pid(access.run(*access.ctr, "tasks", "ls"), container)
    script = ("pid=$(cut -d ' ' -f 4 /proc/self/stat)\n"
              "echo \"$pid $(cut -d ' ' -f 22 /proc/$pid/stat)\"\n"
              "exec sleep 120 > /dev/null")
    launcher = subprocess.Popen([*access.prefix, "nsenter", "--target", str(main), "--pid", "--",
                                 "setsid", "sh", "-c", script], stdout=subprocess.PIPE, text=True)
    reported = memory_hog.parse_report(memory_hog._first_line(launcher, 10))
    assert reported is not None
    return MemoryHog(access.node, reported[0], reported[1], container, 64 * 2**20), launcher


def assert_workshop_restored(api: Any, nodes: int) -> None:
    """Nothing a workshop's drills changed is left: no restore record, no load Job, all NODES
    Ready and schedulable (the drained one uncordoned, the stopped one started), web back at
    its 3 pods once the autoscaler took back what the surge added."""
    found = restore.find(api, "demo")
    assert found.leftovers == [] and found.unreadable == [], found
    jobs = client.BatchV1Api(api).list_namespaced_job("demo", label_selector=LOAD_LABEL).items
    assert [j.metadata.name for j in jobs if not j.metadata.deletion_timestamp] == []
    found_nodes = client.CoreV1Api(api).list_node().items
    assert len(found_nodes) == nodes and all(map(kube.node_ready, found_nodes)), found_nodes
    assert not [n.metadata.name for n in found_nodes if n.spec.unschedulable]
    wait_settled(api, 3, timeout=180)
    assert client.AppsV1Api(api).read_namespaced_deployment("web", "demo").spec.replicas == 3


def wait_addons_ready(api: Any, timeout: float = 120) -> None:
    """Until the local cluster's add-ons (CoreDNS, metrics-server) are ready: `cluster up` does
    not wait for them, and the tests start from a settled cluster. Fails naming what is not."""
    deadline = time.monotonic() + timeout
    while waiting := addons.not_ready(api):
        assert time.monotonic() < deadline, f"not ready after {timeout:.0f} s: {waiting}"
        time.sleep(0.2)


def wait_settled(api: Any, replicas: int, app: str = "web", timeout: float = 120,
                 fresh: bool = False) -> list[Any]:
    """The pods of demo's APP once settled (see settled); fails the test, naming each pod's
    state, after TIMEOUT seconds."""
    try:
        return kube.wait_for_pods(api, "demo", f"app={app}",
                                  lambda pods: settled(pods, replicas, fresh), timeout=timeout)
    except TimeoutError:
        pods = client.CoreV1Api(api).list_namespaced_pod(
            "demo", label_selector=f"app={app}", _request_timeout=30).items
        states = ", ".join(
            f"{p.metadata.name} ready={kube.pod_ready(p)} restarts={restarts(p)}"
            f"{' terminating' if p.metadata.deletion_timestamp else ''}" for p in pods)
        pytest.fail(f"demo's {app} not {replicas} {'fresh ' if fresh else ''}Ready pods in "
                    f"{timeout:.0f}s: {states or 'no pod'}")


def scale(api: Any, replicas: int, app: str = "web", timeout: float = 120) -> None:
    """Deployment demo/APP scaled to REPLICAS through the API, and settled."""
    client.AppsV1Api(api).patch_namespaced_deployment_scale(
        app, "demo", {"spec": {"replicas": replicas}}, _request_timeout=30)
    wait_settled(api, replicas, app, timeout)


SAMPLE_APPS = ("web", "api")
"""The sample workload's Deployments in demo (manifests/workloads/), each labelled app=NAME."""


def replace_worn_pods(api: Any, app: str) -> list[str]:
    """Deletes, with no grace, every pod of demo's APP that restarted or is not Ready (and is not
    already going): its Deployment makes a fresh one, with no restart count and so no crash-loop
    back-off carried over from an earlier test. The names deleted; one list call when none."""
    core = client.CoreV1Api(api)
    pods = core.list_namespaced_pod("demo", label_selector=f"app={app}",
                                    _request_timeout=30).items
    worn = [p.metadata.name for p in pods if not p.metadata.deletion_timestamp
            and (restarts(p) or not kube.pod_ready(p))]
    for name in worn:
        try:
            core.delete_namespaced_pod(name, "demo", grace_period_seconds=0, _request_timeout=30)
        except client.ApiException as error:
            if error.status != 404:
                raise
    return worn


def fresh_sample_workload(provider: ClusterProvider, say: Callable[[str], None],
                          timeout: float = 120) -> Any:
    """The sample workload applied afresh and settled at its manifests' replicas, every pod Ready,
    none terminating and none restarted: pods an earlier test left restarting or unready are
    replaced first (a crash-looping pod would also hold the deploy's wait). An API client."""
    api = kube.api_client(provider.kubeconfig())
    worn = [name for app in SAMPLE_APPS for name in replace_worn_pods(api, app)]
    if worn:
        say(f"replaced pods that restarted or were not Ready: {', '.join(worn)}")
    workloads.deploy(provider, say, timeout=timeout)
    apps = client.AppsV1Api(api)
    for app in SAMPLE_APPS:
        if replace_worn_pods(api, app):  # a pod that crashed while the deploy waited
            say(f"replaced {app} pods that restarted during the deploy")
        replicas = apps.read_namespaced_deployment(app, "demo", _request_timeout=30).spec.replicas
        wait_settled(api, replicas, app, timeout, fresh=True)
    return api


# -- rules of the network faults (chaos.drill.partition) in pods' namespaces

def in_every_net_namespace(*command: str) -> dict[int, str]:
    """COMMAND's output in every network namespace on this machine, by the PID entered: any
    process of it, the next when one is gone before nsenter opens it (a CGI child, say)."""
    namespaces: dict[str, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                namespaces.setdefault(os.readlink(entry / "ns" / "net"), []).append(
                    int(entry.name))
            except OSError:
                continue
    found = {}
    for pids in namespaces.values():
        for pid in sorted(pids):
            done = subprocess.run(["nsenter", "-t", str(pid), "-n", *command],
                                  capture_output=True, text=True, timeout=30)
            if not done.stderr.startswith("nsenter:"):
                found[pid] = done.stdout
                break
    return found


def rules_of_ours() -> dict[int, list[str]]:
    """Every network namespace on this machine (one PID in each) holding a rule of ours, with
    those rules as `iptables -S` lists them."""
    listed = in_every_net_namespace("iptables", "-w", "5", "-S")
    return {pid: ours for pid, text in listed.items() if (ours := partition.ours(text))}


def rules_by_address() -> dict[str, list[str]]:
    """As rules_of_ours, keyed by each namespace's IPv4 address on eth0, read in the same entry
    into it (so the process entered may be gone by then)."""
    found = {}
    listed = in_every_net_namespace("sh", "-c", "iptables -w 5 -S; echo ---; "
                                    "ip -4 -o addr show eth0")
    for text in listed.values():
        rules, _, address = text.partition("---\n")
        ours = partition.ours(rules)
        if ours:
            words = address.split()
            found[words[3].split("/")[0] if len(words) > 3 else "no eth0"] = ours
    return found


class StandInNamespace:
    """A pod's network namespace as chaos.drill.partition sees it, on this host with a stand-in
    `iptables` (first on PATH, in FOLDER) that records its arguments, one call a line, prints
    LISTING for -S and fails, with a line on stderr, for the arguments in FAIL. Batches (`sh
    -c`) run for real."""

    def __init__(self, folder: Path, listing: str = "", fail: str = "") -> None:
        self.folder, self.log = folder, folder / "calls"
        (folder / "listing").write_text(listing)
        stand_in = folder / "iptables"
        stand_in.write_text(
            "#!/bin/sh\n"
            f'echo "$*" >> {self.log}\n'
            f'case "$*" in *" -S") cat {folder / "listing"};; '
            f'{shlex.quote(fail) if fail else "__none__"}) echo "iptables: $4 says no" >&2; '
            "exit 1;; esac\n")
        stand_in.chmod(0o755)

    def __call__(self, command: Sequence[str]) -> str:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30,
                              env={**os.environ, "PATH": f"{self.folder}:{os.environ['PATH']}"})
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip())
        return done.stdout

    def calls(self) -> list[str]:
        """The stand-in's calls, without `iptables -w 5`."""
        text = self.log.read_text() if self.log.exists() else ""
        return [line.split(" ", 2)[2] for line in text.splitlines()]


def marked_pods(api: Any) -> list[str]:
    """demo's web pods carrying a restore record."""
    pods = client.CoreV1Api(api).list_namespaced_pod("demo", label_selector="app=web").items
    return [p.metadata.name for p in pods if restore.ANNOTATION in (p.metadata.annotations or {})]


# -- the journal of a running drill

def wait_for_record(journal: Path, found: Callable[[JournalRecord], bool],
                    timeout: float) -> JournalRecord:
    """The first record of the JOURNAL a running drill writes for which FOUND(record) holds;
    fails the test, with the last records, after TIMEOUT seconds. Polls every 20 ms, so a signal
    sent next lands within a few ms of the record."""
    deadline = time.monotonic() + timeout
    records: list[JournalRecord] = []
    while time.monotonic() < deadline:
        records = read_journal(journal) if journal.exists() else []
        match = next((r for r in records if found(r)), None)
        if match is not None:
            return match
        time.sleep(0.02)  # the poll period of a file another process appends to
    pytest.fail(f"no such record in {journal} within {timeout}s; last records:\n"
                + "\n".join(f"{r.event} {dict(r.fields)}" for r in records[-10:]))


def thread_count() -> int:
    """This process's threads, as the kernel counts them."""
    return len(os.listdir("/proc/self/task"))


@dataclass
class IdleCrowd:
    """How COUNT connections that never sent a byte fared: the most threads this process had
    while they were open, and how the server ended each one."""

    peak_threads: int
    turned_away: list[float] = field(default_factory=list)
    """Seconds from connecting to the end, for those answered 503."""
    held: list[float] = field(default_factory=list)
    """Seconds from connecting to the end, for those closed without an answer."""
    still_open: int = 0


def idle_crowd(host: str, port: int, count: int, held_now: Callable[[], int],
               timeout: float) -> IdleCrowd:
    """Opens COUNT connections to HOST:PORT that send nothing and waits, at most TIMEOUT seconds
    in all, until the server has closed every one (end of stream or reset). HELD_NOW says how many
    the server holds open: the connections go in batches, each once the server has taken the
    last, as many clients would (one process alone outruns the accepting thread and overflows
    the kernel's queue, which then delays them by a SYN retransmission)."""
    deadline = time.monotonic() + timeout
    crowd = IdleCrowd(peak_threads=thread_count())
    opened: dict[socket.socket, tuple[float, bytearray]] = {}
    selector = selectors.DefaultSelector()

    def read(wait: float) -> None:
        crowd.peak_threads = max(crowd.peak_threads, thread_count())
        for key, _ in selector.select(wait):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            started, data = opened[sock]
            try:
                chunk = sock.recv(4096)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                chunk = b""
            data += chunk
            if not chunk:
                ended = time.monotonic() - started
                (crowd.turned_away if data.startswith(b"HTTP/1.1 503") else crowd.held).append(
                    ended)
                selector.unregister(sock)
                sock.close()
                del opened[sock]

    def taken() -> bool:
        """Every connection so far is held by the server, or answered."""
        answered = sum(1 for _, data in opened.values() if data)
        return held_now() + answered >= len(opened)

    try:
        for number in range(count):
            sock = socket.create_connection((host, port), timeout=5)
            sock.setblocking(False)
            opened[sock] = (time.monotonic(), bytearray())
            selector.register(sock, selectors.EVENT_READ)
            if number % 100 == 99:
                read(0)
                while not taken() and time.monotonic() < deadline:
                    read(0.01)
        while opened and time.monotonic() < deadline:
            read(0.05)
        crowd.still_open = len(opened)
        return crowd
    finally:
        for sock in opened:
            sock.close()
        selector.close()


# -- a real registry: Debian's docker-registry (CNCF Distribution) with its own config file,
# serving TLS from a CA made here on one local address, started and stopped by its PID; its
# temporary folder (CA, storage, log) is removed afterwards

REGISTRY_BINARY = "/usr/bin/docker-registry"
REGISTRY_START_TIMEOUT = 20.0
REGISTRY_STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Registry:
    host: str
    """HOST:PORT, what image names start with."""
    ca: Path
    log: Path
    pid: int

    def pulled_manifests(self) -> list[str]:
        """The request URIs of every manifest GET the registry logged (its access log)."""
        uris = []
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                uri = entry.get("http.request.uri", "")
                if entry.get("http.request.method") == "GET" and "/manifests/" in uri:
                    uris.append(uri)
        return uris


def free_port_on(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash for htpasswd, from Python's crypt (deprecated, so in a child process)."""
    code = ("import crypt, sys; print(crypt.crypt(sys.argv[1], "
            "crypt.mksalt(crypt.METHOD_BLOWFISH)))")
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code, password],
                            capture_output=True, text=True, timeout=30, check=True)
    return result.stdout.strip()


def write_registry_config(folder: Path, address: str, port: int, users: dict[str, str]) -> Path:
    pki_dir = pki.private_dir(folder / "pki")
    pki.make_ca(pki_dir, "chaos-drill-test-registry-ca")
    pki.issue(pki_dir, pki.CertRequest("registry", "registry", ip_addresses=(address,),
                                       server=True, client=False))
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "json", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(folder / "storage")}},
        "http": {"addr": f"{address}:{port}", "secret": os.urandom(16).hex(),
                 "tls": {"certificate": str(pki_dir / "registry.crt"),
                         "key": str(pki_dir / "registry.key")}},
    }
    if users:
        htpasswd = folder / "htpasswd"
        htpasswd.write_text("".join(f"{user}:{bcrypt_hash(secret)}\n"
                                    for user, secret in users.items()))
        config["auth"] = {"htpasswd": {"realm": "chaos-drill-test", "path": str(htpasswd)}}
    path = folder / "config.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def wait_registry_listening(address: str, port: int, process: subprocess.Popen[bytes],
                            log: Path) -> None:
    deadline = time.monotonic() + REGISTRY_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"docker-registry not listening on {address}:{port} in "
                       f"{REGISTRY_START_TIMEOUT}s")


def stop_registry(process: subprocess.Popen[bytes]) -> None:
    """Stops the registry by its PID: SIGTERM, then SIGKILL after REGISTRY_STOP_TIMEOUT."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=REGISTRY_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=REGISTRY_STOP_TIMEOUT)


@contextmanager
def running_registry(address: str, users: dict[str, str] | None = None) -> Iterator[Registry]:
    """A registry serving HTTPS on ADDRESS (a free port), with htpasswd USERS if given."""
    if not Path(REGISTRY_BINARY).exists():
        pytest.fail(f"{REGISTRY_BINARY} not found: run 'make setup' (installs Debian's "
                    "docker-registry)")
    folder = Path(tempfile.mkdtemp(prefix="chaos-drill-registry-"))
    try:
        port = free_port_on(address)
        config = write_registry_config(folder, address, port, users or {})
        log = folder / "registry.log"
        with log.open("wb") as sink:
            process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], stdout=sink,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_registry_listening(address, port, process, log)
            yield Registry(f"{address}:{port}", folder / "pki" / "ca.crt", log, process.pid)
        finally:
            stop_registry(process)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def pushed(registry: Registry, *env_extra: tuple[str, str]) -> dict[str, str]:
    """`images push` into REGISTRY; the manifest digest of each image it pushed, by name."""
    env = {**os.environ, **dict(env_extra)}
    result = cli("images", "push", registry.host, "--ca-file", str(registry.ca), env=env)
    assert result.returncode == 0, result.stderr
    digests = {}
    for line in result.stderr.splitlines():
        if ": pushed " in line and " manifest " in line:
            target = line.split(": pushed ", 1)[1].split(":")[1].split("/")[-1]
            digests[target] = line.rsplit(" manifest ", 1)[1]
    assert set(digests) == {"web", "operator", "prometheus"}, result.stderr
    return digests


def live_pods(api: Any, namespace: str, selector: str) -> list[Any]:
    """The pods of NAMESPACE with SELECTOR that are not being deleted."""
    return [pod for pod in client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=selector, _request_timeout=30).items
        if pod.metadata.deletion_timestamp is None]


def assert_pulled(pod: Any, image: str, registry: Registry, digests: dict[str, str]) -> None:
    """POD runs IMAGE (web:1, operator:TAG...) pulled from REGISTRY: its name, its policy, and
    the runtime's imageID, which is the digest `images push` reported (DIGESTS); and it is
    Ready. The registry's own log shows a node fetched that manifest by that digest."""
    host, (name, _, tag) = registry.host, image.partition(":")
    container, status = pod.spec.containers[0], pod.status.container_statuses[0]
    assert container.image == f"{host}/{name}:{tag}"
    assert container.image_pull_policy == "Always"
    assert status.image_id == f"{host}/{name}@{digests[name]}", status.image_id
    assert status.ready, pod.metadata.name
    assert f"/v2/{name}/manifests/{digests[name]}" in registry.pulled_manifests()


def wait_node_ready(api: Any, node: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if kube.node_ready(client.CoreV1Api(api).read_node(node, _request_timeout=10)):
            return
        time.sleep(0.5)
    pytest.fail(f"node {node} not Ready within {timeout:.0f}s")


def kind_down(say: Callable[[str], None]) -> None:
    """Takes the kind cluster down, if one runs here, so the local one may run."""
    from chaos.cluster import kind

    if kind.running_here():
        kind.KindCluster().down(say)


def one_step_plan(name: str, probe: dict[str, Any] | None) -> dict[str, Any]:
    """A workshop plan of one step: a pod_delete drill NAME on demo/web, with PROBE if given."""
    spec: dict[str, Any] = {"target": {"kind": "Deployment", "name": "web"},
                            "fault": {"type": "pod_delete", "gracePeriodSeconds": 0},
                            "rounds": 1, "seed": 7, "slo": {"maxRecoverySeconds": 120}}
    if probe is not None:
        spec["probe"] = probe
    return {"title": "One step", "steps": [{
        "title": "A pod is deleted", "explain": "One of web's pods goes; its ReplicaSet "
        "replaces it.", "watch": "A new tile turns green.",
        "drill": {"apiVersion": "chaosdrill.dev/v1alpha1", "kind": "ChaosDrill",
                  "metadata": {"name": name, "namespace": "demo"}, "spec": spec}}]}


def run_one_step_on_enter(proc: subprocess.Popen[bytes], output: Output, folder: Path,
                          timeout: float) -> str:
    """Drives a workshop of one_step_plan with Enter alone: nothing in FOLDER (the step's
    results) before the first Enter, then the step PASSED, the summary, the end, exit 0. The
    line of the step's result."""
    output.wait_for("step 1/1: A pod is deleted (waiting)", timeout=timeout)
    assert not folder.exists(), "the step ran before Enter"
    output.type("\n")
    said = output.wait_for("chaos-drill: step 1: PASSED; recovery ", timeout=180)
    output.type("\n")
    output.wait_for("summary shown; Enter", timeout=30)
    output.type("\n")
    code = proc.wait(timeout=60)
    log = output.finish(30)
    assert code == 0, log
    assert "1. A pod is deleted: PASSED; recovery " in log, log
    assert json.loads((folder / "summary.json").read_text())["passed"] is True
    return said
