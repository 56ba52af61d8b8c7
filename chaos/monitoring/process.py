"""A real Prometheus on loopback for drills run from this machine: started, recorded and stopped
through chaos/cluster/processes.py, scraping the drills' exporter (chaos/monitoring/metrics.py)."""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chaos.cluster import processes
from chaos.cluster.processes import Process
from chaos.errors import SetupError
from chaos.monitoring import MONITORING_DIR
from chaos.monitoring.metrics_server import DEFAULT_METRICS_PORT
from chaos.monitoring.query import api_get
from chaos.resources import cache_dir

LOOPBACK = "127.0.0.1"
DEFAULT_PROMETHEUS_PORT = 9090
RECORD_FILE = "prometheus.json"
"""The started process (PID, start time, command), as chaos/cluster/processes.py records it."""
LOG_FILE = "prometheus.log"


@dataclass(frozen=True)
class PrometheusProcess:
    """A Prometheus started by `start_prometheus`; state_dir/prometheus.json records it."""

    process: Process
    url: str
    state_dir: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.state_dir / LOG_FILE

    def stop(self) -> None:
        stop_prometheus(self.state_dir)


def default_state_dir() -> Path:
    """Where `chaos-drill monitor` keeps Prometheus's config, data, log and PID."""
    if os.geteuid() == 0:
        return Path("/var/lib/chaos-drill/monitor")
    return cache_dir() / "monitor"


def recorded(state_dir: Path) -> Process | None:
    """The Prometheus state_dir records, if that process still runs."""
    found = processes.load(state_dir / RECORD_FILE)
    return found[0] if found and processes.is_alive(found[0]) else None


def start_prometheus(
    state_dir: Path,
    port: int = DEFAULT_PROMETHEUS_PORT,
    exporter_port: int = DEFAULT_METRICS_PORT,
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
    running = recorded(state_dir)
    if running is not None:
        raise SetupError(f"prometheus is already running from {state_dir} (pid {running.pid}): "
                         "stop it first with 'chaos-drill monitor down'")
    processes.ensure_port_free(port, LOOPBACK, _port_taken(port))
    config = write_config(state_dir, exporter_port)
    process = processes.start("prometheus", _command(binary_path, config, state_dir, port),
                              state_dir / LOG_FILE)
    processes.save(state_dir / RECORD_FILE, [process])
    url = f"http://{LOOPBACK}:{port}"
    try:
        _wait(process, lambda: _is_ready(url), "become ready", port, state_dir, ready_timeout)
        target = f"{LOOPBACK}:{exporter_port}"
        _wait(process, lambda: _scrapes(url, target), f"pick up the target {target}", port,
              state_dir, ready_timeout)
    except BaseException:
        stop_prometheus(state_dir)
        raise
    return PrometheusProcess(process=process, url=url, state_dir=state_dir)


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


def stop_prometheus(state_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the Prometheus state_dir records (SIGTERM, wait, SIGKILL) and forget it.

    Returns False if none was running. A PID that is no longer that process (it exited, the PID
    was reused) is never signalled: the record carries the process's start time.
    """
    state_dir = state_dir.resolve()
    running = recorded(state_dir)
    if running is not None:
        try:
            processes.stop(running, timeout)
        except PermissionError:
            raise SetupError(f"not allowed to stop prometheus (pid {running.pid}): run as its "
                             "owner") from None
        if processes.is_alive(running):
            raise SetupError(f"prometheus (pid {running.pid}) survived SIGKILL: check "
                             f"'ps -p {running.pid}'")
    (state_dir / RECORD_FILE).unlink(missing_ok=True)
    return running is not None


def _command(binary: str, config: Path, state_dir: Path, port: int) -> list[str]:
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={state_dir / 'data'}",
        "--storage.tsdb.retention.time=2d",
        f"--web.listen-address={LOOPBACK}:{port}",
    ]


def _port_taken(port: int) -> str:
    return f"port {port} is already in use on {LOOPBACK}: pick another with --port"


def _wait(process: Process, done: Callable[[], bool], what: str, port: int, state_dir: Path,
          timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = processes.exit_code(process)
        if code is not None:
            raise _exit_error(code, port, state_dir)
        if done():
            return
        time.sleep(0.1)
    raise SetupError(f"prometheus did not {what} within {timeout:g}s: see {state_dir / LOG_FILE}")


def _is_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _scrapes(url: str, target: str) -> bool:
    """Prometheus hands discovered targets to its scrapers at most every 5 s; waiting for ours
    means a drill started right after is scraped from its first second."""
    try:
        active = api_get(url, "targets", {"state": "active"}, timeout=2)["activeTargets"]
    except (SetupError, ValueError, KeyError):
        return False
    return any(item.get("labels", {}).get("instance") == target for item in active)


def _exit_error(code: int, port: int, state_dir: Path) -> SetupError:
    log_path = state_dir / LOG_FILE
    lines = log_path.read_text(errors="replace").strip().splitlines() or ["(no output)"]
    if any("address already in use" in line for line in lines[-5:]):
        return SetupError(_port_taken(port))
    return SetupError(f"prometheus exited with code {code}: {lines[-1]} (full log: {log_path})")
