"""State files that outlive a crash: written whole or not at all (a temporary file beside the
target, 0600 or the mode asked from its creation, fsynced, renamed over it, the directory
fsynced), and read back as content or as a `Malformed` result that names the file, never as a
traceback. The local cluster's keys are written the same way (cluster/pki.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Malformed:
    """A state file that exists but cannot be used: truncated, not JSON, or of the wrong shape."""

    path: Path
    reason: str

    def warning(self, consequence: str) -> str:
        """One line for the user: which file, what is wrong with it, what happens instead."""
        return f"{self.path} is unreadable ({self.reason}): {consequence}"


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replaces PATH with DATA in one rename, so a crash leaves the old file or the new one;
    the temporary file has MODE from its creation (whatever the umask), before any byte."""
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(partial, flags, mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask may have taken bits away
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Makes the rename itself durable: without it a power cut may lose the new name."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, content: object) -> None:
    write_atomic(path, json.dumps(content, indent=1).encode())


def read_json(path: Path, parse: Callable[[Any], T]) -> T | Malformed | None:
    """PATH's JSON turned into a value by PARSE (which raises ValueError, TypeError or KeyError
    on content of the wrong shape); None when there is no file; Malformed when it is empty,
    truncated, not JSON or of the wrong shape."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        return Malformed(path, error.strerror or type(error).__name__)
    if not data.strip():
        return Malformed(path, "empty")
    try:
        content = json.loads(data)
    except json.JSONDecodeError as error:
        return Malformed(path, f"truncated or not JSON: {error}")
    except ValueError:
        return Malformed(path, "not UTF-8")
    try:
        return parse(content)
    except (ValueError, TypeError, KeyError) as error:
        return Malformed(path, f"unexpected content: {error}")


def json_object(content: Any) -> dict[str, Any]:
    """A PARSE for read_json: any JSON object (its entries are for the caller to check)."""
    if not isinstance(content, dict):
        raise TypeError(f"a JSON object expected, not {type(content).__name__}")
    return content
