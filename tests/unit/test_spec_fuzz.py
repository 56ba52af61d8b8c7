"""Fuzzing the drill loader: malformed documents and broken YAML give one-line SpecErrors that
name the field or the line, never another exception; so does `python -m chaos run`."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.drill.loading import crd_schema, drill_from_object, parse_drill
from chaos.drill.spec import Drill
from chaos.errors import SpecError

from support import REPO

DRILLS = sorted((REPO / "manifests" / "drills").glob("*.yaml"))
SOURCE = "drill.yaml"
# "drill.yaml:LINE: FIELD: problem" or "drill.yaml[:LINE]: problem" (the top of the document)
ERROR = re.compile(r"^drill\.yaml(?::(?P<line>\d+))?: (?:(?P<field>[\w.]+): )?\S")

# Reproducible in CI: the same examples every run, no example database on disk.
FUZZ = settings(max_examples=100, deadline=1000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

FieldPath = tuple[str, ...]
YAML_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


def valid_documents() -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text(encoding="utf-8")) for path in DRILLS]


def paths_of(value: Any, prefix: FieldPath = ()) -> list[FieldPath]:
    """Every field path in a document, parents before children."""
    found: list[FieldPath] = []
    if isinstance(value, dict):
        for key, child in value.items():
            found.append((*prefix, key))
            found.extend(paths_of(child, (*prefix, key)))
    return found


def changed(document: dict[str, Any], path: FieldPath, change: Callable[[dict[str, Any], str], None]
            ) -> dict[str, Any]:
    copy: dict[str, Any] = yaml.safe_load(yaml.safe_dump(document))
    parent = copy
    for key in path[:-1]:
        parent = parent[key]
    change(parent, path[-1])
    return copy


def deep(levels: int) -> Any:
    value: Any = 1
    for level in range(levels):
        value = [value] if level % 2 else {"a": value}
    return value


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63, max_value=2**200),
    st.integers(max_value=-1),
    st.floats(),  # NaN and both infinities included
    st.sampled_from([1e308, -1e308, 0.5, -0.0, 2**64]),
    st.text(max_size=30),
    st.text(alphabet=st.characters(min_codepoint=0x80), min_size=1, max_size=10),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.integers(min_value=21, max_value=60).map(deep),
)


@st.composite
def malformed(draw: st.DrawFn) -> tuple[dict[str, Any], FieldPath | None]:
    """A valid drill with one field removed, replaced by junk, or given an unknown sibling; and
    the field path the error must name (None: an unknown field at the top, which has no path)."""
    document = draw(st.sampled_from(valid_documents()))
    how = draw(st.sampled_from(["remove", "replace", "unknown"]))
    if how == "unknown":
        # metadata and status take any field, so an unknown one goes elsewhere
        mappings = [path for path in paths_of(document)
                    if isinstance(_at(document, path), dict) and path[0] != "metadata"]
        parent = draw(st.sampled_from([(), *mappings]))
        name = draw(st.text(min_size=1, max_size=12).filter(
            lambda name: name not in _at(document, parent) and name != "status"))
        unknown = changed(document, (*parent, name), lambda at, key: at.__setitem__(key, 1))
        return unknown, (*parent, name) if parent else None
    path = draw(st.sampled_from(paths_of(document)))
    if how == "remove":
        return changed(document, path, lambda at, key: at.pop(key)), path
    junk = draw(JUNK)
    return changed(document, path, lambda at, key: at.__setitem__(key, junk)), path


def _at(document: dict[str, Any], path: FieldPath) -> Any:
    value: Any = document
    for key in path:
        value = value[key]
    return value


def outcome(text: str) -> Drill | str:
    """The drill, or the SpecError's message; any other exception fails the test."""
    try:
        return parse_drill(text, SOURCE)
    except SpecError as error:
        return str(error)


