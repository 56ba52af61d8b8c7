"""Saved host sysctls are put back only under the names the cluster itself changes, and only as
numbers: anything else in the file (an absolute path, another setting, a word) is skipped with one
line each while the rest is restored; an unreadable file restores nothing and says so once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.cluster import network, sysctls


@pytest.fixture
def proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for /proc/sys holding the local cluster's sysctls, every one at "7"."""
    root = tmp_path / "proc-sys"
    for name in network.RESTORED_SYSCTLS:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("7\n")
    monkeypatch.setattr(sysctls, "PROC_SYS", root)
    return root


@pytest.mark.parametrize("name, value, reason", [
    ("kernel/panic", "0", None),
    ("net/ipv4/ip_local_port_range", "32768\t60999", "not a setting chaos-drill changes"),
    ("/etc/shadow", "0", "not a setting chaos-drill changes"),
    ("kernel/../../etc/passwd", "0", "not a setting chaos-drill changes"),
    ("kernel/panic", "0\nroot::0:0", "'0\\nroot::0:0' is not a sysctl value"),
    ("kernel/panic", 0, "0 is not a sysctl value"),
    ("kernel/panic", "", "'' is not a sysctl value"),
])
def test_skip_reason(name: str, value: object, reason: str | None) -> None:
    assert sysctls.skip_reason(name, value, network.RESTORED_SYSCTLS) == reason


def test_several_numbers_are_one_value() -> None:
    assert sysctls.skip_reason("a/b", "4096 87380\t6291456", ("a/b",)) is None


def test_only_known_names_are_restored_and_each_other_is_skipped_with_one_line(
        tmp_path: Path, proc: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("1\n")
    saved = tmp_path / "sysctls.json"
    saved.write_text(json.dumps({"kernel/panic": "0", str(outside): "0",
                                 "vm/overcommit_memory": "1", "fs/file-max": "9"}))
    said: list[str] = []
    network.restore_sysctls(saved, said.append)
    assert (proc / "kernel/panic").read_text() == "0"
    assert (proc / "vm/overcommit_memory").read_text() == "1"
    assert outside.read_text() == "1\n", "an absolute path is never a sysctl"
    assert not (proc / "fs/file-max").exists()
    assert said == [
        f"not restoring {str(outside)!r} from {saved}: not a setting chaos-drill changes",
        f"not restoring 'fs/file-max' from {saved}: not a setting chaos-drill changes",
    ]
    assert not saved.exists()


def test_a_truncated_file_restores_nothing_and_says_so_in_one_line(
        tmp_path: Path, proc: Path) -> None:
    saved = tmp_path / "sysctls.json"
    saved.write_text('{"kernel/panic": "0", "vm/overcommit_mem')
    said: list[str] = []
    network.restore_sysctls(saved, said.append)
    assert [(proc / name).read_text() for name in network.RESTORED_SYSCTLS] == [
        "7\n"] * len(network.RESTORED_SYSCTLS)
    (line,) = said
    assert line.startswith(f"{saved} is unreadable (truncated or not JSON: ")
    assert line.endswith("): the sysctls it held are left as they are: net.ipv4.ip_forward, "
                         "net.bridge.bridge-nf-call-iptables, vm.overcommit_memory, "
                         "vm.panic_on_oom, kernel.panic, kernel.panic_on_oops, "
                         "kernel.keys.root_maxkeys, kernel.keys.root_maxbytes")
    assert not saved.exists()


def test_saving_keeps_the_values_an_earlier_up_saved(tmp_path: Path, proc: Path) -> None:
    saved = tmp_path / "sysctls.json"
    network.save_sysctls(saved, print)
    (proc / "kernel/panic").write_text("10\n")  # as kubelet sets it
    network.save_sysctls(saved, print)
    assert json.loads(saved.read_text()) == dict.fromkeys(network.RESTORED_SYSCTLS, "7")


def test_saving_over_a_truncated_file_says_so_and_saves_the_values_of_now(
        tmp_path: Path, proc: Path) -> None:
    saved = tmp_path / "sysctls.json"
    saved.write_text('{"kernel/pan')
    said: list[str] = []
    network.save_sysctls(saved, said.append)
    (line,) = said
    assert line.startswith(f"{saved} is unreadable (") and line.endswith(
        "): saving the values of now instead")
    assert json.loads(saved.read_text()) == dict.fromkeys(network.RESTORED_SYSCTLS, "7")
