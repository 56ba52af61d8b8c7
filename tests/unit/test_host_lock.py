"""The local cluster's lock: a second `up` or `down` waits for the first, says who holds it, and
gives up in one line after its wait."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from chaos.cluster import host_lock
from chaos.errors import SetupError

HOLD = """
import sys, time
from pathlib import Path
from chaos.cluster import host_lock
with host_lock.holding(Path(sys.argv[1]), print):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def holder(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding PATH's lock for SECONDS, once it printed 'held'."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    out = proc.stdout
    assert out is not None
    line = [""]
    reader = threading.Thread(target=lambda: line.__setitem__(0, out.readline()), daemon=True)
    reader.start()
    reader.join(30)
    assert line[0] == "held\n", line
    return proc


def test_a_second_holder_waits_for_the_first_and_names_it(tmp_path: Path) -> None:
    path = tmp_path / "local.lock"
    first = holder(path, 1.0)
    said: list[str] = []
    try:
        began = time.monotonic()
        with host_lock.holding(path, said.append, wait=30):
            waited = time.monotonic() - began
        assert said == [f"waiting for another chaos-drill (pid {first.pid}) to finish changing "
                        "the local cluster"]
        assert waited >= 0.5, waited
    finally:
        first.kill()
        first.wait(timeout=30)


def test_it_gives_up_in_one_line_after_its_wait(tmp_path: Path) -> None:
    path = tmp_path / "local.lock"
    first = holder(path, 30.0)
    try:
        with pytest.raises(SetupError) as caught, host_lock.holding(path, print, wait=0.5):
            pass
        assert str(caught.value) == (
            f"another chaos-drill (pid {first.pid}) has been changing the local cluster for over "
            "0.5s: let it finish or stop it, then try again")
    finally:
        first.kill()
        first.wait(timeout=30)
    with host_lock.holding(path, print, wait=1):  # free again once its holder is gone
        assert path.read_text() == f"pid {os.getpid()}\n"