def check_message(message: str, text: str, path: FieldPath | None = None) -> None:
    assert "\n" not in message and "\r" not in message, message
    assert len(message) < 400, message
    match = ERROR.match(message)
    assert match, message
    if match["line"]:
        assert 1 <= int(match["line"]) <= len(YAML_LINE_BREAK.split(text)), message
    if path and "nested more than" not in message:  # too deep: named by its line
        field = match["field"] or ""
        dotted = ".".join(map(str, path))
        # the field itself, the parent whose rule it broke (target's kind-or-selector), a
        # field the junk in its place lacks, or a field that needs it (minAvailability: probe)
        assert field, message
        assert (f"{dotted}.".startswith(f"{field}.") or field.startswith(f"{dotted}.")
                or f"needs {dotted} " in message), message


def check_drill(drill: Drill) -> None:
    """A document that still validates gives a sane drill that survives a round trip."""
    assert drill_from_object(drill.to_object()) == drill
    for number in (drill.interval_seconds, drill.min_age_seconds, drill.recovery_timeout_seconds):
        assert math.isfinite(number) and number >= 0


@FUZZ
@given(malformed())
def test_malformed_documents_name_the_field(case: tuple[dict[str, Any], FieldPath | None]) -> None:
    document, path = case
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    result = outcome(text)
    if isinstance(result, Drill):
        check_drill(result)
    else:
        check_message(result, text, path)


FULL: dict[str, Any] = {
    "apiVersion": "chaosdrill.dev/v1alpha1",
    "kind": "ChaosDrill",
    "metadata": {"name": "full", "namespace": "demo"},
    "spec": {
        "target": {"kind": "Deployment", "name": "web"},
        "fault": {"type": "scale", "count": 1, "gracePeriodSeconds": 0, "replicas": 6,
                  "container": "app", "node": "node-1"},
        "rounds": 2, "intervalSeconds": 1, "seed": 7, "maxUnavailable": 1, "minAgeSeconds": 0,
        "recoveryTimeoutSeconds": 60,
        "probe": {"service": "web", "port": 80, "path": "/", "ratePerSecond": 10,
                  "timeoutSeconds": 1},
        "slo": {"maxRecoverySeconds": 30, "minAvailability": 0.9},
    },
}
BY_SELECTOR = changed(FULL, ("spec", "target"), lambda at, key: at.__setitem__(
    key, {"labelSelector": {"matchLabels": {"app": "web"}}}))


def typed_fields(schema: dict[str, Any], prefix: FieldPath) -> list[tuple[FieldPath, str]]:
    """Every field the CRD declares under prefix, with its type."""
    found: list[tuple[FieldPath, str]] = []
    for key, child in schema.get("properties", {}).items():
        found.append(((*prefix, key), child["type"]))
        found.extend(typed_fields(child, (*prefix, key)))
    return found


FIELDS = [
    (("apiVersion",), "string"), (("kind",), "string"), (("metadata",), "object"),
    (("metadata", "name"), "string"), (("metadata", "namespace"), "string"),
    (("spec",), "object"), (("spec", "target", "labelSelector", "matchLabels", "app"), "string"),
    *typed_fields(crd_schema()["properties"]["spec"], ("spec",)),
]
NUMBERS = [path for path, kind in FIELDS if kind in ("integer", "number")]
NOT_A = {
    "string": st.one_of(st.none(), st.integers(), st.floats(), st.booleans(),
                        st.lists(st.text(max_size=3), max_size=2),
                        st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2)),
    "integer": st.one_of(st.none(), st.text(max_size=10), st.floats(), st.booleans(),
                         st.lists(st.integers(), max_size=2),
                         st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)),
    "number": st.one_of(st.none(), st.text(max_size=10), st.booleans(),
                        st.lists(st.floats(), max_size=2),
                        st.dictionaries(st.text(max_size=3), st.floats(), max_size=2)),
    "object": st.one_of(st.none(), st.text(max_size=10), st.integers(), st.floats(),
                        st.lists(st.text(max_size=3), max_size=2)),
    "boolean": st.one_of(st.none(), st.text(max_size=10), st.integers(), st.floats(),
                         st.lists(st.booleans(), max_size=2)),
}
BAD_NUMBERS = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.integers(min_value=2**63),
    st.integers(max_value=-(2**63) - 1),
)


