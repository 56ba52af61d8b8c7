"""The live web view: serves the page in chaos/view/static and a server-sent-events stream of
the view model's snapshots from the standard library's HTTP server, in daemon threads. Read-only
(GET and HEAD only); each new connection gets the full state first, so a browser that reconnects
after a restart redraws everything. It answers only requests addressed to it by a loopback name or
the address it listens on (a page elsewhere that rebinds its own name to this machine gets
nothing), and forbids the page anything not served from here. A workshop's view also takes the
presenter's keys: POST /control, only from loopback and only with the per-run token that the page
served to loopback carries (chaos.view.controls). `--share` adds a read-only copy for the room
beside it (chaos.view.share), fed by the same frames; the page's files are named relative to it,
so that copy serves it under its token's path."""

from __future__ import annotations

import ipaddress
import select
import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from chaos.errors import UsageError
from chaos.serving import HEADER_SECONDS, BoundedHandler, BoundedHTTPServer
from chaos.view import controls as presenter
from chaos.view.model import ViewModel
from chaos.view.stream import TICK_SECONDS, Frames

LOOPBACK = "127.0.0.1"
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/style.css": ("style.css", "text/css; charset=utf-8")}
HEARTBEAT_SECONDS = 10.0
POLL_SECONDS = 0.5
RETRY_MS = 1000
MAX_CONNECTIONS = 512
"""A room of browsers, each holding its event stream and fetching the page's files."""
IDLE_SECONDS = 10.0
"""A connection that brings no request, or whose browser stops reading, this long is closed."""
SECURITY_HEADERS = (
    ("Content-Security-Policy",
     "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"))
LOOPBACK_NAMES = frozenset({"localhost"})


def static_file(name: str) -> bytes:
    return resources.files("chaos.view").joinpath("static", name).read_bytes()


def host_allowed(header: str, bound: str, port: int) -> bool:
    """Whether a request's Host header names this server: its port, and a loopback name or
    address, or the address it listens on (any address when that is 0.0.0.0 or ::). A name
    other than the bound one is refused: it could be a page's own, rebound to this machine."""
    if not header or any(c in header for c in "@/\\?# "):
        return False
    try:
        parts = urlsplit(f"//{header}")
        name, asked_port = (parts.hostname or "").rstrip("."), parts.port or 80
    except ValueError:
        return False
    if not name or asked_port != port:
        return False
    if name in LOOPBACK_NAMES or name == bound.lower():
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if address.is_loopback:
        return True
    try:
        listening = ipaddress.ip_address(bound)
    except ValueError:  # it listens on a name: that name, checked above, is the only one
        return False
    return address == listening or listening.is_unspecified


class WebView:
    """Serves MODEL on HOST:PORT until close(), to at most MAX_CONNECTIONS connections at a time;
    one that waits IDLE_SECONDS for a request, or for its browser to read, is closed."""

    def __init__(self, model: ViewModel, port: int, host: str = LOOPBACK,
                 max_connections: int = MAX_CONNECTIONS,
                 idle_seconds: float = IDLE_SECONDS,
                 header_seconds: float = HEADER_SECONDS,
                 controls: Callable[[str], None] | None = None,
                 frames: Frames | None = None, handler: type[_Handler] | None = None,
                 name: str = "the web view") -> None:
        """CONTROLS, when given, hears each key the presenter's page posts; FRAMES, another
        view's, are shared with it (one snapshot per tick for both)."""
        if not 0 <= port <= 65535:
            raise UsageError(f"--web {port} is not a TCP port: pick one from 1 to 65535")
        self.model = model
        self.controls = controls
        self.token = presenter.new_token() if controls else ""
        self.frames = frames or Frames(model)
        self.stopping = threading.Event()
        self.sent: dict[int, int] = {}
        """The version each connected browser was last sent, by handler id."""
        self.attendees: WebView | None = None
        """The attendees' view (chaos.view.share), closed with this one."""
        bound = type("Handler", (handler or _Handler,), {"view": self})
        try:
            self.server = BoundedHTTPServer((host, port), bound, max_connections, idle_seconds,
                                            header_seconds)
        except OSError as error:
            raise UsageError(f"cannot serve {name} on {host}:{port} ({error.strerror}): "
                             "pick another --web port") from None
        self.host, self.port = host, int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name="web-view",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def close(self, drain_seconds: float = 2.0) -> None:
        """Stops serving, once every connected browser has the latest state (the verdict) or
        after DRAIN_SECONDS."""
        if self.attendees is not None:
            self.attendees.close(drain_seconds)
        deadline = time.monotonic() + drain_seconds
        while time.monotonic() < deadline and any(
                seen < self.model.version for seen in list(self.sent.values())):
            time.sleep(0.05)
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=2)


class _Handler(BoundedHandler):
    view: WebView
    server_version = "chaos-drill"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the terminal belongs to the drill."""

    def parse_request(self) -> bool:
        """Reads the request; refuses one whose Host header is not this server's."""
        if not super().parse_request():
            return False
        host = self.headers.get("Host", "")
        if host_allowed(host, self.view.host, self.view.port):
            return True
        body = f"421 not this server: Host {host!r}; open {self.view.url}\n".encode()
        self.send_response(HTTPStatus.MISDIRECTED_REQUEST)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if self.command != "HEAD":
            self.wfile.write(body)
        return False

    def end_headers(self) -> None:
        for name, value in SECURITY_HEADERS:
            self.send_header(name, value)
        super().end_headers()

    def do_HEAD(self) -> None:
        self._static(body=False)

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/events":
            self._events()
        else:
            self._static(body=True)

    def _refuse(self) -> None:
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, "read-only")

    do_PUT = do_DELETE = do_PATCH = _refuse

    def do_POST(self) -> None:
        view = self.view
        if view.controls is None or self.path != "/control":
            self._refuse()
            return
        status, key = presenter.check_post(self.headers, self.rfile, self.client_address[0],
                                           view.token)
        if key:
            view.controls(key)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()

    def _static(self, body: bool, path: str | None = None) -> None:
        found = STATIC.get(path or self.path.split("?")[0])
        if found is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        data = static_file(found[0])
        if found[0] == "index.html" and self.view.token and presenter.is_loopback(
                self.client_address[0]):
            data = presenter.with_token(data, self.view.token)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", found[1])
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _gone(self) -> bool:
        """Whether the browser closed its end: a stream's browser sends nothing more, so the
        place it held (a connection, a viewer) is freed about POLL_SECONDS later, not at the next
        write."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _events(self) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        frames, stopping = self.view.frames, self.view.stopping
        seen, idle = -1, 0.0
        self.view.sent[id(self)] = seen
        try:
            self.wfile.write(f"retry: {RETRY_MS}\n\n".encode())
            while not stopping.is_set():
                found = frames.after(seen, POLL_SECONDS)
                if found is None and self._gone():
                    return
                if found is None:
                    idle += POLL_SECONDS
                    if idle >= HEARTBEAT_SECONDS:  # keeps proxies and dead peers honest
                        self.wfile.write(b": still here\n\n")
                        self.wfile.flush()
                        idle = 0.0
                    continue
                seen, frame = found
                self.wfile.write(frame)
                self.wfile.flush()
                idle = 0.0
                self.view.sent[id(self)] = seen
                stopping.wait(TICK_SECONDS)
        except OSError:  # the browser went away
            return
        finally:
            self.view.sent.pop(id(self), None)
