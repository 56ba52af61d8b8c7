"""The pytest plugin users put in their CI smoke tests runs a real drill and returns its verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
DRILL = Path(__file__).parents[2] / "manifests" / "drills" / "web-pod-kill.yaml"


def test_chaos_drill_fixture_runs_a_drill(web: Any, chaos_drill: Any, tmp_path: Path) -> None:
    text = DRILL.read_text().replace("rounds: 5", "rounds: 2").replace("intervalSeconds: 10",
                                                                        "intervalSeconds: 1")
    path = tmp_path / "drill.yaml"
    path.write_text(text)
    summary = chaos_drill(path)
    assert summary.passed
    assert len(summary.incidents) == 2
    assert all(i.recovery_seconds is not None for i in summary.incidents)
