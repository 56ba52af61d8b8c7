"""The run journal: one JSON object per line, written, flushed and fsynced as each event happens,
so a crashed run keeps everything up to the crash. summary.py documents the event types. A write
that fails (a full disk) never raises in the writer's thread: the file keeps its whole lines, the
journal keeps the records it could not write in memory, and tells on_failure once."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from chaos.errors import ChaosDrillError, JournalError

_RESERVED = ("event", "ts", "mono")
CLI_REMEDY = "free space or pass --out DIR, then run chaos-drill restore if anything remains"
"""What the line of a failed write tells the reader to do (the operator's says its own)."""


@dataclass(frozen=True)
class JournalRecord:
    """One journal line: the event type, wall clock ts, monotonic seconds and its own fields."""

    event: str
    ts: str
    mono: float
    fields: Mapping[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class Journal:
    """An append-only journal file of one run; safe to write from several threads."""

    def __init__(
        self,
        stream: IO[bytes],
        wall: Callable[[], datetime] = _wall_clock,
        mono: Callable[[], float] = time.monotonic,
        path: str | Path | None = None,
        remedy: str = CLI_REMEDY,
    ) -> None:
        self._stream = stream
        self.remedy = remedy
        self._wall = wall
        self._mono = mono
        self._lock = threading.Lock()
        self.path = str(path if path is not None else getattr(stream, "name", "the journal"))
        self._size = _size_of(stream)
        """Bytes of whole lines in the file: what it is cut back to after a failed write."""
        self.failure: JournalError | None = None
        """Set by the first write that failed; no write touches the file after it."""
        self.unwritten: list[JournalRecord] = []
        """The records from the failed one on, in order, kept for the summary."""
        self.on_failure: Callable[[JournalError], None] | None = None
        """Told once, from the writing thread, when the first write fails."""

    @classmethod
    def open(
        cls,
        path: str | Path,
        wall: Callable[[], datetime] = _wall_clock,
        mono: Callable[[], float] = time.monotonic,
        remedy: str = CLI_REMEDY,
    ) -> Journal:
        """Create the journal at path (and its directory); one journal holds one run, so a
        journal with records already in it is refused, not appended to."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return cls(open(path, "xb", buffering=0), wall, mono, path, remedy)
        except FileExistsError:
            if path.stat().st_size:
                raise ChaosDrillError(f"{path} already holds the journal of another run: "
                                      "write this run to a new results folder") from None
        # empty: nothing to mix with
        return cls(open(path, "ab", buffering=0), wall, mono, path, remedy)

    def write(self, event: str, *, mono: float | None = None, **fields: Any) -> JournalRecord:
        """Append one event; mono defaults to now (pass it when the event was seen earlier)."""
        clash = [name for name in fields if name in _RESERVED]
        if clash:
            raise ValueError(f"journal field names {clash} are reserved")
        record = JournalRecord(
            event=event,
            ts=self._wall().isoformat(timespec="milliseconds"),
            mono=self._mono() if mono is None else mono,
            fields=fields,
        )
        line = json.dumps(
            {"event": event, "ts": record.ts, "mono": record.mono, **fields},
            default=_json_default,
            separators=(",", ":"),
        )
        with self._lock:
            if self.failure is None:
                try:
                    self._append((line + "\n").encode())
                    return record
                except OSError as error:
                    self._failed(error)
            self.unwritten.append(record)
            failure, first = self.failure, len(self.unwritten) == 1
        if first and failure is not None and self.on_failure is not None:
            self.on_failure(failure)
        return record

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._stream.write(view)
            if not written:
                raise OSError(errno.EIO, "the journal took no bytes")
            view = view[written:]
        self._stream.flush()
        os.fsync(self._stream.fileno())
        self._size += len(data)

    def _failed(self, error: OSError) -> None:
        """Remembers the failure and cuts a partly written line off the file."""
        why = error.strerror or str(error)
        self.failure = JournalError(f"cannot write the journal to {self.path}: {why}; "
                                    f"{self.remedy}")
        try:
            os.ftruncate(self._stream.fileno(), self._size)
            self._stream.seek(self._size)
        except (OSError, ValueError):  # not a file: nothing to cut
            pass

    def check(self) -> None:
        """Raises the failure of an earlier write, if any."""
        if self.failure is not None:
            raise self.failure

    def close(self) -> None:
        with self._lock, contextlib.suppress(OSError):  # a failed write was told already
            self._stream.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _size_of(stream: IO[bytes]) -> int:
    try:
        return os.fstat(stream.fileno()).st_size
    except (OSError, ValueError):
        return 0


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot journal a {type(value).__name__}: pass JSON-friendly values")


def read_journal(path: str | Path) -> list[JournalRecord]:
    """Every record of the journal at path; an unreadable last line (a crash mid-write) is
    dropped, an unreadable line before it is an error."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        message = f"cannot read journal {path}: {exc.strerror}; check the --out directory"
        raise ChaosDrillError(message) from exc
    return parse_journal(text, str(path))


def parse_journal(text: str, source: str = "<journal>") -> list[JournalRecord]:
    """The records in journal text; see read_journal."""
    lines = text.split("\n")
    records: list[JournalRecord] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = _parse_line(line)
        if record is not None:
            records.append(record)
        elif any(rest.strip() for rest in lines[number:]):
            raise ChaosDrillError(
                f"{source}:{number}: not a journal record; repair or delete that line"
            )
    return records


def _parse_line(line: str) -> JournalRecord | None:
    try:
        data = json.loads(line)
        if not isinstance(data, dict) or not isinstance(data.get("event"), str):
            return None
        mono = float(data.get("mono", 0.0))
    except (ValueError, TypeError):
        return None
    fields = {key: value for key, value in data.items() if key not in _RESERVED}
    return JournalRecord(data["event"], str(data.get("ts", "")), mono, fields)
