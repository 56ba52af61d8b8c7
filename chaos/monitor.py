"""The monitoring stack: a real Prometheus on loopback for local drills, queries against it,
the dashboards' queries as Prometheus runs them, and the generated Kubernetes ConfigMaps that ship
manifests/monitoring/ and dashboards/ to a cluster.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chaos.cluster.layout import cache_dir
from chaos.errors import SetupError

REPO_ROOT = Path(__file__).resolve().parent.parent
MONITORING_DIR = REPO_ROOT / "manifests" / "monitoring"
DASHBOARDS_DIR = REPO_ROOT / "dashboards"
MONITORING_NAMESPACE = "chaos-drill-monitoring"
LOOPBACK = "127.0.0.1"
DEFAULT_PROMETHEUS_PORT = 9090
DEFAULT_EXPORTER_PORT = 9464
PID_FILE = "prometheus.pid"
LOG_FILE = "prometheus.log"
# What Grafana puts in place of its variables for "All" over a short drill; a drill's events are
# seconds apart, so a one-minute rate window keeps each of them visible in the rates.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "${datasource}": "prometheus",
    "$namespace": ".*",
    "$workload": ".*",
}
_METRIC_NAME = re.compile(r"\bchaosdrill[_:][a-z0-9_:]*[a-z0-9_]")
_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")

# Prometheus processes this Python process started, so stopping one also reaps it.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class PrometheusProcess:
    """A Prometheus started by `start_prometheus`; its PID is also in state_dir/prometheus.pid."""

    pid: int
    url: str
    state_dir: Path

    @property
    def log_path(self) -> Path:
        return self.state_dir / LOG_FILE

    def stop(self) -> None:
        stop_prometheus(self.state_dir)


@dataclass(frozen=True)
class Sample:
    """One element of an instant query's result."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range query's result: (unix time, value) points, oldest first."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class PanelQuery:
    """One query of a dashboard as written, with Grafana's variables still in it."""

    panel: str
    expr: str
    legend: str
    instant: bool


def default_state_dir() -> Path:
    """Where `chaos-drill monitor` keeps Prometheus's config, data, log and PID."""
    if os.geteuid() == 0:
        return Path("/var/lib/chaos-drill/monitor")
    return cache_dir() / "monitor"


def start_prometheus(
    state_dir: Path,
    port: int = DEFAULT_PROMETHEUS_PORT,
    exporter_port: int = DEFAULT_EXPORTER_PORT,
    *,
    binary: str = "prometheus",
    ready_timeout: float = 30.0,
) -> PrometheusProcess:
    """Start Prometheus on 127.0.0.1:port scraping the exporter; return once it is ready."""
    binary_path = shutil.which(binary)
    if binary_path is None:
        raise SetupError("prometheus not found: run 'make setup' (installs Debian's prometheus)")
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    _refuse_if_running(state_dir)
    _ensure_port_free(port)
    config = write_config(state_dir, exporter_port)
    popen = _launch(binary_path, config, state_dir, port)
    url = f"http://{LOOPBACK}:{port}"
    try:
        _wait_ready(popen, url, port, state_dir, ready_timeout)
        _wait_for_target(popen, url, exporter_port, port, state_dir, ready_timeout)
    except BaseException:
        stop_prometheus(state_dir)
        raise
    return PrometheusProcess(pid=popen.pid, url=url, state_dir=state_dir)


def write_config(state_dir: Path, exporter_port: int) -> Path:
    """Copy prometheus.yml and rules.yml into state_dir and point targets.json at the exporter."""
    shutil.copyfile(MONITORING_DIR / "rules.yml", state_dir / "rules.yml")
    config = state_dir / "prometheus.yml"
    shutil.copyfile(MONITORING_DIR / "prometheus.yml", config)
    write_targets(state_dir, exporter_port)
    return config


