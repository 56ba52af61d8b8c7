"""Run outputs: the journal written as a drill happens, and the summary, junit.xml and
report.html derived from it (again at any time with rebuild_results)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from chaos.errors import ChaosDrillError
from chaos.results.journal import Journal, JournalRecord, read_journal
from chaos.results.junit import junit_xml
from chaos.results.report import render_report
from chaos.results.summary import Summary, build_summary

JOURNAL_NAME = "journal.jsonl"
SUMMARY_NAME = "summary.json"
JUNIT_NAME = "junit.xml"
REPORT_NAME = "report.html"

__all__ = [
    "JOURNAL_NAME",
    "Journal",
    "JournalRecord",
    "Summary",
    "build_summary",
    "fresh_out_dir",
    "read_journal",
    "rebuild_results",
    "salvage_results",
    "write_results",
]


def write_results(out_dir: str | Path, summary: Summary) -> list[Path]:
    """Write summary.json, junit.xml and report.html into out_dir; returns their paths."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    contents = {
        SUMMARY_NAME: json.dumps(summary.to_dict(), indent=2) + "\n",
        JUNIT_NAME: junit_xml(summary),
        REPORT_NAME: render_report(summary),
    }
    return [_write_atomically(directory / name, text) for name, text in contents.items()]


def fresh_out_dir(path: str | Path) -> Path:
    """path, or else path-2, path-3, ...: the first folder that holds no journal yet, so a
    second run never lands in the folder of the first."""
    base = Path(path)
    candidate, number = base, 1
    while (candidate / JOURNAL_NAME).exists():
        number += 1
        candidate = base.with_name(f"{base.name}-{number}")
    return candidate


def rebuild_results(out_dir: str | Path) -> Summary:
    """Rebuild every output of out_dir from its journal alone, e.g. after a crash."""
    summary = build_summary(read_journal(Path(out_dir) / JOURNAL_NAME))
    write_results(out_dir, summary)
    return summary


def salvage_results(
    out_dir: str | Path, unwritten: Sequence[JournalRecord]
) -> tuple[Summary, bool]:
    """After the journal failed: the summary of the records on disk and the UNWRITTEN ones
    kept in memory, and whether its files could be written into out_dir (a full disk: no)."""
    try:
        records = read_journal(Path(out_dir) / JOURNAL_NAME)
    except ChaosDrillError:
        records = []
    summary = build_summary([*records, *unwritten])
    try:
        write_results(out_dir, summary)
    except OSError:
        return summary, False
    return summary, True


def _write_atomically(path: Path, text: str) -> Path:
    """Readers never see half a file: write beside it, then rename over it (a failed write,
    a full disk, leaves neither)."""
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except OSError:
        partial.unlink(missing_ok=True)
        raise
    return path
