"""Signals stop a drill without deadlocks: a child process prints through the live view to a
pseudo-terminal as fast as it can (so a signal lands in the middle of output) and must stop on
the first SIGINT, SIGTERM or SIGHUP, and quit at once on the second."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from support import Output

CHILD = """
import sys, threading
from chaos.view.live import LiveView
from chaos.drill.signals import SignalStop

view = LiveView(sys.stderr)
stop = threading.Event()
signals = SignalStop(stop, view.say).start()
view.say("ready")
count = 0
ignore_stop = sys.argv[1] == "ignore"
while ignore_stop or not stop.is_set():
    count += 1
    view.say(f"line {count}")
view.say(f"stopped after {count} lines")
signals.close()
"""


def start_child(mode: str) -> tuple[subprocess.Popen[bytes], Output]:
    leader, follower = os.openpty()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    output = Output(leader)
    output.wait_for("ready", timeout=30)
    return proc, output


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        pytest.fail(f"the child did not exit within {timeout}s of the signal: a deadlock")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_first_signal_stops_in_the_middle_of_output(signum: int) -> None:
    rng = random.Random(signum)
    for _ in range(8):  # each time at another moment of the output
        proc, output = start_child("stop")
        time.sleep(rng.uniform(0.0, 0.2))
        proc.send_signal(signum)
        assert wait_exit(proc, 10) == 0
        text = output.finish(10)
        assert "stopped after" in text
        assert f"{signal.Signals(signum).name}: stopping" in text


def test_second_signal_quits_at_once() -> None:
    proc, output = start_child("ignore")
    proc.send_signal(signal.SIGINT)
    output.wait_for("SIGINT: stopping", timeout=10)
    proc.send_signal(signal.SIGINT)
    assert wait_exit(proc, 5) == 130
    assert "quit at once" in output.finish(10)


def test_a_closed_terminal_does_not_stop_the_work() -> None:
    leader, follower = os.openpty()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, "stop"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    Output(leader).wait_for("ready", timeout=30)
    os.close(leader)  # the terminal goes away: writes now fail with EIO
    proc.send_signal(signal.SIGHUP)
    assert wait_exit(proc, 10) == 0
