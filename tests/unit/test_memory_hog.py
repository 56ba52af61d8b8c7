"""oom_kill's memory hog as far as it is pure: reading the runtime's task list, /proc/PID/cgroup,
the cgroup's limit and /proc/PID/stat, and the order of the hog's steps."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from chaos.cluster import memory_hog, node_access
from chaos.cluster.base import MemoryHog
from chaos.errors import FaultError

MAIN = "5d0c9a1e8b7f2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4"
TASKS = """TASK                                                                PID      STATUS
5d0c9a1e8b7f2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4    4711     RUNNING
9f0e1d2c3b4a5968778695a4b3c2d1e0f9e8d7c6b5a4938271605f4e3d2c1b0a    4800     STOPPED
"""


def test_the_main_pid_is_read_from_the_running_task() -> None:
    assert memory_hog.task_pid(TASKS, MAIN) == 4711


@pytest.mark.parametrize("container", [
    "9f0e1d2c3b4a5968778695a4b3c2d1e0f9e8d7c6b5a4938271605f4e3d2c1b0a", "absent"])
def test_a_stopped_or_unknown_container_is_refused(container: str) -> None:
    with pytest.raises(FaultError, match="has no running task: is the pod Running"):
        memory_hog.task_pid(TASKS, container)


def test_the_memory_controller_line_gives_the_cgroup() -> None:
    text = ("12:pids:/kubepods/burstable/pod1/abc\n"
            "5:cpu,cpuacct:/kubepods/burstable/pod1/abc\n"
            "4:memory:/node-1-pods/kubepods/burstable/pod1/abc\n"
            "0::/\n")
    assert memory_hog.memory_cgroup(text) == "/node-1-pods/kubepods/burstable/pod1/abc"


def test_cgroup_v2_alone_is_refused_with_what_to_use() -> None:
    with pytest.raises(FaultError) as caught:
        memory_hog.memory_cgroup("0::/kubepods.slice/abc\n")
    assert str(caught.value) == ("the node has no cgroup v1 memory controller: oom_kill needs "
                                 "one (on cgroup v2, use container_kill)")


def test_a_container_without_a_limit_is_refused() -> None:
    assert memory_hog.check_limit("67108864\n", "abc") == 64 * 2**20
    with pytest.raises(FaultError, match="container abc has no memory limit in its cgroup: set "
                                         "resources.limits.memory"):
        memory_hog.check_limit("9223372036854771712\n", "abc")


def test_the_hog_steps_run_in_order_and_no_piece_holds_more_than_its_share() -> None:
    command = memory_hog.hog_command(4711, "/sys/fs/cgroup/memory/pods/abc", 64 * 2**20)
    assert command[:6] == ["nsenter", "--target", "4711", "--pid", "--", "setsid"]
    script = command[-1]
    steps = ["echo 1000 > /proc/4711/oom_score_adj",
             "> /sys/fs/cgroup/memory/pods/abc/cgroup.procs", 'echo "$pid',
             "head -c 4194304 /dev/zero", "| tail &"]
    where = [script.index(step) for step in steps]
    assert where == sorted(where), script
    assert "seq 20" in script and memory_hog.PIECES * 4194304 > 64 * 2**20


CID = "b9d57bebdb9d2534902424b9fdd17f72220e34942fb6f5d611f7e9b38f797303"
POD = "/kubepods/burstable/pod7c6d92f2-18ec-4b6c-8f02-ab68bfe3a355"
KILLS = f"""\
[39282.109927] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,\
oom_memcg={POD},task_memcg={POD}/{CID},task=busybox,pid=18864,uid=65534
[39282.109949] Memory cgroup out of memory: Killed process 18864 (busybox) total-vm:1312kB
[39282.129379] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,\
oom_memcg={POD},task_memcg={POD}/{CID},task=tail,pid=19403,uid=0
[39290.000001] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,\
oom_memcg={POD},task_memcg={POD}/0ther{CID[5:]},task=busybox,pid=20001,uid=65534
[39299.000001] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,\
oom_memcg=/kubelet.slice/x.slice,task_memcg=/kubelet.slice/x.slice/cri-containerd-{CID}.scope,\
task=busybox,pid=1,uid=0
"""


def test_the_kernels_oom_kills_of_a_container_are_counted_from_its_log() -> None:
    """Each kill is one oom-kill line naming the victim's cgroup: cgroupfs names it by the ID,
    systemd by cri-containerd-ID.scope; other containers' kills do not count."""
    assert memory_hog.oom_kill_count(KILLS, CID) == 3
    assert memory_hog.oom_kill_count(KILLS, "f" * 64) == 0
    assert memory_hog.oom_kill_count("", CID) == 0


def test_the_hog_reports_its_pid_and_start_time_or_nothing() -> None:
    assert memory_hog.parse_report("4812 2437906\n") == (4812, 2437906)
    for line in ("", "sh: 1: cannot create /proc/4711/oom_score_adj: Permission denied\n",
                 "4812\n"):
        assert memory_hog.parse_report(line) is None


def test_a_process_stat_gives_its_state_and_start_time() -> None:
    line = ("4812 (tail (x) y) S 4811 4812 4812 0 -1 4194304 97 0 0 0 0 0 0 0 20 0 1 0 "
            "2437906 6983680 1600 18446744073709551615\n")
    assert memory_hog.parse_stat(line) == ("S", 2437906)
    assert memory_hog.parse_stat("") is None


def test_stop_kills_the_hogs_whole_group_and_only_the_process_its_record_names() -> None:
    """On this host, as the local cluster's nodes are: a stand-in hog (its own process group,
    a child holding it) is killed whole; one whose start time differs is left alone."""
    script = ("pid=$(cut -d ' ' -f 4 /proc/self/stat)\n"
              "echo \"$pid $(cut -d ' ' -f 22 /proc/$pid/stat)\"\n"
              "sleep 60 & exec sleep 60")
    access = node_access.NodeAccess("host", (), ("true",))
    hogs = memory_hog.Hogs()
    launchers = [subprocess.Popen(["setsid", "sh", "-c", script], stdout=subprocess.PIPE,
                                  text=True) for _ in range(2)]
    try:
        started = [memory_hog.parse_report(memory_hog._first_line(p, 10)) for p in launchers]
        assert started[0] is not None and started[1] is not None
        hog = MemoryHog("host", started[0][0], started[0][1], "c", 1)
        stranger = MemoryHog("host", started[1][0], started[1][1] + 1, "c", 1)
        hogs.launchers[("host", hog.pid)] = launchers[0]
        assert hogs.stop(access, hog) is True
        assert launchers[0].returncode == -signal.SIGKILL
        deadline = time.monotonic() + 5  # its members got the same SIGKILL; they are exiting
        while subprocess.run(["pgrep", "-g", str(hog.pid)], capture_output=True,
                             timeout=10).stdout:
            assert time.monotonic() < deadline, "a member of the hog's group survived"
            time.sleep(0.05)
        assert hogs.stop(access, hog) is False
        assert hogs.stop(access, stranger) is False and launchers[1].poll() is None
    finally:
        for process in launchers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
