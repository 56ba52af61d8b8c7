"""A resilient raw watch: list, then watch from the last resourceVersion, resuming after any
break and re-listing when the version is too old. Events reach a callback as plain dicts with
their monotonic arrival time (when their bytes were read from the socket), so nothing is lost to
slow object deserialisation."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError, ProtocolError

OnEvent = Callable[[str, dict[str, Any], float], None]
"""(type, object, arrival monotonic seconds); type is ADDED, MODIFIED, DELETED, LISTED (one per
item of a fresh list) or SYNCED (after a list; object {"uids": [...]} names every item)."""

WATCH_SECONDS = 30
RETRY_SECONDS = 0.2


def _lines(response: Any) -> Iterator[tuple[bytes, float]]:
    """Each complete line with the monotonic time its last chunk was read from the socket, so
    a line's arrival does not wait on the handling of the lines before it in the same chunk."""
    pending, received = b"", 0.0
    for chunk in response.stream(65536, decode_content=True):
        received = time.monotonic()
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line, received
    if pending.strip():
        yield pending, received


class ResourceWatch:
    """Watches one list call (e.g. CoreV1Api.list_namespaced_pod with its arguments) in a
    thread until stop(); counts restarts so tests can see it resumed."""

    def __init__(self, name: str, list_call: Callable[..., Any], on_event: OnEvent,
                 *args: Any, only_new: bool = False, **kwargs: Any) -> None:
        self.name = name
        self.only_new = only_new
        self.list_call = list_call
        self.args = args
        self.kwargs = kwargs
        self.on_event = on_event
        self.resource_version = ""
        self.restarts = 0
        self.relists = 0
        self.synced = threading.Event()
        self.last_error: Exception | None = None
        """The last error that broke the list or watch (it is retried); None once it works."""
        self._stop = threading.Event()
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, name=f"watch-{name}", daemon=True)

    def start(self) -> ResourceWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            try:
                response.shutdown()
            except Exception:  # a response already closed is fine
                pass
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.resource_version:
                    self._list()
                self._watch()
            except (ApiException, HTTPError, ProtocolError, OSError, ValueError) as error:
                if self._stop.is_set():
                    return
                self.last_error = error
                self.restarts += 1
                self._stop.wait(RETRY_SECONDS)

    def _list(self) -> None:
        # with only_new, a one-item list just yields the version to watch from
        extra = {"limit": 1} if self.only_new else {}
        response = self.list_call(*self.args, _preload_content=False, _request_timeout=(5, 60),
                                  **extra, **self.kwargs)
        arrived = time.monotonic()
        body = json.loads(response.data)
        items = [] if self.only_new else body.get("items") or []
        for item in items:
            self.on_event("LISTED", item, arrived)
        uids = [item.get("metadata", {}).get("uid", "") for item in items]
        self.on_event("SYNCED", {"uids": uids}, arrived)
        self.resource_version = body["metadata"]["resourceVersion"]
        self.relists += 1
        self.last_error = None
        self.synced.set()

    def _watch(self) -> None:
        self._response = self.list_call(
            *self.args, watch=True, resource_version=self.resource_version,
            allow_watch_bookmarks=True, timeout_seconds=WATCH_SECONDS,
            _preload_content=False, _request_timeout=(5, WATCH_SECONDS + 15), **self.kwargs,
        )
        try:
            for line, arrived in _lines(self._response):
                if not line.strip():
                    continue
                self._handle(json.loads(line), arrived)
                if self._stop.is_set():
                    return
        finally:
            self._response.release_conn()
            self._response = None

    def _handle(self, event: dict[str, Any], arrived: float) -> None:
        kind, obj = event.get("type", ""), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:  # too old: list again
                self.resource_version = ""
            raise ValueError(obj.get("message", "watch error"))
        self.resource_version = obj.get("metadata", {}).get("resourceVersion", "") or (
            self.resource_version
        )
        if kind != "BOOKMARK":
            self.on_event(kind, obj, arrived)
