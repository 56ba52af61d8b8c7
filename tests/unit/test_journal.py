"""The journal: one fsynced JSON line per event, read back even after a crash mid-write."""

from __future__ import annotations

import errno
import io
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chaos.errors import ChaosDrillError, JournalError
from chaos.results import JOURNAL_NAME, fresh_out_dir
from chaos.results.journal import Journal, parse_journal, read_journal

T0 = datetime(2025, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)


def open_journal(path: Path) -> Journal:
    ticks = iter([10.0, 11.5, 12.0])
    return Journal.open(path, wall=lambda: T0, mono=lambda: next(ticks))


def test_write_adds_ts_and_mono(tmp_path: Path) -> None:
    path = tmp_path / "out" / "journal.jsonl"
    with open_journal(path) as journal:
        journal.write("round_started", round=1)
        journal.write("phase", incident="r1-i1", phase="ready", mono=99.5, api_time=T0)
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    assert first == {"event": "round_started", "ts": "2025-01-01T12:00:00.123+00:00",
                     "mono": 10.0, "round": 1}
    second = json.loads(lines[1])
    assert second["mono"] == 99.5 and second["api_time"] == T0.isoformat()


def test_a_journal_with_records_is_never_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    with open_journal(path) as journal:
        journal.write("a")
    with pytest.raises(ChaosDrillError) as refused:
        open_journal(path)
    assert str(refused.value) == (f"{path} already holds the journal of another run: write "
                                  "this run to a new results folder")
    assert [r.event for r in read_journal(path)] == ["a"]


def test_an_empty_journal_is_reused(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.touch()
    with open_journal(path) as journal:
        journal.write("a")
    assert [r.event for r in read_journal(path)] == ["a"]


def test_fresh_out_dir_skips_folders_that_hold_a_journal(tmp_path: Path) -> None:
    base = tmp_path / "web-pod-kill"
    assert fresh_out_dir(base) == base
    base.mkdir()
    assert fresh_out_dir(base) == base  # an empty folder is fine
    for folder in (base, tmp_path / "web-pod-kill-2"):
        with open_journal(folder / JOURNAL_NAME) as journal:
            journal.write("drill_started")
    assert fresh_out_dir(base) == tmp_path / "web-pod-kill-3"


def test_reserved_field_names(tmp_path: Path) -> None:
    with open_journal(tmp_path / "j.jsonl") as journal, pytest.raises(ValueError, match="ts"):
        journal.write("x", ts="now")


def test_unserialisable_value(tmp_path: Path) -> None:
    with open_journal(tmp_path / "j.jsonl") as journal, pytest.raises(TypeError, match="set"):
        journal.write("x", values={1, 2})


def test_read_back_fields(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    with open_journal(path) as journal:
        journal.write("incident_closed", incident="r1-i1", recovered=True)
    (record,) = read_journal(path)
    assert (record.event, record.mono, record.get("incident")) == ("incident_closed", 10.0, "r1-i1")
    assert record.get("missing", 7) == 7


def test_truncated_last_line_is_dropped() -> None:
    text = '{"event":"a","ts":"t","mono":1}\n{"event":"b","ts":"t","mono":2}\n{"event":"c","ts'
    assert [r.event for r in parse_journal(text)] == ["a", "b"]


def test_zero_filled_tail_is_dropped() -> None:
    text = '{"event":"a","ts":"t","mono":1}\n\0\0\0\0'
    assert [r.event for r in parse_journal(text)] == ["a"]


def test_corrupt_line_before_the_end_is_an_error() -> None:
    text = '{"event":"a","ts":"t","mono":1}\nnot json\n{"event":"b","ts":"t","mono":2}\n'
    with pytest.raises(ChaosDrillError, match=r"^j.jsonl:2: not a journal record"):
        parse_journal(text, "j.jsonl")


def test_missing_journal(tmp_path: Path) -> None:
    with pytest.raises(ChaosDrillError, match="cannot read journal"):
        read_journal(tmp_path / "nope.jsonl")


class FillsUp(io.FileIO):
    """A journal file on a disk with ROOM bytes left: a write beyond them stores what fits,
    then fails as a full disk does."""

    def __init__(self, path: Path, room: int) -> None:
        super().__init__(path, "xb")
        self.room = room

    def write(self, data: Any) -> int:
        if not self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        taken = super().write(bytes(data)[: self.room])
        assert taken is not None
        self.room -= taken
        return taken


def test_a_full_disk_keeps_whole_lines_and_tells_once(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(FillsUp(path, room=150), wall=lambda: T0, path=path)
    told: list[JournalError] = []
    journal.on_failure = told.append
    journal.write("round_started", round=1)  # about 80 bytes: fits
    journal.write("fault_injected", incident="r1-i1")  # half of it fits: cut off again
    journal.write("incident_closed", incident="r1-i1")  # never reaches the file
    journal.close()  # no error: the failure was told already
    assert [r.event for r in read_journal(path)] == ["round_started"]
    assert path.read_text().endswith("}\n"), "the partial line is cut off"
    assert [r.event for r in journal.unwritten] == ["fault_injected", "incident_closed"]
    assert len(told) == 1 and told[0] is journal.failure
    assert str(told[0]) == (f"cannot write the journal to {path}: No space left on device; "
                            "free space or pass --out DIR, then run chaos-drill restore if "
                            "anything remains")
    with pytest.raises(JournalError):
        journal.check()


def test_a_write_to_a_full_device_fails_without_raising() -> None:
    journal = Journal(open("/dev/full", "wb", buffering=0), path="/dev/full")
    journal.check()
    record = journal.write("a", n=1)
    assert record.get("n") == 1 and journal.unwritten == [record]
    assert journal.failure is not None
    assert "/dev/full: No space left on device" in str(journal.failure)
    journal.close()
