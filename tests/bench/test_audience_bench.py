"""Benchmark: does an audience of browsers skew a drill's measurements? The real open-loop prober
probes a loopback HTTP server (a process of its own) at 50 requests a second for 10 s and feeds a
view model holding 300 pods, which a real live page serves: first with no browser, then with 300
event-stream readers (tests/bench/sse_readers.py, in a process of their own). Runs alternate,
three of each; the medians of the answered requests a second must agree within 5 %. Also
reported: the probe latency's p50 and p99, and the snapshots the page built a second.

Run with `.venv/bin/pytest tests/bench/test_audience_bench.py -m bench -s -p no:randomly` (about
two minutes, no cluster); figures go to tests/bench/results/audience.json."""

from __future__ import annotations

import json
import selectors
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from benchsupport import percentile

from chaos.observe.prober import Prober
from chaos.view.model import ViewModel
from chaos.view.web import WebView

from support import Figures, free_port, pod

pytestmark = [pytest.mark.bench, pytest.mark.timeout(600)]

RESULTS = Path(__file__).resolve().parent / "results" / "audience.json"
READERS_SCRIPT = Path(__file__).resolve().parent / "sse_readers.py"
RATE, SECONDS, TIMEOUT = 50.0, 10.0, 1.0
"""50 requests a second for 10 s, each failed after 1 s (a drill spec's default)."""
PODS, READERS, RUNS = 300, 300, 3
AGREEMENT = 0.05
"""The largest relative difference allowed between the two answered rates."""


@pytest.fixture(scope="module")
def figures() -> Iterator[Figures]:
    found = Figures()
    yield found
    found.save(RESULTS)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a loopback HTTP server (Python's http.server) in a process of its own."""
    root = tmp_path_factory.mktemp("target")
    (root / "index.html").write_text("ok\n")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(root),
         str(port)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"http.server did not listen on 127.0.0.1:{port}")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.wait(timeout=10)


class CountingModel(ViewModel):
    """A view model that counts its snapshots."""

    snapshots = 0

    def snapshot(self) -> dict[str, Any]:
        self.snapshots += 1
        return super().snapshot()


def crowd_model() -> CountingModel:
    model = CountingModel("audience")
    model.set_workload("Deployment", "crowd", "demo")
    for number in range(PODS):
        model.pod_changed("ADDED", pod(f"{number:03d}", node=f"node-{number % 2}"),
                          time.monotonic())
    return model


def line_within(stream: IO[str], seconds: float) -> str:
    """The next line of STREAM, or '' if none came within SECONDS."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        return stream.readline() if selector.select(seconds) else ""


@dataclass
class Run:
    """What one probe of SECONDS measured."""

    answered_per_second: float
    requests: int
    failures: int
    p50_ms: float
    p99_ms: float
    snapshots_per_second: float
    states_per_reader: float


def probe_with_audience(url: str, readers: int) -> Run:
    model = crowd_model()
    web = WebView(model, 0)
    audience = None
    try:
        if readers:
            audience = subprocess.Popen(
                [sys.executable, str(READERS_SCRIPT), web.host, str(web.port), str(readers)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert audience.stdout is not None and audience.stdin is not None
            assert line_within(audience.stdout, 60).strip() == "ready", "readers not connected"
        latencies: list[float] = []

        def on_request(ok: bool, latency: float) -> None:
            model.probed(ok, time.monotonic())
            latencies.append(latency)

        built = model.snapshots
        prober = Prober(url, RATE, TIMEOUT, on_request, model.probe_window).start()
        time.sleep(SECONDS)  # the span measured, not a wait for something
        prober.stop()
        span = prober.stop_mono - prober.start_mono
        snapshots = (model.snapshots - built) / span
        states = 0.0
        if audience is not None:
            assert audience.stdin is not None and audience.stdout is not None
            audience.stdin.close()
            tally = json.loads(line_within(audience.stdout, 30) or "{}")
            assert tally.get("connected") == readers, f"readers dropped: {tally}"
            states = tally["states"] / readers
    finally:
        if audience is not None:
            audience.kill()
            audience.wait(timeout=10)
        web.close(drain_seconds=0)
    return Run(answered_per_second=(prober.requests - prober.failures) / span,
               requests=prober.requests, failures=prober.failures,
               p50_ms=percentile(latencies, 0.5) * 1000, p99_ms=percentile(latencies, 0.99) * 1000,
               snapshots_per_second=snapshots, states_per_reader=states)


def test_an_audience_does_not_skew_the_probe(target: str, figures: Figures) -> None:
    runs: dict[int, list[Run]] = {0: [], READERS: []}
    for _ in range(RUNS):
        for readers in runs:
            run = probe_with_audience(target, readers)
            print(f"{readers} readers: {run}", flush=True)
            runs[readers].append(run)
    medians = {}
    for readers, found in runs.items():
        rates = [r.answered_per_second for r in found]
        medians[readers] = statistics.median(rates)
        figures.add(f"probe_answered_per_second_{readers}_readers", "requests/s", rates,
                    rate=RATE, seconds=SECONDS, pods=PODS, readers=readers,
                    failures=[r.failures for r in found],
                    p50_ms=[round(r.p50_ms, 1) for r in found],
                    p99_ms=[round(r.p99_ms, 1) for r in found],
                    snapshots_per_second=[round(r.snapshots_per_second, 1) for r in found],
                    states_per_reader=[round(r.states_per_reader) for r in found])
    quiet, crowded = medians[0], medians[READERS]
    print(f"answered a second: {quiet:.2f} with no reader, {crowded:.2f} with {READERS}",
          flush=True)
    assert abs(crowded - quiet) <= AGREEMENT * quiet
