"""Reference pages generated from the code, so they cannot drift from it: the fault registry,
the ChaosDrill CRD's schema, the metrics registry and the argument parser, each one Markdown page.
`python -m chaos.reference docs/reference` writes them; a unit test checks the committed ones."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from chaos.reference import cli_page, faults_page, metrics_page, spec_page

PAGES: dict[str, Callable[[], str]] = {
    "cli.md": cli_page.render,
    "drill-spec.md": spec_page.render,
    "faults.md": faults_page.render,
    "metrics.md": metrics_page.render,
}
"""Each page's file name under docs/reference/ and the function that renders it."""

REGENERATE = "python -m chaos.reference docs/reference"


def render_all() -> dict[str, str]:
    """Every page's file name and text."""
    return {name: render() for name, render in PAGES.items()}


def write(out_dir: Path) -> list[Path]:
    """Writes every page into OUT_DIR (created if missing); returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.reference", description=__doc__)
    parser.add_argument("out_dir", type=Path, help="where to write the pages, e.g. docs/reference")
    args = parser.parse_args(argv)
    for path in write(args.out_dir):
        print(path, file=sys.stderr)
    return 0
