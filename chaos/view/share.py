"""The attendees' view (`--share`): a second listener beside the live page, on this machine's LAN
address, serving only the read-only page and its event stream, under a path that holds an
unguessable token (the link the trainer gives the room). A request without the token gets 403;
a POST or any other path (/control among them) is refused; beyond the cap on viewers the page and
its stream answer 503. The presenter's page and its keys stay on loopback."""

from __future__ import annotations

import errno
import hmac
import io
import ipaddress
import secrets
import socket
import threading
from http import HTTPStatus

import segno

from chaos.errors import UsageError
from chaos.view.web import IDLE_SECONDS, WebView, _Handler

DEFAULT_VIEWERS = 60
TOKEN_BYTES = 32
"""secrets.token_urlsafe's bytes: 256 bits in 43 characters."""
FILES = frozenset({"/", "/app.js", "/style.css", "/events"})
ROUTED = "198.51.100.1"
"""An address of the documentation range, reached through the default route: connecting a UDP
socket to it picks the default route's source address and sends nothing."""


def default_address() -> str:
    """This machine's address on the interface of its default route."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((ROUTED, 9))  # a UDP connect only looks the route up
        except OSError:
            raise UsageError("--share: this machine has no default route: give the address to "
                             "share on, e.g. --share 192.168.1.10") from None
        return str(probe.getsockname()[0])


def check_address(value: str) -> str:
    """VALUE, when it is one of this machine's IP addresses; else a one-line UsageError."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        plan = " (a lesson plan goes before --share)" if value.endswith((".yaml", ".yml")) else ""
        raise UsageError(f"--share {value}: not an IP address{plan}: give one of this machine's "
                         "addresses (ip -brief address), or --share alone") from None
    if address.is_unspecified or address.is_multicast:
        raise UsageError(f"--share {value} is not one address: give one of this machine's "
                         "addresses (ip -brief address), or --share alone")
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((value, 0))  # binding tells whether the address is ours; nothing is sent
        except OSError as error:
            if error.errno != errno.EADDRNOTAVAIL:
                raise
            raise UsageError(f"--share {value} is not an address of this machine: give one of "
                             "its addresses (ip -brief address), or --share alone") from None
    return value


def resolve_address(value: str | None) -> str | None:
    """The address --share asks for: None without it, the default route's for --share alone."""
    if value is None:
        return None
    return check_address(value) if value else default_address()


def qr_code(url: str) -> str:
    """URL as a QR code drawn with text characters (half blocks, two rows to a line)."""
    text = io.StringIO()
    segno.make(url, error="l").terminal(text, compact=True)
    return text.getvalue().rstrip("\n")


class ShareView(WebView):
    """The attendees' listener on HOST, serving PAGE's model (and sharing its frames) on PAGE's
    port, to at most VIEWERS pages at a time."""

    def __init__(self, page: WebView, host: str, viewers: int = DEFAULT_VIEWERS,
                 idle_seconds: float = IDLE_SECONDS) -> None:
        if viewers < 1:
            raise UsageError(f"--share-viewers {viewers}: give at least 1")
        self.secret = secrets.token_urlsafe(TOKEN_BYTES)
        self.viewers, self.watching = viewers, 0
        self._viewers_lock = threading.Lock()
        # a browser holds its stream and a few kept-alive connections for the page's files
        super().__init__(page.model, page.port, host, max_connections=4 * viewers + 8,
                         idle_seconds=idle_seconds, frames=page.frames,
                         handler=_AttendeeHandler, name="the attendees' view")

    @property
    def url(self) -> str:
        return f"{super().url}{self.secret}/"

    def admit(self) -> bool:
        """Takes a viewer's place, if one is free."""
        with self._viewers_lock:
            if self.watching >= self.viewers:
                return False
            self.watching += 1
            return True

    def leave(self) -> None:
        with self._viewers_lock:
            self.watching -= 1

    def full(self) -> bool:
        with self._viewers_lock:
            return self.watching >= self.viewers

    def token_matches(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self.secret.encode())


class _AttendeeHandler(_Handler):
    view: ShareView

    def _path(self) -> str | None:
        """The path after /TOKEN, or None once refused (403, or a redirect to /TOKEN/)."""
        _, _, rest = self.path.split("?")[0].partition("/")
        given, slash, after = rest.partition("/")
        if not self.view.token_matches(given):
            self._say(HTTPStatus.FORBIDDEN, "403 forbidden: this page needs the link the "
                      "trainer gave, with its token\n")
            return None
        if not slash:
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", f"/{given}/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return "/" + after

    def _say(self, status: HTTPStatus, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")  # a refused request's body is never read
        self.end_headers()
        self.close_connection = True
        if self.command != "HEAD":
            self.wfile.write(body)

    def _full(self) -> None:
        self._say(HTTPStatus.SERVICE_UNAVAILABLE, f"503 the room is full: {self.view.viewers} "
                  "viewers watch already; try again when one leaves\n")

    def do_HEAD(self) -> None:
        path = self._path()
        if path is not None:
            self._static(body=False, path=path)

    def do_GET(self) -> None:
        path = self._path()
        if path is None:
            return
        if path not in FILES:
            self.send_error(HTTPStatus.NOT_FOUND)
        elif path == "/events":
            if not self.view.admit():
                self._full()
                return
            try:
                self._events()
            finally:
                self.view.leave()
        elif path == "/" and self.view.full():
            self._full()
        else:
            self._static(body=True, path=path)

    def do_POST(self) -> None:
        if self._path() is not None:
            self._refuse()

    do_PUT = do_DELETE = do_PATCH = do_POST
