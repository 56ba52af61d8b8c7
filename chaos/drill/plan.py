"""A workshop's lesson plan: a YAML file of steps, each a title, a short explanation, what to watch
for and a drill (a ChaosDrill file relative to the plan, or one written inline). Validated with
jsonschema, with errors that name the file and the field (`plan.yaml: steps[2].drill: required`),
and every drill validated as `chaos-drill run` would."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from chaos.drill.loading import drill_from_mapping, load_drill, read_spec_file, read_yaml
from chaos.drill.spec import Drill
from chaos.errors import SpecError
from chaos.resources import shipped

DEFAULT_PLAN = shipped("manifests", "workshops", "default.yaml")
_TEXT = {"type": "string", "minLength": 1}
PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["steps"],
    "additionalProperties": False,
    "properties": {
        "title": _TEXT,
        "steps": {
            "type": "array", "minItems": 1,
            "items": {
                "type": "object",
                "required": ["title", "explain", "drill", "watch"],
                "additionalProperties": False,
                "properties": {"title": _TEXT, "explain": _TEXT, "watch": _TEXT,
                               "drill": {"type": ["string", "object"], "minLength": 1}},
            },
        },
    },
}
_FIXES = {
    "title": "a few words shown in large type",
    "explain": "a short paragraph the room reads while the step runs",
    "watch": "what to watch for on the page",
    "drill": "a ChaosDrill file relative to the plan, or a ChaosDrill written inline",
    "steps": "a list of steps, each with title, explain, drill and watch",
}


@dataclass(frozen=True)
class Step:
    """One step of a plan: what the room is told, and the drill that shows it."""

    title: str
    explain: str
    watch: str
    drill: Drill
    drill_source: str
    """The drill file's path, or `inline`."""


@dataclass(frozen=True)
class Plan:
    title: str
    steps: tuple[Step, ...]
    source: str


def is_plan(document: object) -> bool:
    """Whether a parsed YAML document is meant as a lesson plan rather than a drill."""
    return isinstance(document, Mapping) and "steps" in document and "kind" not in document


def load_plan(path: str | Path) -> Plan:
    """Read, validate and load the plan at PATH and every drill it names."""
    document, _ = read_yaml(read_spec_file(path, "plan"), str(path))
    return plan_from_document(document, str(path), Path(path).parent)


def plan_from_document(document: object, source: str, base: Path) -> Plan:
    """A Plan from a parsed YAML DOCUMENT; drill paths are relative to BASE."""
    if not isinstance(document, Mapping):
        raise SpecError(f"{source}: not a lesson plan: expected a mapping with 'steps' at the top")
    errors = sorted(_validator().iter_errors(dict(document)),
                    key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        raise SpecError(f"{source}: {_describe(errors[0])}")
    steps = tuple(_step(item, index, source, base)
                  for index, item in enumerate(document["steps"]))
    return Plan(str(document.get("title") or Path(source).stem), steps, source)


def _step(item: Mapping[str, Any], index: int, source: str, base: Path) -> Step:
    where = f"{source}: steps[{index}].drill"
    drill_field = item["drill"]
    if isinstance(drill_field, str):
        path = base / drill_field
        if not path.is_file():
            raise SpecError(f"{where}: no drill file {drill_field} (looked for {path}); give a "
                            "path relative to the plan")
        drill, drill_source = load_drill(path), str(path)
    else:
        drill, drill_source = drill_from_mapping(drill_field, where), "inline"
    return Step(" ".join(item["title"].split()), " ".join(item["explain"].split()),
                " ".join(item["watch"].split()), drill, drill_source)


@functools.cache
def _validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(PLAN_SCHEMA)


def field_path(parts: Sequence[str | int]) -> str:
    """steps[2].drill for ('steps', 2, 'drill')."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _describe(error: jsonschema.ValidationError) -> str:
    path = list(error.absolute_path)
    kind = str(error.validator)
    rule: Any = error.validator_value
    value: Any = error.instance
    if kind == "required":
        missing = next(str(name) for name in rule if name not in value)
        return f"{field_path([*path, missing])}: required; add {_FIXES.get(missing, missing)}"
    where = field_path(path) or "the plan"
    if kind == "additionalProperties":
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        properties = schema.get("properties", {})
        unknown = sorted(str(k) for k in value if k not in properties)
        return (f"{field_path([*path, unknown[0]])}: unknown field; allowed: "
                f"{', '.join(properties)}")
    if kind == "type":
        wanted = " or ".join(rule) if isinstance(rule, list) else rule
        what = _FIXES.get(str(path[-1]) if path else "", wanted)
        return f"{where}: {type(value).__name__} is not {wanted}; give {what}"
    if kind in ("minLength", "minItems"):
        return f"{where}: empty; give {_FIXES.get(str(path[-1]) if path else '', 'a value')}"
    return f"{where}: {' '.join(error.message.split())[:200]}"
