"""The wheel and sdist carry every file the tool reads; `init` and `validate` work from them."""

from __future__ import annotations

import argparse
import stat
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from chaos.cli import files
from chaos.errors import UsageError
from chaos.resources import SHIPPED, shipped

from support import REPO


def tracked(*folders: str) -> list[str]:
    listing = subprocess.run(["git", "-C", str(REPO), "ls-files", "--", *folders],
                             capture_output=True, text=True, check=True, timeout=30).stdout
    return [line for line in listing.splitlines() if line]


def test_the_wheel_holds_every_shipped_file_and_the_page(dist: tuple[Path, Path]) -> None:
    _, wheel = dist
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
    wanted = [f"chaos/resources/{name}" for name in tracked(*SHIPPED)]
    wanted += tracked("chaos/view/static")
    assert len(wanted) > 40
    assert [name for name in wanted if name not in names] == []
    # dockerd runs the wrapper itself (the build scripts are run by bash)
    assert modes["chaos/resources/cluster/kind/runc-wrapper"] & stat.S_IXUSR


def test_the_sdist_holds_what_the_wheel_is_built_from(dist: tuple[Path, Path]) -> None:
    sdist, _ = dist
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    wanted = tracked(*SHIPPED, "chaos", "setup.py", "pyproject.toml", "README.md")
    assert [name for name in wanted if name not in names] == []


def _init(directory: Path, dashboards: bool = False, force: bool = False) -> int:
    return files.init_command(argparse.Namespace(dir=str(directory), dashboards=dashboards,
                                                 force=force), lambda _: None)


def test_init_copies_the_drills_and_refuses_to_overwrite(tmp_path: Path) -> None:
    assert _init(tmp_path, dashboards=True) == 0
    drills = sorted(p.name for p in (tmp_path / "drills").iterdir())
    assert drills == sorted(p.name for p in shipped("manifests", "drills").iterdir())
    assert (tmp_path / "dashboards" / "chaosdrill-overview.json").is_file()
    edited = tmp_path / "drills" / "web-pod-kill.yaml"
    edited.write_text("# mine\n")
    with pytest.raises(UsageError, match="web-pod-kill.yaml|--force"):
        _init(tmp_path)
    assert edited.read_text() == "# mine\n"  # nothing written before the refusal
    assert _init(tmp_path, force=True) == 0
    assert edited.read_text() == shipped("manifests", "drills", "web-pod-kill.yaml").read_text()


def test_validate_names_each_file_and_fails_on_any_invalid(tmp_path: Path) -> None:
    good = shipped("manifests", "drills", "web-pod-kill.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("pod_delete", "pod_explode"))
    said: list[str] = []
    run = argparse.Namespace(files=[str(good), str(bad)])
    assert files.validate_command(run, said.append) == 1
    assert said[0].startswith("valid: ") and "web-pod-kill" in said[0]
    assert said[1].startswith("invalid: ") and "pod_explode" in said[1]
    assert files.validate_command(argparse.Namespace(files=[str(good)]), said.append) == 0
