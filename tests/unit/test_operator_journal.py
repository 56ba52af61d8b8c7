"""The journal copy the in-cluster operator keeps in a ConfigMap, and its peering priority."""

from __future__ import annotations

import json
import re

import pytest

from chaos.operator import handlers as operator
from chaos.operator import journal as operator_journal
from chaos.operator.settings import MAX_ATTEMPTS


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
