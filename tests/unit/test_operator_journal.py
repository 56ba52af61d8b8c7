"""The journal copy the in-cluster operator keeps in a ConfigMap, and its peering priority."""

from __future__ import annotations

import json

from chaos.operator import handlers as operator
from chaos.operator import journal as operator_journal


def test_a_journal_over_the_limit_keeps_its_newest_whole_lines() -> None:
    lines = [json.dumps({"event": "e", "n": n}) + "\n" for n in range(100)]
    text = "".join(lines)
    assert operator_journal.kept(text, limit=len(text)) == text
    trimmed = operator_journal.kept(text, limit=1000)
    assert len(trimmed.encode()) <= 1000
    first, *rest = trimmed.splitlines(keepends=True)
    assert json.loads(first)["event"] == "journal_truncated"
    assert rest == lines[-len(rest):] and json.loads(first)["lines_dropped"] == 100 - len(rest)


def test_configmap_names_are_valid_and_unique_per_object() -> None:
    name = operator_journal.configmap_name("demo", "x" * 300, "0123456789abcdef")
    assert len(name) <= 253 and name.endswith("-01234567")


def test_an_older_operator_always_outranks_a_newer_one() -> None:
    assert min(operator.seniority(1000.0) for _ in range(50)) > max(
        operator.seniority(1001.0) for _ in range(50))