def document_for(path: FieldPath) -> dict[str, Any]:
    return BY_SELECTOR if "labelSelector" in path else FULL


def document_with(path: FieldPath, value: Any) -> str:
    document = changed(document_for(path), path, lambda at, key: at.__setitem__(key, value))
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)


def test_the_full_documents_are_valid() -> None:
    for base in (FULL, BY_SELECTOR):
        assert isinstance(outcome(yaml.safe_dump(base)), Drill)


@FUZZ
@given(st.sampled_from(FIELDS).flatmap(
    lambda field: st.tuples(st.just(field[0]), NOT_A[field[1]])))
def test_a_mistyped_field_is_named(case: tuple[FieldPath, Any]) -> None:
    path, value = case
    text = document_with(path, value)
    message = outcome(text)
    assert isinstance(message, str), f"{path} = {value!r} was accepted"
    check_message(message, text, path)


@FUZZ
@given(st.sampled_from(NUMBERS), BAD_NUMBERS)
def test_nan_infinite_and_huge_numbers_are_named(path: FieldPath, value: float) -> None:
    text = document_with(path, value)
    message = outcome(text)
    assert isinstance(message, str), f"{path} = {value!r} was accepted"
    check_message(message, text, path)
    assert ERROR.match(message)["field"] == ".".join(path), message  # type: ignore[index]


def schema_fields(path: FieldPath) -> set[str]:
    """The fields the CRD's schema knows at PATH (hypothesis also draws names found in the
    code, such as spec.fault's concurrency, which the example document may lack)."""
    schema = crd_schema()
    for part in path:
        schema = (schema.get("properties") or {}).get(part) or {}
    return set(schema.get("properties") or {})


@FUZZ
@given(st.sampled_from(FIELDS), st.text(min_size=1, max_size=12))
def test_an_unknown_field_is_named(field: tuple[FieldPath, str], name: str) -> None:
    path, kind = field
    parent = path if kind == "object" else path[:-1]
    free = not parent or parent[0] == "metadata" or "matchLabels" in parent
    if free or name in _at(document_for(parent), parent) or name in schema_fields(parent):
        parent = ("spec", "slo")  # metadata and labels take any key; the top has its own test
        name = f"x-{name}"
    text = yaml.safe_dump(changed(document_for(parent), (*parent, name),
                                  lambda at, key: at.__setitem__(key, 1)), allow_unicode=True)
    message = outcome(text)
    assert isinstance(message, str), f"{parent} + {name!r} was accepted"
    check_message(message, text, (*parent, name))
    assert "unknown field" in message, message


def test_an_unknown_field_at_the_top_is_named() -> None:
    text = yaml.safe_dump({**FULL, "rollback": True})
    assert outcome(text) == "drill.yaml:6: unknown field 'rollback'; allowed: apiVersion, " \
        "kind, metadata, spec, status"


def _tab_indent(text: str, line: int) -> str:
    lines = text.splitlines(keepends=True)
    index = 1 + line % (len(lines) - 1)
    lines[index] = "\t" + lines[index].lstrip(" ")
    return "".join(lines)


def _unclose(text: str, line: int) -> str:
    flows = [n for n, row in enumerate(text.splitlines()) if row.rstrip().endswith("}")]
    lines = text.splitlines(keepends=True)
    index = flows[line % len(flows)]
    lines[index] = lines[index].rstrip()[:-1] + "\n"
    return "".join(lines)


def _duplicate_key(text: str, line: int) -> str:
    lines = text.splitlines(keepends=True)
    keyed = [n for n, row in enumerate(lines) if re.match(r"^ *\w+:", row)]
    index = keyed[line % len(keyed)]
    return "".join(lines[: index + 1] + [lines[index]] + lines[index + 1 :])