def write_targets(state_dir: Path, exporter_port: int) -> None:
    """Point a running or future Prometheus at another exporter port; it rereads the file."""
    targets = [{"targets": [f"{LOOPBACK}:{exporter_port}"], "labels": {}}]
    staging = state_dir / "targets.json.tmp"
    staging.write_text(json.dumps(targets, indent=2) + "\n")
    staging.replace(state_dir / "targets.json")


def _data_dir(state_dir: Path) -> Path:
    return state_dir / "data"


def _launch(binary: str, config: Path, state_dir: Path, port: int) -> subprocess.Popen[bytes]:
    command = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={_data_dir(state_dir)}",
        "--storage.tsdb.retention.time=2d",
        f"--web.listen-address={LOOPBACK}:{port}",
    ]
    with open(state_dir / LOG_FILE, "ab") as log:
        popen = subprocess.Popen(
            command,
            cwd=state_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C on the terminal must not kill it before we do
        )
    _CHILDREN[popen.pid] = popen
    (state_dir / PID_FILE).write_text(f"{popen.pid}\n")
    return popen


def _refuse_if_running(state_dir: Path) -> None:
    pid = _read_pid(state_dir)
    if pid is not None and _is_our_prometheus(pid, state_dir):
        raise SetupError(
            f"prometheus is already running from {state_dir} (pid {pid}): stop it first "
            "with 'chaos-drill monitor down'"
        )


