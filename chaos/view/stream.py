"""The live page's event stream: the view model's state as one server-sent event, built at most
once per tick and shared by every browser, so a room of them costs one snapshot per tick, not
one each (a snapshot takes the model's lock, which the watches and the prober need)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from chaos.view.model import ViewModel

TICK_SECONDS = 0.05
"""At most twenty snapshots a second: probes alone change the state 20 times."""


class Frames:
    """The latest `state` event of MODEL, rebuilt only when a browser needs a newer one and the
    last was built at least TICK_SECONDS ago."""

    def __init__(self, model: ViewModel, tick_seconds: float = TICK_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.model, self.tick, self.clock = model, tick_seconds, clock
        self._lock = threading.Lock()
        self._version = -1
        self._frame = b""
        self._built = -tick_seconds

    def after(self, seen: int, timeout: float) -> tuple[int, bytes] | None:
        """The latest frame and its version once the model has moved past version SEEN (waiting
        up to TIMEOUT seconds for that), else None. The last frame built serves every browser
        that has not had it, or for a tick after it was built; a browser that had it gets a
        new one (the web view makes each wait a tick between frames, so builds stay a tick
        apart)."""
        if self.model.wait_change(seen, timeout) == seen:
            return None
        with self._lock:  # one browser builds; the others wait for it and share the frame
            stale = self._version != self.model.version
            if self._version <= seen or (stale and self.clock() - self._built >= self.tick):
                self._build()
            return self._version, self._frame

    def _build(self) -> None:
        snapshot = self.model.snapshot()
        snapshot["sent"] = round(time.time() * 1000)  # wall ms: pages measure lag by it
        data = json.dumps(snapshot, separators=(",", ":"))
        self._version, self._frame = snapshot["version"], f"event: state\ndata: {data}\n\n".encode()
        self._built = self.clock()
