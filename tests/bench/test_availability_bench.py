"""Availability checked against a load generator we did not write: vegeta (built from its Go
module), open-loop at the same rate and timeout, against the same URL at the same time as the
drill's prober. Its requests in the prober's span are counted as the prober counts them (an
answer below 500 is ok), and both failure ratios are reported side by side:

- a loopback server that hangs for a known time, then answers 503 (no cluster): both must count
  about hang × rate failed requests, ours within one slot of it;
- pod_delete on web's three replicas; pod_delete and container_kill on web scaled to one
  replica (a whole outage per round, which both must count alike); and the shipped
  api-pod-kill drill (web's /cgi-bin/api hangs up to 2 s while api is gone), on the local
  cluster.

Ours must agree with vegeta's within 1 percentage point. Run with `make bench` (or
`.venv/bin/pytest tests/bench/test_availability_bench.py -m bench -s`); figures go to
tests/bench/results/availability.json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaos.observe.prober import Prober, ProbeWindow
from chaos.resources import cache_dir
from chaos.results import read_journal

from support import FAULTS, REPO, Figures, cli, scale, write_drill

pytestmark = [pytest.mark.bench, pytest.mark.timeout(1800)]

RESULTS = Path(__file__).resolve().parent / "results" / "availability.json"
VEGETA_VERSION = "12.13.0"
VEGETA = cache_dir() / f"vegeta-v{VEGETA_VERSION}" / "bin" / "vegeta"
AGREEMENT = 0.01
"""The largest difference allowed between our failure ratio and vegeta's."""
HANG_SECONDS, HANG_RATE, HANG_TIMEOUT = 2.0, 20.0, 3.0


@pytest.fixture(scope="module")
def vegeta() -> Path:
    if not VEGETA.exists():
        print(f"building vegeta v{VEGETA_VERSION} into {VEGETA.parent}", flush=True)
        VEGETA.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["go", "install", f"github.com/tsenart/vegeta/v12@v{VEGETA_VERSION}"],
                       check=True, timeout=900,
                       env={**os.environ, "GOBIN": str(VEGETA.parent), "CGO_ENABLED": "0"})
    return VEGETA


@pytest.fixture(scope="module")
def figures() -> Iterator[Figures]:
    found = Figures()
    yield found
    found.save(RESULTS)


