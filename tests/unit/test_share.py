"""The attendees' view for real on this machine: a presenter's page on 127.0.0.1 and its
attendees' listener on 127.0.0.2 (another address of this machine, as a LAN address would be);
the token in the path, the read-only routes and the cap on viewers, over real HTTP."""

from __future__ import annotations

import argparse
import http.client
import secrets
import socket
import time
from collections.abc import Iterator

import pytest

from chaos.cli.views import serve, share_address
from chaos.errors import UsageError
from chaos.view.controls import TOKEN_HEADER
from chaos.view.model import ViewModel
from chaos.view.share import ShareView, default_address, qr_code, resolve_address
from chaos.view.web import WebView

ATTENDEES = "127.0.0.2"
VIEWERS = 2


@pytest.fixture
def shared() -> Iterator[tuple[WebView, ShareView, list[str]]]:
    keys: list[str] = []
    page = WebView(ViewModel("workshop t", mode="workshop"), 0, controls=keys.append)
    attendees = ShareView(page, ATTENDEES, viewers=VIEWERS, idle_seconds=2)
    page.attendees = attendees
    yield page, attendees, keys
    page.close(drain_seconds=0)


def request(view: WebView, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(view.host, view.port, timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def open_stream(view: ShareView) -> socket.socket:
    """An event stream held open, once the server has answered its request."""
    sock = socket.create_connection((view.host, view.port), timeout=5)
    sock.sendall(f"GET /{view.secret}/events HTTP/1.1\r\nHost: {view.host}:{view.port}\r\n\r\n"
                 .encode())
    head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 200"), head
    return sock


def wait_until(condition: object, timeout: float) -> bool:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)  # polls the server's count, kept by its threads
    return True


def test_the_token_is_long_random_and_only_it_opens_the_page(shared: tuple[
        WebView, ShareView, list[str]]) -> None:
    page, attendees, _ = shared
    assert len(attendees.secret) >= 22 and attendees.secret != page.token  # ≥ 128 bits
    assert attendees.url == f"http://{ATTENDEES}:{page.port}/{attendees.secret}/"
    wrong = secrets.token_urlsafe(32)
    near = attendees.secret[:-1] + ("A" if attendees.secret[-1] != "A" else "B")
    for path in ("/", "/events", "/app.js", "/style.css", f"/{wrong}/", f"/{wrong}/events",
                 f"/{near}/", f"/{attendees.secret}x/", f"/x{attendees.secret}/",
                 f"/{page.token}/"):
        status, body = request(attendees, "GET", path)
        assert status == 403, path
        assert body.decode().count("\n") == 1 and "token" in body.decode(), body
    assert request(attendees, "GET", f"/{attendees.secret}")[0] == 301  # on to /TOKEN/
    for name in ("", "app.js", "style.css"):
        assert request(attendees, "GET", f"/{attendees.secret}/{name}")[0] == 200, name
    assert request(attendees, "HEAD", f"/{attendees.secret}/")[0] == 200
    assert request(attendees, "HEAD", f"/{attendees.secret}/events")[0] == 404  # no stream
    assert request(attendees, "HEAD", "/")[0] == 403


def test_the_attendees_page_has_no_presenter_controls(shared: tuple[
        WebView, ShareView, list[str]]) -> None:
    page, attendees, _ = shared
    presenter = request(page, "GET", "/")[1].decode()
    assert page.token in presenter, "the presenter's page carries its token"
    status, body = request(attendees, "GET", f"/{attendees.secret}/")
    html = body.decode()
    assert status == 200 and "presenter-token" not in html and page.token not in html
    assert 'id="keys"' not in html and "<button" in html  # the theme's only


def test_the_attendees_listener_refuses_control_and_every_post(shared: tuple[
        WebView, ShareView, list[str]]) -> None:
    page, attendees, keys = shared
    good = {TOKEN_HEADER: page.token, "Content-Type": "text/plain"}
    assert request(attendees, "GET", f"/{attendees.secret}/control")[0] == 404
    for path in (f"/{attendees.secret}/control", f"/{attendees.secret}/", "/control"):
        expected = 403 if path == "/control" else 405
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert request(attendees, method, path, b"next", good)[0] == expected, (method, path)
    assert keys == [], "no key came through the attendees' listener"
    assert request(page, "POST", "/control", b"next", good)[0] == 204  # the presenter's works
    assert keys == ["next"]


def test_viewers_beyond_the_cap_get_503_until_one_leaves(shared: tuple[
        WebView, ShareView, list[str]]) -> None:
    _, attendees, _ = shared
    streams = [open_stream(attendees) for _ in range(VIEWERS)]
    try:
        assert attendees.watching == VIEWERS
        for path in ("events", ""):
            status, body = request(attendees, "GET", f"/{attendees.secret}/{path}")
            assert status == 503, path
            assert f"the room is full: {VIEWERS} viewers" in body.decode()
        assert request(attendees, "GET", f"/{attendees.secret}/app.js")[0] == 200
        streams.pop().close()
        assert wait_until(lambda: attendees.watching == VIEWERS - 1, 5), "its place is freed"
        assert request(attendees, "GET", f"/{attendees.secret}/")[0] == 200
        streams.append(open_stream(attendees))
    finally:
        for stream in streams:
            stream.close()
    assert wait_until(lambda: attendees.watching == 0, 5)


def test_both_pages_stream_the_same_state(shared: tuple[WebView, ShareView, list[str]]) -> None:
    page, attendees, _ = shared
    page.model.set_workload("Deployment", "web", "demo")
    frames = []
    for view, path in ((page, "/events"), (attendees, f"/{attendees.secret}/events")):
        connection = http.client.HTTPConnection(view.host, view.port, timeout=5)
        connection.request("GET", path)
        response = connection.getresponse()
        line = response.readline()
        while not line.startswith(b"data:"):  # the socket's timeout bounds the wait
            assert line, "the stream ended"
            line = response.readline()
        frames.append(line)
        connection.close()
    assert frames[0] == frames[1] and b'"web"' in frames[0]


@pytest.mark.parametrize("value", ["192.0.2.77", "10.255.255.254", "0.0.0.0", "::",
                                   "224.0.0.1", "trainer.local", "plan.yaml"])
def test_an_address_not_of_this_machine_is_one_line(value: str) -> None:
    with pytest.raises(UsageError) as raised:
        resolve_address(value)
    assert str(raised.value).startswith(f"--share {value}") and "\n" not in str(raised.value)


def test_the_default_is_an_address_of_this_machine() -> None:
    assert resolve_address(None) is None
    assert resolve_address(ATTENDEES) == ATTENDEES
    address = default_address()
    assert resolve_address("") == address == resolve_address(address)


def args(**given: object) -> argparse.Namespace:
    base: dict[str, object] = {"web": 0, "web_host": "127.0.0.1", "share": ATTENDEES,
                               "share_viewers": 60}
    return argparse.Namespace(**{**base, **given})


@pytest.mark.parametrize(("given", "message"), [
    ({"web": None}, "--share needs --web PORT"),
    ({"web_host": "0.0.0.0"}, "--share and --web-host 0.0.0.0"),
    ({"share_viewers": 0}, "--share-viewers 0: give at least 1"),
    ({"share": "192.0.2.77"}, "--share 192.0.2.77 is not an address of this machine")])
def test_bad_share_arguments_are_refused_before_anything(given: dict[str, object],
                                                         message: str) -> None:
    said: list[str] = []
    with pytest.raises(UsageError, match=message):
        serve(args(**given), ViewModel("t"), said.append)
    assert said == [], "nothing was served"


def test_serve_says_the_link_the_warning_and_a_qr_code() -> None:
    said: list[str] = []
    web = serve(args(), ViewModel("t"), said.append)
    assert web is not None and isinstance(web.attendees, ShareView)
    try:
        url = web.attendees.url
        assert request(web.attendees, "GET", f"/{web.attendees.secret}/")[0] == 200
        assert said[1] == f"attendees' view on {url} (read-only, at most 60 at a time)"
        assert said[2].startswith("warning: the attendees' view leaves loopback")
        assert said[3] == f"scan to open it:\n{qr_code(url)}"
    finally:
        web.close(drain_seconds=0)
    with pytest.raises(OSError):
        socket.create_connection((ATTENDEES, web.port), timeout=2).close()
    assert share_address(args(share=None)) is None


def test_the_qr_code_is_a_square_of_text_characters() -> None:
    rows = qr_code("http://192.168.1.10:8080/" + "x" * 43 + "/").splitlines()
    width = len(rows[0])
    assert all(len(row) == width for row in rows) and set("".join(rows)) <= set(" ▀▄█")
    assert width in (2 * len(rows), 2 * len(rows) - 1)  # two modules' rows to a line
