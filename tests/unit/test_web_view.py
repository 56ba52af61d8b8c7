"""The web view's server on loopback: the page and its files from the package, read-only, and a
server-sent-events stream that starts with the full state and follows every change."""

from __future__ import annotations

import argparse
import http.client
import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chaos.cli.views import is_loopback, serve
from chaos.drill.timeline import Incident
from chaos.errors import UsageError
from chaos.view.model import ViewModel
from chaos.view.stream import TICK_SECONDS
from chaos.view.web import WebView, host_allowed, static_file

from browser import Chromium, needs_chromium
from support import idle_crowd, pod, thread_count

CAP = 50
IDLE = 1.0
"""The idle timeout the tests give the servers, in seconds."""


@pytest.fixture
def served() -> Iterator[tuple[ViewModel, WebView]]:
    model = ViewModel("drill t")
    web = WebView(model, 0)
    yield model, web
    web.close(drain_seconds=0)


def request(web: WebView, method: str, path: str,
            host: str | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(web.host, web.port, timeout=10)
    connection.request(method, path, headers={"Host": host} if host else {})
    return connection.getresponse()


def next_state(response: http.client.HTTPResponse) -> dict[str, Any]:
    """The next `state` event of the stream (the socket's timeout bounds the wait)."""
    event = ""
    while True:
        line = response.readline().decode()
        assert line, "the stream ended"
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event == "state":
            data: dict[str, Any] = json.loads(line[5:])
            return data


def test_the_page_and_its_files_are_served_from_the_package(served: Any) -> None:
    _, web = served
    page = request(web, "GET", "/")
    assert page.status == 200 and page.getheader("Content-Type", "").startswith("text/html")
    html = page.read().decode()
    names = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert names == ["style.css", "app.js"], "relative: the attendees' page lives under a token"
    for name in names:
        response = request(web, "GET", f"/{name}")
        assert response.status == 200, name
        assert response.read() == static_file(name)
    assert "http" not in re.sub(r"<!doctype html>", "", html.lower()).replace(
        'name="viewport"', ""), "the page loads nothing from elsewhere"
    assert "://" not in static_file("app.js").decode() + static_file("style.css").decode()
    assert request(web, "GET", "/nothing").status == 404


@pytest.mark.parametrize("path", ["/", "/app.js", "/style.css", "/events", "/nothing"])
def test_every_answer_forbids_other_origins_and_sniffing(served: Any, path: str) -> None:
    _, web = served
    response = request(web, "GET", path)
    csp = response.getheader("Content-Security-Policy", "")
    assert "default-src 'self'" in csp and "unsafe" not in csp and "frame-ancestors 'none'" in csp
    assert response.getheader("X-Content-Type-Options") == "nosniff"


def test_a_foreign_host_is_refused_and_loopback_names_work(served: Any) -> None:
    _, web = served
    for host in (f"127.0.0.1:{web.port}", f"localhost:{web.port}", f"LOCALHOST:{web.port}",
                 f"[::1]:{web.port}"):
        assert request(web, "GET", "/", host).status == 200, host
    for host in (f"evil.example:{web.port}", "127.0.0.1", f"127.0.0.1:{web.port + 1}",
                 f"evil.example@127.0.0.1:{web.port}", f"localhost.evil.example:{web.port}"):
        for path in ("/", "/events"):
            response = request(web, "GET", path, host)
            body = response.read().decode()
            assert response.status == 421, host
            assert body.count("\n") == 1 and "not this server" in body
            assert response.getheader("X-Content-Type-Options") == "nosniff"


@pytest.mark.parametrize(("header", "bound", "allowed"), [
    ("127.0.0.1:8000", "127.0.0.1", True), ("localhost:8000", "127.0.0.1", True),
    ("127.0.0.2:8000", "127.0.0.1", True), ("[::1]:8000", "127.0.0.1", True),
    ("localhost.:8000", "127.0.0.1", True), ("localhost:80", "127.0.0.1", False),
    ("192.168.1.10:8000", "192.168.1.10", True), ("192.168.1.11:8000", "192.168.1.10", False),
    ("192.168.1.11:8000", "0.0.0.0", True), ("[fd00::1]:8000", "::", True),
    ("trainer.local:8000", "trainer.local", True), ("other.local:8000", "0.0.0.0", False),
    ("evil.example:8000", "0.0.0.0", False), ("", "127.0.0.1", False),
    (":8000", "127.0.0.1", False), ("localhost:x", "127.0.0.1", False),
    ("a b:8000", "127.0.0.1", False), ("localhost/:8000", "127.0.0.1", False)])
def test_which_host_headers_name_this_server(header: str, bound: str, allowed: bool) -> None:
    assert host_allowed(header, bound, 8000) is allowed


@needs_chromium
def test_the_page_draws_under_its_own_policy() -> None:
    model = ViewModel("drill t")
    model.pod_changed("ADDED", pod("a"), time.monotonic())
    incident = Incident(id="r1-i1", round=1, fault="pod_delete", namespace="demo",
                        workload="web", target_pod="web-a", target_uid="a")
    now = time.monotonic()
    incident.mark("injected", now - 2)
    incident.mark("target_gone", now - 1)
    model.incident_opened(incident)
    web = WebView(model, 0)
    page = Chromium(web.url)
    try:
        page.call("Page.enable")
        page.call("Page.addScriptToEvaluateOnNewDocument", source=(
            "window.refused = []; document.addEventListener('securitypolicyviolation', "
            "(e) => window.refused.push(`${e.violatedDirective} ${e.blockedURI}`));"))
        page.call("Page.reload")
        page.wait_for("document.querySelectorAll('.tile, .seg.waiting').length == 2", timeout=30)
        assert page.evaluate("window.refused") == []
        grows = page.evaluate("[...document.querySelectorAll('.seg')].map("
                              "(s) => Number(getComputedStyle(s).flexGrow))")
        assert grows[0] == 1000 and grows[1] >= 1000, "target_gone 1 s after injected; waiting"
        assert page.evaluate("getComputedStyle(document.querySelector('#legend span'))"
                             ".getPropertyValue('--swatch')") != ""
        page.evaluate("document.body.setAttribute('style', 'flex-grow: 7')")  # an injected style
        assert page.evaluate("getComputedStyle(document.body).flexGrow") == "0"
        page.wait_for("window.refused.length == 1", timeout=5, what="the style refused")
        assert page.evaluate("window.refused") == ["style-src-attr inline"]
    finally:
        page.close()
        web.close(drain_seconds=0)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_it_is_read_only(served: Any, method: str) -> None:
    _, web = served
    assert request(web, method, "/events").status == 405


def test_events_start_with_the_full_state_and_follow_changes(served: Any) -> None:
    model, web = served
    model.set_drill(3, "pod_delete")
    stream = request(web, "GET", "/events")
    assert stream.getheader("Content-Type") == "text/event-stream"
    first = next_state(stream)
    assert first["title"] == "drill t" and first["progress"]["rounds"] == 3
    model.round_started(1)
    assert next_state(stream)["progress"]["round"] == 1
    model.finished(True, "1 incident")
    assert next_state(stream)["progress"]["verdict"] == "PASSED"


def test_close_ends_the_streams(served: Any) -> None:
    model, web = served
    stream = request(web, "GET", "/events")
    next_state(stream)
    web.close(drain_seconds=1)
    while stream.readline():
        pass  # ends (EOF) rather than running into the socket's timeout


def test_bad_and_taken_ports_are_one_line(taken_port: int) -> None:
    with pytest.raises(UsageError, match="is not a TCP port"):
        WebView(ViewModel("t"), 70000)
    with pytest.raises(UsageError, match="pick another --web port"):
        WebView(ViewModel("t"), taken_port)


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("::1", True), ("localhost", True), ("127.0.0.2", True),
    ("0.0.0.0", False), ("192.168.1.10", False), ("::", False), ("example.org", False)])