@dataclass
class Attack:
    """vegeta attacking URL open-loop until stop(); its results as (wall time, ok)."""

    proc: subprocess.Popen[bytes]
    out: Path

    @classmethod
    def start(cls, binary: Path, url: str, rate: float, timeout: float, out: Path) -> Attack:
        proc = subprocess.Popen(
            [str(binary), "attack", f"-rate={rate:g}/1s", f"-timeout={timeout:g}s",
             "-duration=0", "-keepalive=false", "-redirects=-1", f"-output={out}"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert proc.stdin is not None
        proc.stdin.write(f"GET {url}\n".encode())
        proc.stdin.close()
        return cls(proc, out)

    def stop(self, timeout: float) -> list[tuple[float, bool]]:
        """Stops it (SIGINT: it waits for requests in flight, then writes them all)."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            pytest.fail("vegeta did not stop on SIGINT")
        encoded = subprocess.run([str(VEGETA), "encode", "--to", "json", str(self.out)],
                                 capture_output=True, text=True, timeout=120, check=True).stdout
        results = []
        for line in encoded.splitlines():
            hit = json.loads(line)
            sent = _rfc3339(hit["timestamp"])
            results.append((sent, 0 < int(hit["code"]) < 500))
        return results


def _rfc3339(text: str) -> float:
    """vegeta's timestamp (RFC 3339 with nanoseconds) as seconds since the epoch."""
    head, _, rest = text.partition(".")
    digits = "".join(c for c in rest if c.isdigit())
    zone = rest[len(digits):]
    zone = "+00:00" if zone in ("Z", "") else zone
    whole = datetime.fromisoformat(head + zone).timestamp()
    return whole + (int(digits) / 10 ** len(digits) if digits else 0.0)


def failure_ratio(results: list[tuple[float, bool]], start: float, end: float) -> tuple[int, int]:
    """vegeta's requests sent in [START, END) and how many of them failed."""
    inside = [ok for sent, ok in results if start <= sent < end]
    return len(inside), inside.count(False)


class Hanging(BaseHTTPRequestHandler):
    """200 at once, but a request that arrives while a hang is on waits for its end, then 503."""

    hang_until = 0.0
    lock = threading.Lock()

    def do_GET(self) -> None:  # noqa: N802 (http.server's spelling)
        with self.lock:
            until = Hanging.hang_until
        failed = time.time() < until
        if failed:
            time.sleep(max(0.0, until - time.time()))
        self.send_response(503 if failed else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_hang_of_known_length(vegeta: Path, figures: Figures, tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hanging)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    windows: list[ProbeWindow] = []
    try:
        attack = Attack.start(vegeta, url, HANG_RATE, HANG_TIMEOUT, tmp_path / "hang.bin")
        prober = Prober(url, HANG_RATE, HANG_TIMEOUT, lambda ok, latency: None,
                        windows.append).start()
        started = time.time() - (time.monotonic() - prober.start_mono)
        time.sleep(3.0)
        with Hanging.lock:
            Hanging.hang_until = time.time() + HANG_SECONDS
        time.sleep(HANG_SECONDS + 3.0)
        prober.stop()
        ended = started + (prober.stop_mono or time.monotonic()) - prober.start_mono
        theirs = attack.stop(HANG_TIMEOUT)
    finally:
        server.shutdown()
        server.server_close()
    expected = HANG_SECONDS * HANG_RATE
    sent, failed = failure_ratio(theirs, started, ended)
    ours = prober.failures / prober.requests
    print(f"hang {HANG_SECONDS} s at {HANG_RATE:g}/s: expected {expected:g} failed; ours "
          f"{prober.failures}/{prober.requests}, vegeta {failed}/{sent}", flush=True)
    figures.add("hang_failed_requests", "requests", [prober.failures], vegeta=failed,
                expected=expected, ours_ratio=round(ours, 4),
                vegeta_ratio=round(failed / sent, 4))
    assert abs(prober.failures - expected) <= 1
    assert abs(failed - expected) <= 2
    assert abs(ours - failed / sent) <= AGREEMENT


def drill_span(out: Path) -> tuple[float, float, int, int]:
    """The prober's span in wall time and its requests and failures, from the journal."""
    records = read_journal(next(out.rglob("journal.jsonl")))
    anchor = next(r for r in records if r.event == "probe_started")
    offset = datetime.fromisoformat(anchor.ts).timestamp() - anchor.mono
    windows = [r for r in records if r.event == "probe_window"]
    start = offset + float(windows[0].mono) - float(windows[0].get("seconds"))
    end = offset + float(windows[-1].mono)
    requests = sum(int(w.get("requests")) for w in windows)
    failures = sum(int(w.get("failures")) for w in windows)
    return start, end, requests, failures


def service_url(probe: dict[str, Any]) -> str:
    from kubernetes import client

    from chaos.cluster import kube
    from chaos.cluster.local import LocalCluster

    with kube.api_client(LocalCluster().kubeconfig()) as api:
        service = client.CoreV1Api(api).read_namespaced_service(probe["service"], "demo")
    return f"http://{service.spec.cluster_ip}:{probe['port']}{probe.get('path', '/')}"


HOST_PROBE = {"service": "web", "port": 80, "ratePerSecond": 20, "timeoutSeconds": 3,
              "from": "host"}
CASES: dict[str, dict[str, Any]] = {
    # three replicas: kube-proxy sends a new connection to the victim only now and then
    "pod_delete": {"fault": FAULTS["pod_delete"], "probe": HOST_PROBE},
    # one replica: every request fails until the replacement (or restart) is Ready, so both
    # generators see the same outage, to within a slot at each end
    "pod_delete_single": {"fault": FAULTS["pod_delete"], "probe": HOST_PROBE, "replicas": 1},
    "container_kill_single": {"fault": FAULTS["container_kill"], "probe": HOST_PROBE,
                              "replicas": 1},
    # the shipped drill: web's /cgi-bin/api hangs up to 2 s, then 502, while api is gone
    "api_pod_kill": {},
}


@pytest.mark.parametrize("case", list(CASES))
def test_drill_availability_agrees_with_vegeta(case: str, web: Any, vegeta: Path,
                                               figures: Figures, tmp_path: Path) -> None:
    if CASES[case]:
        spec = dict(CASES[case])
        replicas = spec.pop("replicas", 3)
        drill = write_drill(tmp_path, spec.pop("fault"), rounds=3, intervalSeconds=10, **spec)
        if replicas != 3:
            scale(web, replicas)
    else:
        doc = yaml.safe_load((REPO / "manifests" / "drills" / "api-pod-kill.yaml").read_text())
        doc["spec"]["probe"]["from"] = "host"
        drill = tmp_path / "api-pod-kill.yaml"
        drill.write_text(yaml.safe_dump(doc))
    probe = yaml.safe_load(drill.read_text())["spec"]["probe"]
    rate, timeout = float(probe["ratePerSecond"]), float(probe.get("timeoutSeconds", 1))
    attack = Attack.start(vegeta, service_url(probe), rate, timeout, tmp_path / "attack.bin")
    try:
        result = cli("run", str(drill), "--out", str(tmp_path / "out"))
    finally:
        theirs = attack.stop(timeout)
    assert result.returncode in (0, 1), result.stderr
    start, end, requests, failures = drill_span(tmp_path / "out")
    sent, failed = failure_ratio(theirs, start, end)
    ours, vegetas = failures / requests, failed / sent
    print(f"{case}: ours {failures}/{requests} failed ({ours:.2%}), vegeta {failed}/{sent} "
          f"({vegetas:.2%})", flush=True)
    figures.add(f"{case}_failed_ratio", "ratio", [ours], vegeta=round(vegetas, 4),
                requests=requests, vegeta_requests=sent)
    assert abs(sent - requests) <= rate, "both sent on the same schedule over the same span"
    assert abs(ours - vegetas) <= AGREEMENT