def _ensure_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Prometheus does
        try:
            probe.bind((LOOPBACK, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise _port_taken(port) from None
            raise SetupError(f"cannot listen on {LOOPBACK}:{port}: {error.strerror}") from None


def _port_taken(port: int) -> SetupError:
    return SetupError(
        f"port {port} is already in use on {LOOPBACK}: pick another with --port"
    )


def _wait_ready(
    popen: subprocess.Popen[bytes], url: str, port: int, state_dir: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise _exit_error(popen.returncode, port, state_dir)
        if _is_ready(url):
            return
        time.sleep(0.1)
    raise SetupError(
        f"prometheus did not become ready within {timeout:g}s: see {state_dir / LOG_FILE}"
    )


def _wait_for_target(
    popen: subprocess.Popen[bytes],
    url: str,
    exporter_port: int,
    port: int,
    state_dir: Path,
    timeout: float,
) -> None:
    """Prometheus hands discovered targets to its scrapers at most every 5 s; wait for ours,
    so a drill started right after this is scraped from its first second."""
    target = f"{LOOPBACK}:{exporter_port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise _exit_error(popen.returncode, port, state_dir)
        try:
            active = _api(url, "targets", {"state": "active"}, timeout=2)["activeTargets"]
        except (SetupError, ValueError, KeyError):
            active = []
        if any(item.get("labels", {}).get("instance") == target for item in active):
            return
        time.sleep(0.1)
    raise SetupError(
        f"prometheus did not pick up the target {target} within {timeout:g}s: "
        f"see {state_dir / LOG_FILE}"
    )


def _is_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _exit_error(returncode: int, port: int, state_dir: Path) -> SetupError:
    log_path = state_dir / LOG_FILE
    lines = log_path.read_text(errors="replace").strip().splitlines() or ["(no output)"]
    if any("address already in use" in line for line in lines[-5:]):
        return _port_taken(port)
    return SetupError(
        f"prometheus exited with code {returncode}: {lines[-1]} (full log: {log_path})"
    )


def stop_prometheus(state_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the Prometheus whose PID state_dir records: SIGTERM, wait, then SIGKILL.

    Returns False if none was running. A PID that no longer belongs to this state_dir's
    Prometheus (a stale file, a reused PID) is never signalled.
    """
    state_dir = state_dir.resolve()
    pid = _read_pid(state_dir)
    if pid is None:
        return False
    child = _CHILDREN.pop(pid, None)
    stopped = False
    if child is not None:
        stopped = _stop_child(child, timeout)
    elif _is_our_prometheus(pid, state_dir):
        _stop_pid(pid, state_dir, timeout)
        stopped = True
    (state_dir / PID_FILE).unlink(missing_ok=True)
    return stopped


def _read_pid(state_dir: Path) -> int | None:
    try:
        return int((state_dir / PID_FILE).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _is_our_prometheus(pid: int, state_dir: Path) -> bool:
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return f"--storage.tsdb.path={_data_dir(state_dir)}".encode() in arguments


def _stop_child(child: subprocess.Popen[bytes], timeout: float) -> bool:
    if child.poll() is not None:
        return False
    child.terminate()
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    return True


def _stop_pid(pid: int, state_dir: Path, timeout: float) -> None:
    for sig, wait_seconds in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            raise SetupError(
                f"not allowed to stop prometheus (pid {pid}): run as its owner"
            ) from None
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if not _is_our_prometheus(pid, state_dir):
                return
            time.sleep(0.1)
    raise SetupError(f"prometheus (pid {pid}) survived SIGKILL: check 'ps -p {pid}'")


def query(url: str, promql: str, at: float | None = None, timeout: float = 5.0) -> list[Sample]:
    """Run an instant query (now, or at unix time `at`); a scalar is one unlabelled sample."""
    params = {"query": promql} if at is None else {"query": promql, "time": f"{at:.3f}"}
    return _samples(_api(url, "query", params, timeout))


def query_range(
    url: str, promql: str, start: float, end: float, step: float, timeout: float = 10.0
) -> list[Series]:
    """Run a range query over [start, end] (unix times) every `step` seconds, as a graph does."""
    params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
    data = _api(url, "query_range", params, timeout)
    if data["resultType"] != "matrix":
        raise ValueError(f"expected a range vector, got a {data['resultType']}")
    return [
        Series(
            labels=item["metric"],
            points=tuple((float(when), float(value)) for when, value in item["values"]),
        )
        for item in data["result"]
    ]


def wait_for(
    url: str,
    promql: str,
    done: Callable[[list[Sample]], bool],
    timeout: float = 60.0,
) -> list[Sample]:
    """Poll an instant query until `done` accepts its result; TimeoutError with the last one."""
    deadline = time.monotonic() + timeout
    samples = query(url, promql)
    while not done(samples):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{promql} still gives {samples} after {timeout:g}s")
        time.sleep(0.25)
        samples = query(url, promql)
    return samples


def _api(url: str, endpoint: str, params: Mapping[str, str], timeout: float) -> dict[str, Any]:
    address = f"{url.rstrip('/')}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(address, timeout=timeout) as response:
            body: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            detail = _error_detail(error.read())
        asked = params.get("query", endpoint)
        raise ValueError(f"prometheus rejected {asked!r}: {detail}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise SetupError(f"prometheus not reachable at {url}: {reason}") from None
    data: dict[str, Any] = body["data"]
    return data


def _error_detail(payload: bytes) -> str:
    try:
        return str(json.loads(payload)["error"])
    except (ValueError, KeyError, TypeError):
        return payload.decode(errors="replace").strip()


def _samples(data: Mapping[str, Any]) -> list[Sample]:
    kind, result = data["resultType"], data["result"]
    if kind == "scalar":
        return [Sample(labels={}, value=float(result[1]))]
    if kind == "vector":
        return [Sample(labels=item["metric"], value=float(item["value"][1])) for item in result]
    raise ValueError(f"expected an instant vector or scalar, got a {kind}")


def _configmap(name: str, data: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": MONITORING_NAMESPACE,
            "labels": {"app.kubernetes.io/part-of": "chaos-drill"},
        },
        "data": dict(data),
    }


def dashboard_files() -> list[Path]:
    """The Grafana dashboards, one JSON file each: the single source of truth."""
    return sorted(DASHBOARDS_DIR.glob("*.json"))


def load_dashboard(name: str) -> dict[str, Any]:
    """A dashboard of dashboards/ by file stem, for example "chaosdrill-overview"."""
    dashboard: dict[str, Any] = json.loads((DASHBOARDS_DIR / f"{name}.json").read_text())
    return dashboard


def panel_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    """Every panel target of a dashboard, collapsed rows included, then its annotations."""
    panels = list(dashboard.get("panels", []))
    panels += [inner for panel in panels for inner in panel.get("panels", [])]  # collapsed rows
    found = [
        PanelQuery(
            panel=panel["title"],
            expr=target["expr"],
            legend=target.get("legendFormat", ""),
            instant=bool(target.get("instant", False)),
        )
        for panel in panels
        for target in panel.get("targets", [])
        if target.get("expr")
    ]
    found += [
        PanelQuery(panel=f"annotation {item.get('name', '')}", expr=item["expr"], legend="",
                   instant=False)
        for item in dashboard.get("annotations", {}).get("list", [])
        if item.get("expr")
    ]
    return found


def dashboard_queries(dashboard: Mapping[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard: its panels' targets, then its annotations."""
    return [found.expr for found in panel_queries(dashboard)]


def variable_queries(dashboard: Mapping[str, Any]) -> list[str]:
    """The PromQL behind each `label_values(selector, label)` template variable."""
    found = []
    for variable in dashboard.get("templating", {}).get("list", []):
        match = _LABEL_VALUES.match(variable.get("definition", ""))
        if match:
            found.append(f"group by ({match['label']}) ({match['selector']})")
    return found


def grafana_to_promql(expr: str, variables: Mapping[str, str] = GRAFANA_VARIABLES) -> str:
    """Put values in place of Grafana's variables; a variable left over is an error."""
    for variable, value in variables.items():
        expr = expr.replace(variable, value)
    if "$" in expr:
        raise ValueError(f"unsubstituted variable in {expr}")
    return expr


def metric_names(expr: str) -> set[str]:
    """The chaosdrill_ metrics and chaosdrill: recorded series a PromQL expression names."""
    return set(_METRIC_NAME.findall(expr))


def format_legend(legend: str, labels: Mapping[str, str]) -> str:
    """Grafana's legend format: `{{label}}` becomes that label's value."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m[1], ""), legend)


def dashboard_configmap() -> dict[str, Any]:
    """The grafana-dashboards ConfigMap, built from dashboards/*.json."""
    files = dashboard_files()
    return _configmap("grafana-dashboards", {path.name: path.read_text() for path in files})


def prometheus_configmap() -> dict[str, Any]:
    """The prometheus-config ConfigMap: the in-cluster config and the shared rules."""
    return _configmap(
        "prometheus-config",
        {
            "prometheus.yml": (MONITORING_DIR / "prometheus-k8s.yml").read_text(),
            "rules.yml": (MONITORING_DIR / "rules.yml").read_text(),
        },
    )


def k8s_manifests() -> list[dict[str, Any]]:
    """Every object of the in-cluster monitoring stack, namespace first, ready to apply."""
    static: list[dict[str, Any]] = []
    for path in sorted((MONITORING_DIR / "k8s").glob("*.yaml")):
        static.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    static.sort(key=lambda obj: obj["kind"] != "Namespace")
    return [*static, prometheus_configmap(), dashboard_configmap()]


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (configs, dashboards) as readable `|` blocks."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BlockDumper.add_representer(str, _represent_str)


def render_k8s_manifests() -> str:
    """The monitoring stack as one multi-document YAML stream, for `kubectl apply -f -`."""
    return yaml.dump_all(k8s_manifests(), Dumper=_BlockDumper, sort_keys=False)


def main(argv: Sequence[str]) -> int:
    """`python -m chaos.monitor k8s | kubectl apply -f -` deploys the in-cluster stack."""
    if list(argv) != ["k8s"]:
        print("usage: python -m chaos.monitor k8s | kubectl apply -f -", file=sys.stderr)
        return 2
    sys.stdout.write(render_k8s_manifests())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
