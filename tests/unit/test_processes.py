"""The process record: written whole, read back only when every record is sound; a truncated or
odd one reads as Malformed (never a traceback, never a PID that signals a process group)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.cluster import processes
from chaos.cluster.processes import Process
from chaos.statefile import Malformed

ETCD = Process("etcd", 4242, 1234, "/var/lib/chaos-drill/local/logs/etcd.log",
               ("/cache/etcd", "--name", "local"))
PROXY = Process("kube-proxy", 4343, 1240, "/logs/kube-proxy.log", ("/cache/kube-proxy",))


def test_a_saved_record_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "processes.json"
    processes.save(path, [ETCD, PROXY])
    assert processes.read(path) == [ETCD, PROXY]
    assert processes.load(path) == [ETCD, PROXY]


def test_no_record_is_no_process(tmp_path: Path) -> None:
    assert processes.read(tmp_path / "processes.json") == []


def test_a_truncated_record_is_malformed_and_load_sees_none(tmp_path: Path) -> None:
    path = tmp_path / "processes.json"
    processes.save(path, [ETCD, PROXY])
    whole = path.read_text()
    path.write_text(whole[: len(whole) // 2])
    found = processes.read(path)
    assert isinstance(found, Malformed) and found.path == path
    assert found.reason.startswith("truncated or not JSON")
    assert processes.load(path) == []


@pytest.mark.parametrize("record", [
    {"name": "x", "pid": 0, "start_time": 1, "log": "", "command": []},
    {"name": "x", "pid": -1, "start_time": 1, "log": "", "command": []},
    {"name": "x", "pid": 1, "start_time": 1, "log": "", "command": []},
    {"name": "x", "pid": True, "start_time": 1, "log": "", "command": []},
    {"name": "x", "pid": "42", "start_time": 1, "log": "", "command": []},
    {"name": "x", "pid": 42, "start_time": None, "log": "", "command": []},
    {"name": "x", "pid": 42, "start_time": 1, "log": "", "command": "sh -c x"},
    {"name": "x", "pid": 42, "start_time": 1, "log": "", "command": [1]},
    {"name": 7, "pid": 42, "start_time": 1, "log": "", "command": []},
    {"name": "x", "pid": 42, "start_time": 1, "log": ""},
    {"name": "x", "pid": 42, "start_time": 1, "log": "", "command": [], "extra": 1},
    ["x", 42],
], ids=["pid-0", "pid-minus-1", "init", "bool-pid", "string-pid", "no-start-time",
        "string-command", "number-in-command", "number-name", "missing-field", "extra-field",
        "not-an-object"])
def test_a_record_of_the_wrong_shape_makes_the_file_malformed(tmp_path: Path,
                                                              record: object) -> None:
    """PID 0 and -1 would signal a whole process group or every process: never read."""
    path = tmp_path / "processes.json"
    path.write_text(json.dumps([{**ETCD.__dict__, "command": list(ETCD.command)}, record]))
    found = processes.read(path)
    assert isinstance(found, Malformed)
    assert found.reason.startswith("unexpected content")


def test_an_object_instead_of_a_list_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "processes.json"
    path.write_text('{"etcd": 4242}')
    found = processes.read(path)
    assert isinstance(found, Malformed)
    assert found.reason == "unexpected content: a list of processes expected, not dict"
