"""Stopping a drill on SIGINT, SIGTERM and SIGHUP without deadlocks: the Python handlers only set
a flag and the C handler writes the signal number to a pipe (signal.set_wakeup_fd); a watcher
thread reads the pipe and does the work (setting the stop event, saying so) outside any signal
context, so no handler ever waits for a lock its own interrupted frame holds. The first signal
asks the drill to stop injecting, restore and write its results; the second exits at once."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

from chaos.cluster.base import Progress

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
QUIT_EXIT_CODE = 130
QUIT_MESSAGE = (b"\nchaos-drill: quit at once; the journal is on disk. Run 'chaos-drill restore' "
                b"to put back what the drill changed, 'chaos-drill report DIR' for its results\n")


class SignalStop:
    """Installs the handlers on start(); uninstalls them (and stops the watcher) on close()."""

    def __init__(self, stop: threading.Event, say: Progress,
                 quit_now: Callable[[], None] | None = None,
                 doing: str = "no more faults, restoring and writing results") -> None:
        self.stop, self.say, self.doing = stop, say, doing
        self.quit_now = quit_now or _quit_now
        self.received: list[int] = []
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._previous: dict[int, object] = {}
        self._old_wakeup_fd = -1
        self._thread = threading.Thread(target=self._watch, name="signal-watch", daemon=True)

    def start(self) -> SignalStop:
        """Only the main thread may install handlers; elsewhere this does nothing."""
        if threading.current_thread() is not threading.main_thread():
            return self
        self._old_wakeup_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._flag)
        self._thread.start()
        return self

    def close(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]
        if self._previous:
            signal.set_wakeup_fd(self._old_wakeup_fd)
        self._previous.clear()
        os.close(self._write_fd)  # the watcher's read ends with EOF
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        os.close(self._read_fd)

    def _flag(self, signum: int, frame: FrameType | None) -> None:
        """The handler: a list append is atomic under the GIL and takes no lock of ours."""
        self.received.append(signum)

    def _watch(self) -> None:
        count = 0
        while True:
            try:
                data = os.read(self._read_fd, 64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                count += 1
                if count == 1:
                    self.stop.set()
                    name = signal.Signals(signum).name
                    self.say(f"{name}: stopping; {self.doing} (Ctrl-C again to quit at once)")
                else:
                    self.quit_now()
                    return


def _quit_now() -> None:
    try:
        os.write(2, QUIT_MESSAGE)
    except OSError:
        pass
    os._exit(QUIT_EXIT_CODE)
