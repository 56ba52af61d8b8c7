"""Bounded HTTP servers for the live page and the exporter: at most MAX_CONNECTIONS connections at
a time, one thread each; no read or write on a connection waits longer than IDLE_SECONDS, so a
client that sends no request, or stops reading, is dropped; a request's line and headers must
all arrive within HEADER_SECONDS (a BoundedHandler's), so a client that trickles a byte at a
time is dropped too; a connection over the cap is answered 503 and closed at once, with no
thread."""

from __future__ import annotations

import io
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import BaseRequestHandler
from typing import Any

Request = socket.socket | tuple[bytes, socket.socket]
"""What socketserver hands over; a TCP server always gets the socket."""
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n")
CLOSE_SECONDS = 2.0
"""How long close() waits for the connections' threads to end."""
HEADER_SECONDS = 10.0
"""How long a request's line and headers may take to arrive, in all."""


class BoundedHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer with a connection cap and an idle timeout; server_close() also ends
    the open connections."""

    daemon_threads = True
    block_on_close = False  # server_close() waits itself, with a deadline
    request_queue_size = 1024  # a room of browsers may connect at once

    def __init__(self, address: tuple[str, int], handler: type[BaseRequestHandler],
                 max_connections: int, idle_seconds: float,
                 header_seconds: float = HEADER_SECONDS) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.idle_seconds = idle_seconds
        self.header_seconds = header_seconds
        self._slots = threading.BoundedSemaphore(max_connections)
        self._open: set[socket.socket] = set()
        self._changed = threading.Condition()
        super().__init__(address, handler)

    def open_connections(self) -> int:
        """How many connections hold a slot now."""
        with self._changed:
            return len(self._open)

    def verify_request(self, request: Request, client_address: Any) -> bool:
        """Takes a slot for the connection, or turns it away here, in the accepting thread."""
        assert isinstance(request, socket.socket)
        if not self._slots.acquire(blocking=False):
            _turn_away(request)
            return False  # socketserver closes it
        request.settimeout(self.idle_seconds)  # bounds every read and write of the handler
        with self._changed:
            self._open.add(request)
        return True

    def shutdown_request(self, request: Request) -> None:
        """Closes a connection and frees its slot (a turned-away one had none)."""
        assert isinstance(request, socket.socket)
        with self._changed:
            held = request in self._open
            self._open.discard(request)
        super().shutdown_request(request)
        if held:
            self._slots.release()
            with self._changed:
                self._changed.notify_all()

    def handle_error(self, request: Request, client_address: Any) -> None:
        """Quiet for a client that went away or went silent; a traceback for anything else."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def server_close(self) -> None:
        """Stops listening, ends the open connections and waits (a little) for their threads."""
        super().server_close()
        with self._changed:
            for connection in self._open:
                try:
                    connection.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked on it
                except OSError:
                    pass
            self._changed.wait_for(lambda: not self._open, CLOSE_SECONDS)


class BoundedHandler(BaseHTTPRequestHandler):
    """A handler whose request line and headers must arrive within the server's header_seconds
    in all, not only within idle_seconds per read; the body and the answer are not bounded so
    (an event stream lasts)."""

    server: BoundedHTTPServer

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the socket's own file: reads go through the deadline instead
        self._reader = _DeadlineReader(self.connection, self.server.idle_seconds)
        self.rfile = io.BufferedReader(self._reader)
        self._reader.arm(self.server.header_seconds)

    def handle_one_request(self) -> None:
        self._reader.arm(self.server.header_seconds)  # each request of a kept-alive connection
        super().handle_one_request()

    def parse_request(self) -> bool:
        try:
            return super().parse_request()
        finally:
            self._reader.disarm()


class _DeadlineReader(io.RawIOBase):
    """Reads a socket, each read waiting at most IDLE seconds, or until the deadline if armed."""

    def __init__(self, connection: socket.socket, idle: float) -> None:
        self.connection, self.idle = connection, idle
        self.deadline: float | None = None

    def arm(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def disarm(self) -> None:
        self.deadline = None
        self.connection.settimeout(self.idle)  # writes wait IDLE again

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wait = self.idle
        if self.deadline is not None:
            wait = min(wait, self.deadline - time.monotonic())
            if wait <= 0:
                raise TimeoutError("the request's headers took too long")
        self.connection.settimeout(wait)
        return self.connection.recv_into(buffer)


def _turn_away(connection: socket.socket) -> None:
    """Answers 503 if the socket takes it at once; never blocks the accepting thread."""
    connection.setblocking(False)
    try:
        connection.recv(65536)  # what already came, so that closing sends FIN rather than RST
    except OSError:
        pass
    try:
        connection.send(BUSY)
    except OSError:
        pass
