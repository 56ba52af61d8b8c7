"""The workshop presenter's keys, from the page and from the terminal. The page's keys arrive as
POST /control with a body of `next`, `repeat` or `skip`; a POST is taken only from a loopback
address and only with the run's random token in its X-Presenter-Token header, which only the
page served to loopback carries (a <meta> tag: the page's policy allows no inline script). The
custom header also makes any other site's request a CORS preflight, which this server never
answers. In the terminal, Enter is next, r and s (then Enter) repeat and skip."""

from __future__ import annotations

import hmac
import io
import ipaddress
import queue
import secrets
import threading
from collections.abc import Callable
from email.message import Message
from http import HTTPStatus
from typing import IO, TextIO

from chaos.view.presenter import KEYS

TOKEN_HEADER = "X-Presenter-Token"
MAX_BODY = 16
TERMINAL_KEYS = {"": "next", "n": "next", "r": "repeat", "s": "skip"}


def new_token() -> str:
    return secrets.token_urlsafe(32)


def is_loopback(address: str) -> bool:
    try:
        found = ipaddress.ip_address(address)
    except ValueError:
        return False
    mapped = getattr(found, "ipv4_mapped", None)
    return bool((mapped or found).is_loopback)


def with_token(page: bytes, token: str) -> bytes:
    """The page with the presenter's token in a <meta> tag its script reads."""
    tag = f'<meta name="presenter-token" content="{token}">\n'.encode()
    return page.replace(b"</head>", tag + b"</head>", 1)


def check_post(headers: Message, body: IO[bytes] | io.BufferedIOBase, client: str,
               token: str) -> tuple[HTTPStatus, str]:
    """The answer to a POST /control and the key it carries ('' when refused)."""
    if not is_loopback(client):
        return HTTPStatus.FORBIDDEN, ""
    if not hmac.compare_digest(headers.get(TOKEN_HEADER, "").encode(), token.encode()):
        return HTTPStatus.FORBIDDEN, ""
    try:
        length = int(headers.get("Content-Length", "0"))
    except ValueError:
        return HTTPStatus.BAD_REQUEST, ""
    if not 0 < length <= MAX_BODY:
        return HTTPStatus.BAD_REQUEST, ""
    key = body.read(length).decode("ascii", "replace").strip()
    if key not in KEYS:
        return HTTPStatus.BAD_REQUEST, ""
    return HTTPStatus.NO_CONTENT, key


class Controls:
    """Keys from any thread, for the command's loop: `get` waits for the next one. While a
    step runs, its `skip` stops it at once (the loop is busy running it) and other keys are
    dropped, said by SAY."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.keys: queue.Queue[str] = queue.Queue()
        self.running: threading.Event | None = None
        """The running step's stop event, while one runs."""
        self.skipped = False
        self._lock = threading.Lock()

    def press(self, key: str) -> None:
        with self._lock:
            running = self.running
            if running is None:
                self.keys.put(key)
                return
            if key == "skip":
                self.skipped = True
                running.set()
                self.say("skip: stopping this step (it restores what it changed)")
            else:
                self.say(f"{key}: a step is running; s skips it, Ctrl-C ends the workshop")

    def run_with(self, stop: threading.Event | None) -> None:
        """Marks a step running (its stop event) or none (None)."""
        with self._lock:
            self.running, self.skipped = stop, False
            while stop is not None and not self.keys.empty():
                self.keys.get_nowait()  # keys pressed before it started are stale

    def get(self, timeout: float) -> str | None:
        try:
            return self.keys.get(timeout=timeout)
        except queue.Empty:
            return None


def read_terminal(stream: TextIO, controls: Controls) -> threading.Thread:
    """A daemon thread turning lines typed in the terminal into keys, until end of input."""

    def read() -> None:
        for line in stream:
            key = TERMINAL_KEYS.get(line.strip().lower())
            if key is None:
                controls.say("keys: Enter runs the step or goes on, r + Enter repeats, "
                             "s + Enter skips, Ctrl-C ends")
            else:
                controls.press(key)

    thread = threading.Thread(target=read, name="terminal-keys", daemon=True)
    thread.start()
    return thread
