"""One chaos-drill at a time changes the local cluster: `up` and `down` hold an exclusive lock
on a file beside its state, so a second command (another terminal, a test run) waits for the
first instead of tearing down what it is starting."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from chaos.cluster.base import Progress
from chaos.errors import SetupError

WAIT_SECONDS = 600.0


@contextlib.contextmanager
def holding(path: Path, progress: Progress, wait: float = WAIT_SECONDS) -> Iterator[None]:
    """Holds PATH's lock; says once who holds it while waiting, and gives up after WAIT."""
    def waiting(holder: str) -> None:
        progress(f"waiting for another chaos-drill ({holder}) to finish changing the local "
                 "cluster")

    def overdue(holder: str) -> Exception:
        return SetupError(f"another chaos-drill ({holder}) has been changing the local cluster "
                          f"for over {wait:g}s: let it finish or stop it, then try again")

    with taken(path, wait, waiting, overdue):
        yield


@contextlib.contextmanager
def taken(path: Path, wait: float, waiting: Callable[[str], None],
          overdue: Callable[[str], Exception]) -> Iterator[None]:
    """Holds PATH's exclusive lock, writing this pid into it. While another process holds it,
    calls WAITING once with that holder; after WAIT seconds raises what OVERDUE makes of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as lock:
        deadline = time.monotonic() + wait
        said = False
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                lock.seek(0)
                holder = lock.read().strip() or "another process"
                if time.monotonic() > deadline:
                    raise overdue(holder) from None
                if not said:
                    waiting(holder)
                    said = True
                time.sleep(0.2)
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}\n")
        lock.flush()
        try:
            yield
        finally:
            lock.truncate(0)
            fcntl.flock(lock, fcntl.LOCK_UN)
