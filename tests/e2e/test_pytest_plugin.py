"""The pytest plugin users put in their CI smoke tests runs a real drill and returns its verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaos.results import JOURNAL_NAME, read_journal

from support import REPO

pytestmark = pytest.mark.e2e
DRILL = REPO / "manifests" / "drills" / "web-pod-kill.yaml"


def test_chaos_drill_fixture_runs_a_drill(web: Any, chaos_drill: Any, tmp_path: Path) -> None:
    text = DRILL.read_text().replace("rounds: 5", "rounds: 2").replace("intervalSeconds: 10",
                                                                        "intervalSeconds: 1")
    path = tmp_path / "drill.yaml"
    path.write_text(text)
    summary = chaos_drill(path)
    assert summary.passed
    assert len(summary.incidents) == 2
    assert all(i.recovery_seconds is not None for i in summary.incidents)


def test_the_same_drill_twice_gets_two_results_folders(web: Any, chaos_drill: Any,
                                                       tmp_path: Path) -> None:
    text = DRILL.read_text().replace("rounds: 5", "rounds: 1")
    path = tmp_path / "drill.yaml"
    path.write_text(text)
    first, second = chaos_drill(path), chaos_drill(path)  # the verdicts do not matter here
    assert len(first.incidents) == len(second.incidents) == 1
    folders = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert folders == ["web-pod-kill", "web-pod-kill-2"]
    for folder in folders:
        journal = read_journal(tmp_path / folder / JOURNAL_NAME)
        assert [r.event for r in journal].count("drill_started") == 1
        summary = json.loads((tmp_path / folder / "summary.json").read_text())
        assert [incident["id"] for incident in summary["incidents"]] == ["r1-i1"]
