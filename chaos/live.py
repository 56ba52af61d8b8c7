"""The live terminal view for workshops: one status line, redrawn in place, shows every pod of
the target (Ready, starting, terminating) while progress lines scroll above it."""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

from chaos.observe.observer import Observer
from chaos.targeting import PodInfo

GLYPHS = {"ready": "\u25cf", "starting": "\u25cb", "terminating": "\u2715"}
COLOURS = {"ready": "\x1b[32m", "starting": "\x1b[33m", "terminating": "\x1b[31m"}
RESET = "\x1b[0m"


def pod_state(pod: PodInfo) -> str:
    if pod.deleting:
        return "terminating"
    return "ready" if pod.available else "starting"


def status_line(pods: list[PodInfo], workload: str, colour: bool) -> str:
    """e.g. `web 2/3 ready  ● ● ○  (● ready ○ starting ✕ terminating)`."""
    states = [pod_state(p) for p in sorted(pods, key=lambda p: p.created_at)]
    ready = sum(1 for s in states if s == "ready")
    marks = " ".join((COLOURS[s] + GLYPHS[s] + RESET) if colour else GLYPHS[s] for s in states)
    legend = "(\u25cf ready \u25cb starting \u2715 terminating)"
    return f"{workload} {ready}/{len(states)} ready  {marks}  {legend}"


class LiveView:
    """Wraps progress output; on a terminal it keeps a live pod line at the bottom."""

    def __init__(self, out: TextIO | None = None, refresh_seconds: float = 0.2) -> None:
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self.refresh = refresh_seconds
        self.observer: Observer | None = None
        self.workload = ""
        self._line = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def say(self, message: str) -> None:
        with self._lock:
            redraw = self._line if self.tty else ""
            self._write(("\r\x1b[2K" if redraw else "") + f"chaos-drill: {message}\n" + redraw)

    def _write(self, text: str) -> None:
        """Writes and flushes; a closed terminal (SIGHUP) must not stop the drill's restore."""
        try:
            self.out.write(text)
            self.out.flush()
        except (OSError, ValueError):
            self.tty = False
            self._line = ""

    def attach(self, observer: Observer, workload: str) -> None:
        self.observer, self.workload = observer, workload
        if self.tty:
            self._thread = threading.Thread(target=self._run, name="live-view", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
        with self._lock:
            if self.tty and self._line:
                self._write("\r\x1b[2K")
            self._line = ""

    def _run(self) -> None:
        while not self._stop.wait(self.refresh):
            assert self.observer is not None
            pods: dict[str, Any] = self.observer.pods()
            line = status_line([PodInfo.from_dict(p) for p in pods.values()], self.workload,
                               colour=True)
            with self._lock:
                if self.tty and line != self._line:
                    self._line = line
                    self._write("\r\x1b[2K" + line)
