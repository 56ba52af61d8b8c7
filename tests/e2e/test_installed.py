"""chaos-drill installed from its wheel into a fresh virtualenv, run from an empty folder outside
the checkout: the example drills come from `init`, validate, and one drill with a probe passes
on the real local cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chaos.resources import cache_dir

from support import REPO

pytestmark = pytest.mark.e2e

WHEELHOUSE = cache_dir() / "wheelhouse"


@pytest.fixture(scope="module")
def installed(dist: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ of a fresh virtualenv holding only the wheel and its dependencies (from the
    wheelhouse `make wheelhouse` fills, so nothing is fetched)."""
    if not (WHEELHOUSE / ".complete").exists():
        pytest.fail(f"no dependency wheels in {WHEELHOUSE}: run 'make wheelhouse'")
    venv = tmp_path_factory.mktemp("installed") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index",
                    "--find-links", str(WHEELHOUSE), str(dist[1])],
                   check=True, timeout=300, capture_output=True)
    return venv / "bin"


def run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed chaos-drill ARGS in CWD, to its end (at most five minutes)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run([str(bin_dir / "chaos-drill"), *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=300)


def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Path,
                                                            tmp_path: Path) -> None:
    where = subprocess.run(
        [str(installed / "python"), "-c", "import chaos.resources as r; "
         "print(r.__file__); print(r.INSTALLED); print(r.shipped('manifests'))"],
        cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60).stdout.split()
    assert where[0].startswith(str(installed.parent)) and where[1] == "True"
    assert not where[0].startswith(str(REPO)) and Path(where[2]).is_dir()


def test_init_then_validate_every_shipped_drill_from_an_empty_folder(installed: Path,
                                                                     tmp_path: Path) -> None:
    made = run(installed, tmp_path, "init", "--dashboards")
    assert made.returncode == 0, made.stderr
    drills = sorted((tmp_path / "drills").glob("*.yaml"))
    assert len(drills) == len(list((REPO / "manifests" / "drills").glob("*.yaml")))
    checked = run(installed, tmp_path, "validate", *[str(d.relative_to(tmp_path)) for d in drills])
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.count("valid: ") == len(drills)


def test_a_drill_with_a_probe_passes_from_the_installed_wheel(installed: Path, web: Any,
                                                              tmp_path: Path) -> None:
    assert run(installed, tmp_path, "init").returncode == 0
    drill = tmp_path / "drills" / "web-pod-kill.yaml"
    drill.write_text(drill.read_text().replace("rounds: 5", "rounds: 1"))
    result = run(installed, tmp_path, "run", "drills/web-pod-kill.yaml", "--out", "results")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert summary["passed"] is True
    assert summary["availability"]["requests"] > 0
    assert len(summary["incidents"]) == 1 and summary["incidents"][0]["recovery_seconds"]