def test_which_hosts_get_the_warning(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_serve_says_the_url_and_no_warning_on_loopback() -> None:
    said: list[str] = []
    args = argparse.Namespace(web=0, web_host="127.0.0.1")
    web = serve(args, ViewModel("t"), said.append)
    assert web is not None
    web.close(drain_seconds=0)
    assert said == [f"live page on {web.url}"] and web.url.startswith("http://127.0.0.1:")
    assert serve(argparse.Namespace(web=None, web_host="127.0.0.1"), ViewModel("t"),
                 said.append) is None


def test_idle_connections_are_capped_and_closed_after_the_idle_timeout() -> None:
    web = WebView(ViewModel("t"), 0, max_connections=CAP, idle_seconds=IDLE)
    try:
        threads = thread_count()
        crowd = idle_crowd(web.host, web.port, 2000, web.server.open_connections, timeout=30)
    finally:
        web.close(drain_seconds=0)
    assert crowd.still_open == 0, "the server closes every connection"
    assert crowd.peak_threads <= threads + CAP + 3, "one thread per held connection at most"
    assert len(crowd.held) >= CAP and len(crowd.turned_away) >= 1000
    assert min(crowd.held) >= IDLE * 0.95, "a held connection lasts the idle timeout"
    assert max(crowd.turned_away) < IDLE / 2, "one over the cap is answered at once"


class CountingModel(ViewModel):
    """A view model that counts its snapshots."""

    snapshots = 0

    def snapshot(self) -> dict[str, Any]:
        self.snapshots += 1
        return super().snapshot()


def test_many_browsers_share_one_snapshot_per_tick() -> None:
    model = CountingModel("t")
    web = WebView(model, 0)
    try:
        streams = [request(web, "GET", "/events") for _ in range(50)]
        for stream in streams:
            next_state(stream)
        before, start = model.snapshots, time.monotonic()
        while time.monotonic() < start + 1:  # the prober's pace, 200 results a second
            model.probed(True, time.monotonic())
            threading.Event().wait(0.005)
        final = model.version
        for stream in streams:
            while next_state(stream)["version"] < final:
                pass
        ticks = (time.monotonic() - start) / TICK_SECONDS
    finally:
        web.close(drain_seconds=0)
    assert model.snapshots - before <= ticks + 2, "one snapshot a tick for 50 browsers"


def test_a_change_does_not_wait_for_a_snapshot_to_be_drawn(
        monkeypatch: pytest.MonkeyPatch) -> None:
    model = ViewModel("t")
    model.pod_changed("ADDED", pod("a"), time.monotonic())
    changed: list[bool] = []

    def drawing(pod: Any) -> str:  # another thread changes the model meanwhile
        if not changed:
            thread = threading.Thread(target=model.probed, args=(True, 0.0))
            thread.start()
            thread.join(timeout=2)
            changed.append(not thread.is_alive())
        return "ready"

    monkeypatch.setattr("chaos.view.model.pod_state", drawing)
    model.snapshot()
    assert changed == [True]
