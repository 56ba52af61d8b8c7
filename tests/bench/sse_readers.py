"""COUNT readers of a live page's event stream, in a process of their own so that reading costs
the page's process nothing: `python sse_readers.py HOST PORT COUNT`. Prints `ready` once every
reader has its first state, reads (and drops) everything until stdin closes, then prints one
JSON line: readers still connected, bytes and state events read."""

from __future__ import annotations

import json
import selectors
import socket
import sys

REQUEST = "GET /events HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n"
MARK = b"event: state"


def main(host: str, port: int, count: int) -> None:
    selector = selectors.DefaultSelector()
    selector.register(sys.stdin, selectors.EVENT_READ)
    request = REQUEST.format(host=host, port=port).encode()
    tails: dict[socket.socket, bytes] = {}
    for _ in range(count):
        reader = socket.create_connection((host, port), timeout=10)
        reader.sendall(request)
        reader.setblocking(False)
        selector.register(reader, selectors.EVENT_READ)
        tails[reader] = b""
    waiting, read, states = set(tails), 0, 0
    while True:
        events = selector.select(30)
        if not events:
            break  # nothing for 30 s: the page or the parent is gone
        for key, _ in events:
            sock = key.fileobj
            if not isinstance(sock, socket.socket):  # stdin: the parent is done
                if not sys.stdin.readline():
                    print(json.dumps({"connected": len(tails), "bytes": read,
                                      "states": states}), flush=True)
                    return
                continue
            try:
                chunk = sock.recv(1 << 16)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                selector.unregister(sock)
                sock.close()
                del tails[sock]
                waiting.discard(sock)
                continue
            read += len(chunk)
            seen = tails[sock] + chunk  # a mark may straddle two reads
            states += seen.count(MARK)
            tails[sock] = seen[-(len(MARK) - 1):]
            if sock in waiting and MARK in seen:
                waiting.discard(sock)
                if not waiting:
                    print("ready", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
