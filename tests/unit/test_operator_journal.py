"""The journal copy the in-cluster operator keeps in a ConfigMap, the line a journal that
cannot be written fails with (the CLI's and the operator's), and the peering priority."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chaos.operator import handlers as operator
from chaos.operator import journal as operator_journal
from chaos.operator.settings import MAX_ATTEMPTS, Settings
from chaos.results import JOURNAL_NAME
from chaos.run.runner import RunOptions


def test_a_journal_over_the_limit_keeps_its_newest_whole_lines() -> None:
    lines = [json.dumps({"event": "e", "n": n}) + "\n" for n in range(100)]
    text = "".join(lines)
    assert operator_journal.kept(text, limit=len(text)) == text
    trimmed = operator_journal.kept(text, limit=1000)
    assert len(trimmed.encode()) <= 1000
    first, *rest = trimmed.splitlines(keepends=True)
    assert json.loads(first)["event"] == "journal_truncated"
    assert rest == lines[-len(rest):] and json.loads(first)["lines_dropped"] == 100 - len(rest)


DNS_1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@pytest.mark.parametrize("name", [
    "web-pod-kill", "x" * 300, "a" * 236 + "." + "b" * 16, "a" * 235 + "-." + "b" * 16,
    "a" * 237 + "-" * 20, "web.pod.kill", "Web_Pod Kill!", "..--..", "-", "a.-b", "ü" * 260])
def test_configmap_names_are_valid_dns_subdomains_for_long_and_odd_names(name: str) -> None:
    configmap = operator_journal.configmap_name(name, "0123456789abcdef")
    assert len(configmap) <= 253, configmap
    assert DNS_1123_SUBDOMAIN.fullmatch(configmap), configmap
    assert configmap.startswith("journal-") and configmap.endswith("-01234567")


def test_configmap_names_differ_by_uid_and_keep_a_short_name_whole() -> None:
    assert operator_journal.configmap_name("web-pod-kill", "abcdef0123") == \
        "journal-web-pod-kill-abcdef01"
    assert operator_journal.configmap_name("x" * 300, "1" * 8) != \
        operator_journal.configmap_name("x" * 300, "2" * 8)


def test_three_attempts_of_the_largest_journal_fit_one_configmap() -> None:
    huge = "".join(json.dumps({"event": "probe_window", "n": n, "pad": "p" * 200}) + "\n"
                   for n in range(20_000))
    total = sum(len(operator_journal.kept(huge).encode()) for _ in range(MAX_ATTEMPTS))
    assert total <= operator_journal.LIMIT < 1024 * 1024


def test_an_older_operator_always_outranks_a_newer_one() -> None:
    assert min(operator.seniority(1000.0) for _ in range(50)) > max(
        operator.seniority(1001.0) for _ in range(50))


def full_disk_line(options: RunOptions) -> str:
    """The line a drill run with OPTIONS fails with when its journal's disk is full."""
    (options.out_dir / JOURNAL_NAME).symlink_to("/dev/full")  # every write: ENOSPC
    with options.open_journal() as journal:
        journal.write("drill_started")
    assert journal.failure is not None
    return str(journal.failure)


def test_the_cli_says_to_free_space_or_pass_out_when_the_journal_cannot_be_written(
        tmp_path: Path) -> None:
    assert full_disk_line(RunOptions(out_dir=tmp_path)) == (
        f"cannot write the journal to {tmp_path / JOURNAL_NAME}: No space left on device; free "
        "space or pass --out DIR, then run chaos-drill restore if anything remains")


def test_the_operator_names_its_results_folder_and_the_status_journal_instead(
        tmp_path: Path) -> None:
    options = operator.run_options(tmp_path, Settings(), lambda incident: None)
    assert full_disk_line(options) == (
        f"cannot write the journal to {tmp_path / JOURNAL_NAME}: No space left on device; free "
        "space in the operator's results folder ($CHAOS_DRILL_OPERATOR_OUT; in the cluster, "
        "replacing the operator's pod empties it), then apply the ChaosDrill again; what was "
        "written is where status.journal says")
