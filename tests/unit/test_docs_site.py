"""The docs: the MkDocs site builds with --strict (a broken link or anchor, or a page left out
of the nav, fails), and the README stays short with every relative link pointing at a file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from support import REPO

README = REPO / "README.md"
README_MAX_LINES = 250
LINK = re.compile(r"\]\(([^)\s]+)\)")
"""The target of a Markdown link or image: [text](target) or ![alt](target)."""


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr[-4000:]
    assert (tmp_path / "site" / "reference" / "faults" / "index.html").is_file()


def test_the_readme_fits_on_a_few_screens() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, (f"README.md has {lines} lines, at most {README_MAX_LINES}: "
                                       "move the detail to a guide in docs/")


def relative_links(text: str) -> list[str]:
    targets = [match.group(1) for match in LINK.finditer(text)]
    return [target for target in targets
            if not re.match(r"[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")]


def test_every_relative_link_in_the_readme_points_at_a_file() -> None:
    links = relative_links(README.read_text(encoding="utf-8"))
    assert "docs/index.md" in links
    missing = [link for link in links if not (REPO / link.partition("#")[0]).exists()]
    assert not missing, f"README.md links to files that do not exist: {', '.join(missing)}"


def test_the_link_finder_skips_urls_and_anchors() -> None:
    text = "[a](docs/x.md#y) ![b](docs/p.png) [c](https://example.org) [d](#top) [e](mailto:x)"
    assert relative_links(text) == ["docs/x.md#y", "docs/p.png"]
