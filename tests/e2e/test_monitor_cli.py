"""`chaos-drill monitor up|down` with a real Prometheus on loopback: it starts, scrapes the port
it was given and stops; bad input gets one line on stderr, exit code 2, and nothing left running.
No cluster needed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.cluster import processes
from chaos.monitoring.process import RECORD_FILE

from support import REPO, free_port, needs_prometheus, one_error, pids_with_argument

pytestmark = [pytest.mark.e2e, needs_prometheus]

NOT_A_PORT = "is not a TCP port: pick one from 1 to 65535"


def monitor(
    state_dir: Path, *args: str, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "chaos", "monitor", *args, "--state-dir", str(state_dir)],
        capture_output=True, text=True, timeout=60, cwd=REPO, env=env, check=False,
    )


def running_from(state_dir: Path) -> list[int]:
    return pids_with_argument(f"--storage.tsdb.path={state_dir.resolve() / 'data'}")


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    monitor(tmp_path, "down")  # whatever a failed test left behind
    assert running_from(tmp_path) == []


def test_up_scrapes_the_exporter_port_and_down_stops_it(state_dir: Path) -> None:
    port, exporter_port = free_port(), free_port()
    up = monitor(state_dir, "up", "--port", str(port), "--exporter-port", str(exporter_port))
    assert up.returncode == 0, up.stderr
    assert up.stdout == f"http://127.0.0.1:{port}\n"
    pid = processes.load(state_dir / RECORD_FILE)[0].pid
    assert running_from(state_dir) == [pid]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=5) as response:
        assert response.status == 200
    targets = json.loads((state_dir / "targets.json").read_text())
    assert targets[0]["targets"] == [f"127.0.0.1:{exporter_port}"]

    down = monitor(state_dir, "down")
    assert down.returncode == 0, down.stderr
    assert "stopped prometheus" in down.stderr
    assert running_from(state_dir) == []
    assert not listening(port)
    assert not (state_dir / RECORD_FILE).exists()
    again = monitor(state_dir, "down")
    assert again.returncode == 0
    assert "no prometheus running" in again.stderr


def test_a_port_in_use_is_one_line_and_starts_nothing(state_dir: Path, taken_port: int) -> None:
    result = monitor(state_dir, "up", "--port", str(taken_port))
    assert one_error(result, alone=True) == (
        f"port {taken_port} is already in use on 127.0.0.1: pick another with --port"
    )
    assert running_from(state_dir) == []
    assert not (state_dir / RECORD_FILE).exists()


def test_missing_prometheus_is_one_line_and_starts_nothing(
    state_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    empty_bin = tmp_path_factory.mktemp("bin")
    result = monitor(state_dir, "up", "--port", str(free_port()), path=str(empty_bin))
    assert one_error(result, alone=True) == (
        "prometheus not found: run 'make setup' (installs Debian's prometheus)"
    )
    assert running_from(state_dir) == []


def test_a_second_up_is_refused_and_the_first_keeps_running(state_dir: Path) -> None:
    port = free_port()
    first = monitor(state_dir, "up", "--port", str(port))
    assert first.returncode == 0, first.stderr
    pid = processes.load(state_dir / RECORD_FILE)[0].pid
    second = monitor(state_dir, "up", "--port", str(free_port()))
    assert one_error(second, alone=True).startswith(
        f"prometheus is already running from {state_dir.resolve()} (pid {pid})"
    )
    assert running_from(state_dir) == [pid]
    assert listening(port)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--port", "0"], f"--port 0 {NOT_A_PORT}"),
        (["--port", "70000"], f"--port 70000 {NOT_A_PORT}"),
        (["--exporter-port", "-1"], f"--exporter-port -1 {NOT_A_PORT}"),
        (["--port", "9464", "--exporter-port", "9464"],
         "--port and --exporter-port are both 9464: Prometheus would scrape itself; "
         "give it another --port"),
    ],
)
def test_bad_ports_are_one_line_and_start_nothing(
    state_dir: Path, args: list[str], error: str
) -> None:
    assert one_error(monitor(state_dir, "up", *args), alone=True) == error
    assert running_from(state_dir) == []
    assert not (state_dir / "data").exists()