def _alias(text: str, line: int) -> str:
    return text.replace("spec:\n", "spec: &whole\n", 1) + "status: *whole\n"


def _self_alias(text: str, line: int) -> str:
    return text.replace("  slo:", "  slo: &s {loop: *s}\n  x:", 1)


def _second_document(text: str, line: int) -> str:
    return text + "---\n" + text


def _nested(text: str, line: int) -> str:
    depth = 25 + line * 40
    return text + "  seed: " + "[" * depth + "1" + "]" * depth + "\n"


CERTAIN_BREAKAGES = [_tab_indent, _unclose, _duplicate_key, _alias, _self_alias,
                     _second_document, _nested]


@FUZZ
@given(st.sampled_from(DRILLS), st.sampled_from(CERTAIN_BREAKAGES), st.integers(0, 50))
def test_broken_yaml_names_the_line(drill: Path, breakage: Callable[[str, int], str],
                                    line: int) -> None:
    text = breakage(drill.read_text(encoding="utf-8"), line)
    message = outcome(text)
    assert isinstance(message, str), f"{breakage.__name__} was accepted:\n{text}"
    check_message(message, text)
    assert ERROR.match(message)["line"] is not None, message  # type: ignore[index]


@FUZZ
@given(st.sampled_from(DRILLS), st.integers(0, 2000),
       st.text(max_size=8) | st.binary(max_size=8).map(lambda raw: raw.decode("latin-1")))
def test_junk_anywhere_is_accepted_or_a_one_line_error(drill: Path, at: int, junk: str) -> None:
    text = drill.read_text(encoding="utf-8")
    at = at % (len(text) + 1)
    for broken in (text[:at] + junk + text[at:], text[:at], junk):
        result = outcome(broken)
        if isinstance(result, Drill):
            check_drill(result)
        else:
            check_message(result, broken)


def cli_case(tmp_path: Path, content: bytes) -> tuple[subprocess.CompletedProcess[str], Path]:
    drill = tmp_path / "drill.yaml"
    drill.write_bytes(content)
    done = subprocess.run(
        [sys.executable, "-m", "chaos", "run", str(drill), "--provider", "kubeconfig",
         "--kubeconfig", str(tmp_path / "nonexistent"), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    return done, drill


def check_cli_rejects(tmp_path: Path, content: bytes) -> None:
    done, drill = cli_case(tmp_path, content)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(f"chaos-drill: error: {drill}"), lines[0]
    assert "kubeconfig" not in lines[0]  # rejected before the provider was even built
    assert not (tmp_path / "out").exists()


BROKEN_TEXTS = st.one_of(
    malformed().map(lambda case: yaml.safe_dump(case[0], allow_unicode=True)).filter(
        lambda text: isinstance(outcome(text), str)),
    st.builds(lambda drill, breakage, line: breakage(drill.read_text(encoding="utf-8"), line),
              st.sampled_from(DRILLS), st.sampled_from(CERTAIN_BREAKAGES), st.integers(0, 50)),
)


@settings(FUZZ, max_examples=6, deadline=None)  # a subprocess each, with its own timeout
@given(BROKEN_TEXTS)
def test_cli_rejects_a_malformed_drill_before_touching_a_cluster(text: str) -> None:
    with TemporaryDirectory() as folder:  # hypothesis runs the test many times per tmp_path
        check_cli_rejects(Path(folder), text.encode())


def test_cli_rejects_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    check_cli_rejects(tmp_path, DRILLS[0].read_bytes()[:40] + bytes(range(256)))


def test_cli_control_a_good_drill_gets_as_far_as_the_cluster(tmp_path: Path) -> None:
    """The checks above mean something: a valid file does reach the (missing) kubeconfig."""
    done, _ = cli_case(tmp_path, DRILLS[0].read_bytes())
    assert done.returncode == 2, done.stderr
    assert "kubeconfig" in done.stderr and "Traceback" not in done.stderr, done.stderr
