"""The reference pages in docs/reference/ are generated from the code (chaos.reference): each
committed page must be exactly what the generator writes today, and the generator must be
deterministic and cover every fault, field, metric and command."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos import reference
from chaos.cli.parser import build_parser
from chaos.drill.fault_types import NAMES
from chaos.reference import cli_page, metrics_page

from support import REPO

COMMITTED = REPO / "docs" / "reference"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    reference.write(out)
    return out


@pytest.mark.parametrize("page", sorted(reference.PAGES))
def test_the_committed_page_is_up_to_date(generated: Path, page: str) -> None:
    committed = COMMITTED / page
    assert committed.is_file(), (f"docs/reference/{page} is missing: run "
                                 f"'{reference.REGENERATE}'")
    assert committed.read_text(encoding="utf-8") == (generated / page).read_text(
        encoding="utf-8"), f"docs/reference/{page} is out of date: run '{reference.REGENERATE}'"


def test_no_page_is_committed_that_the_generator_does_not_write() -> None:
    assert {path.name for path in COMMITTED.glob("*.md")} == set(reference.PAGES)


def test_the_output_is_deterministic() -> None:
    assert reference.render_all() == reference.render_all()


def test_every_fault_field_metric_and_command_is_listed() -> None:
    pages = reference.render_all()
    assert all(f"## `{name}`" in pages["faults.md"] for name in NAMES)
    assert all(f"`spec.{field}`" in pages["drill-spec.md"]
               for field in ("target.labelSelector.matchLabels", "fault.type", "probe.from",
                             "slo.minAvailability", "maxUnavailable"))
    metrics = [row[0] for row in metrics_page.rows()]
    assert "`chaosdrill_faults_injected_total`" in metrics and len(metrics) == 21
    commands = [name for name, _, _ in cli_page.subcommands(build_parser())]
    assert all(f"## chaos-drill {name}\n" in pages["cli.md"] for name in commands)
    assert "`--dry-run`" in pages["cli.md"] and "`--web PORT`" in pages["cli.md"]


def test_main_writes_every_page(tmp_path: Path) -> None:
    assert reference.main([str(tmp_path / "out")]) == 0
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == sorted(reference.PAGES)
