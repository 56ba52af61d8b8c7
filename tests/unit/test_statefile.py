"""State files: a crash while writing leaves the old file whole, a truncated or malformed one is
read as Malformed naming the file (never a traceback), and only the owner may read them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from chaos import statefile
from chaos.statefile import Malformed


def as_dict(content: Any) -> dict[str, str]:
    if not isinstance(content, dict):
        raise TypeError(f"a JSON object expected, not {type(content).__name__}")
    return {str(k): str(v) for k, v in content.items()}


def test_written_content_reads_back_and_only_root_may_read_it(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    statefile.write_json(path, {"a": "1"})
    assert statefile.read_json(path, as_dict) == {"a": "1"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_the_file_is_0600_before_any_byte_is_in_it_and_the_rename_is_fsynced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[tuple[bool, int]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        mode = os.fstat(fd).st_mode
        synced.append((stat.S_ISDIR(mode), stat.S_IMODE(mode)))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    statefile.write_json(tmp_path / "state.json", {"a": "1"})
    assert synced == [(False, 0o600), (True, stat.S_IMODE(tmp_path.stat().st_mode))]


@pytest.mark.parametrize("crash_in", ["fsync", "replace"])
def test_a_crash_while_writing_leaves_the_old_file_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_in: str) -> None:
    path = tmp_path / "state.json"
    statefile.write_json(path, {"old": "1"})

    def crash(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, crash_in, crash)
    with pytest.raises(OSError):
        statefile.write_json(path, {"new": "2"})
    monkeypatch.undo()
    assert statefile.read_json(path, as_dict) == {"old": "1"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_partial_file_left_by_a_killed_writer_is_replaced(tmp_path: Path) -> None:
    (tmp_path / ".state.json.partial").write_text('{"half')
    statefile.write_json(tmp_path / "state.json", {"a": "1"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_missing_file_reads_as_none() -> None:
    assert statefile.read_json(Path("/nonexistent/state.json"), as_dict) is None


@pytest.mark.parametrize("text, reason", [
    ("", "empty"),
    ('{"net/ipv4/ip_forward": "0", "vm/overcom', "truncated or not JSON"),
    ("[1, 2", "truncated or not JSON"),
    ("\xff\xfe{", "not UTF-8"),
    ("[]", "unexpected content: a JSON object expected, not list"),
], ids=["empty", "truncated-object", "truncated-list", "not-utf8", "wrong-shape"])
def test_a_truncated_or_malformed_file_reads_as_malformed_naming_it(
        tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(text.encode("latin-1"))
    found = statefile.read_json(path, as_dict)
    assert isinstance(found, Malformed)
    assert found.path == path and found.reason.startswith(reason)
    line = found.warning("restoring nothing")
    assert line.startswith(f"{path} is unreadable ({reason}") and line.endswith(
        "): restoring nothing")
    assert "\n" not in line


def test_a_file_truncated_at_every_byte_reads_as_malformed_or_whole(tmp_path: Path) -> None:
    """What a crash in the middle of an in-place write leaves, at each possible length."""
    whole = json.dumps({"net/ipv4/ip_forward": "0", "kernel/panic": "0"}, indent=1)
    path = tmp_path / "state.json"
    for length in range(len(whole)):
        path.write_text(whole[:length])
        assert isinstance(statefile.read_json(path, as_dict), Malformed), whole[:length]
    path.write_text(whole)
    assert statefile.read_json(path, as_dict) == json.loads(whole)
