"""Reading a drill: load a ChaosDrill from YAML or from the API, validate it against the CRD's own
schema (manifests/crds/chaosdrill.yaml) with errors that name the field and line, apply the
schema's defaults and return the typed Drill."""

from __future__ import annotations

import copy
import functools
import math
import re
import reprlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from chaos.drill.spec import API_VERSION, KIND, Drill, drill_from_spec
from chaos.errors import SpecError
from chaos.resources import shipped

CRD_PATH = shipped("manifests", "crds", "chaosdrill.yaml")

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_TOP_LEVEL_FIELDS = ("apiVersion", "kind", "metadata", "spec", "status")
_MAX_DEPTH = 20  # a drill nests 5 deep; deeper YAML is a mistake (and would exhaust the stack)
_INT64 = (-(2**63), 2**63 - 1)  # what the API server's JSON decoder accepts for an integer
_SHOWN = reprlib.Repr()  # keyword arguments only from Python 3.12
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlist, _SHOWN.maxdict = 2, 60, 60, 4, 4
_JUNCTOR_MESSAGES = {
    "spec.target": "set either 'kind' and 'name', or 'labelSelector' (not both)",
    "spec.fault": "'replicas' is required when type is scale",
}


def read_spec_file(path: str | Path, what: str) -> str:
    """The text of the WHAT (drill, plan) file at PATH; a one-line SpecError if unreadable."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read {what} file {path}: {exc.strerror}; check the path") from exc
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text (byte {exc.start}); save the {what} as UTF-8 "
                        "YAML") from exc


def load_drill(path: str | Path) -> Drill:
    """Read, validate and default the drill file at path."""
    return parse_drill(read_spec_file(path, "drill"), str(path))


def parse_drill(text: str, source: str = "<drill>") -> Drill:
    """Validate a drill document given as YAML text; source names it in error messages."""
    document, root = read_yaml(text, source)
    return _build(document, _Locator(source, root))


def read_yaml(text: str, source: str) -> tuple[object, yaml.Node | None]:
    """One YAML document and its node tree, refused (SpecError naming SOURCE and the line) when
    it is not valid YAML, holds an alias, nests too deep or repeats a key."""
    try:
        _check_events(text, source)
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            if root is not None:
                _check_duplicate_keys(root, (), source)
            document = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise SpecError(_yaml_error_message(exc, text, source)) from exc
    return document, root


def drill_from_mapping(document: object, source: str) -> Drill:
    """Validate a ChaosDrill given as an already parsed mapping (a lesson plan's inline drill);
    SOURCE starts each error message."""
    return _build(document, _Locator(source, None))


def drill_from_object(obj: Mapping[str, Any]) -> Drill:
    """Validate a ChaosDrill object as read from the API (or from Drill.to_object)."""
    metadata = obj.get("metadata")
    name = metadata.get("name", "?") if isinstance(metadata, Mapping) else "?"
    namespace = metadata.get("namespace", "default") if isinstance(metadata, Mapping) else "?"
    return _build(obj, _Locator(f"ChaosDrill {namespace}/{name}", None))


def crd_schema() -> dict[str, Any]:
    """The openAPIV3Schema of the ChaosDrill CRD, as the API server sees it."""
    return copy.deepcopy(_crd_schema())


class _Locator:
    """Maps a field path to 'source:line' using the composed YAML node tree, when there is one."""

    def __init__(self, source: str, root: yaml.Node | None) -> None:
        self.source = source
        self.root = root

    def where(self, path: tuple[str | int, ...], key: str | None = None) -> str:
        """The line of the last key on path that exists (of key itself, when given and present)."""
        node, line_node = self.root, self.root
        for part in (*path, key) if key is not None else path:
            found = _child(node, part)
            if found is None:
                break
            line_node, node = found
        return f"{self.source}:{line_node.start_mark.line + 1}" if line_node else self.source

    def fail(self, path: tuple[str | int, ...], problem: str, key: str | None = None) -> SpecError:
        field = ".".join(str(part) for part in path)
        prefix = f"{self.where(path, key)}: {field}" if field else self.where(path, key)
        return SpecError(f"{prefix}: {problem}")


def _shown(value: object) -> str:
    """A value as it goes into an error message: a short repr, always one line."""
    return _SHOWN.repr(value)


def _line_of(mark: Any) -> str:
    """The ':LINE' suffix for a YAML mark (pure or C loader); empty without a mark."""
    return f":{mark.line + 1}" if mark is not None else ""


def _check_events(text: str, source: str) -> None:
    """Refuse aliases and deep nesting from the event stream, before anything recurses on them.

    An alias can make a document refer to itself or grow exponentially ("billion laughs");
    a drill never needs one.
    """
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        where = f"{source}{_line_of(event.start_mark)}"
        if isinstance(event, yaml.AliasEvent):
            raise SpecError(f"{where}: alias *{event.anchor} is not supported in a drill; "
                            "write the value out in full")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > _MAX_DEPTH:
                raise SpecError(f"{where}: nested more than {_MAX_DEPTH} levels deep; "
                                "a drill needs at most 5")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_duplicate_keys(node: yaml.Node, path: tuple[str, ...], source: str) -> None:
    """YAML loaders keep the last of two equal keys silently; a drill file must not have any."""
    children: list[tuple[str, yaml.Node]] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[tuple[str, str]] = set()
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = (key_node.tag, key_node.value)
                field = ".".join((*path, str(key_node.value)))
                if key in seen:
                    raise SpecError(f"{source}{_line_of(key_node.start_mark)}: {field}: "
                                    "duplicate key; keep only one of them")
                seen.add(key)
                children.append((str(key_node.value), value_node))
    elif isinstance(node, yaml.SequenceNode):
        children = [(str(index), item) for index, item in enumerate(node.value)]
    for part, child in children:
        _check_duplicate_keys(child, (*path, part), source)


def _child(node: yaml.Node | None, part: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    """The (node to report the line of, value node) for one step of a field path."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == part:
                return key_node, value_node
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part], node.value[part]
    return None


def _yaml_error_message(exc: yaml.YAMLError, text: str, source: str) -> str:
    line = _line_of(getattr(exc, "problem_mark", None))
    if isinstance(exc, yaml.reader.ReaderError):
        line = f":{text.count(chr(10), 0, exc.position) + 1}"
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{source}{line}: invalid YAML: {problem}; fix the syntax at that line"


def _build(document: object, where: _Locator) -> Drill:
    if not isinstance(document, Mapping):
        raise SpecError(f"{where.source}: not a ChaosDrill: expected a YAML mapping at the top")
    _check_header(document, where)
    name, namespace = _check_metadata(document.get("metadata"), where)
    spec = document.get("spec")
    if not isinstance(spec, Mapping):
        raise where.fail(("spec",), "missing or not a mapping; add spec with target and fault")
    _validate_spec(spec, where)
    _check_numbers(spec, ("spec",), where)
    _check_needs(spec, where)
    defaulted = _apply_defaults(_crd_schema()["properties"]["spec"], copy.deepcopy(dict(spec)))
    return drill_from_spec(name, namespace, defaulted)


def _check_header(document: Mapping[str, Any], where: _Locator) -> None:
    for field, expected in (("apiVersion", API_VERSION), ("kind", KIND)):
        if document.get(field) != expected:
            got = document.get(field)
            raise where.fail((field,), f"{_shown(got)} is not allowed; set it to {expected}")
    for field in document:
        if field not in _TOP_LEVEL_FIELDS:
            allowed = ", ".join(_TOP_LEVEL_FIELDS)
            raise where.fail((), f"unknown field {_shown(field)}; allowed: {allowed}", key=field)


def _check_metadata(metadata: object, where: _Locator) -> tuple[str, str]:
    if not isinstance(metadata, Mapping):
        raise where.fail(("metadata",), "missing or not a mapping; add metadata with a name")
    name = metadata.get("name")
    if not isinstance(name, str) or not _DNS_SUBDOMAIN.match(name):
        raise where.fail(
            ("metadata", "name"),
            f"{_shown(name)} is not a valid name; use lowercase a-z, 0-9 and '-'",
        )
    namespace = metadata.get("namespace", "default")
    if not isinstance(namespace, str) or not _DNS_LABEL.match(namespace):
        raise where.fail(
            ("metadata", "namespace"),
            f"{_shown(namespace)} is not a valid namespace; use lowercase a-z, 0-9 and '-'",
        )
    return name, namespace


def _validate_spec(spec: Mapping[str, Any], where: _Locator) -> None:
    validator = jsonschema.Draft4Validator(_strict_spec_schema())
    errors = sorted(validator.iter_errors(dict(spec)), key=lambda e: [str(p) for p in e.path])
    if errors:
        first = errors[0]
        path = ("spec", *first.absolute_path)
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise where.fail(path, _describe(first, path) + more, key=_offending_key(first))


def _check_numbers(value: object, path: tuple[str, ...], where: _Locator) -> None:
    """The schema lets NaN, infinity and integers of any size through; the API server does not."""
    if isinstance(value, Mapping):
        for key, child in value.items():
            _check_numbers(child, (*path, str(key)), where)
    elif isinstance(value, float) and not math.isfinite(value):
        raise where.fail(path, f"{value!r} is not a finite number; give a plain number")
    elif isinstance(value, int) and not isinstance(value, bool):
        if not _INT64[0] <= value <= _INT64[1]:
            raise where.fail(path, f"{_shown(value)} is out of range; it must be between "
                             f"{_INT64[0]} and {_INT64[1]}")


def _check_needs(spec: Mapping[str, Any], where: _Locator) -> None:
    """Fields that only make sense with another: refused here, before anything is injected."""
    slo = spec.get("slo") or {}
    if slo.get("minAvailability") is not None and spec.get("probe") is None:
        raise where.fail(("spec", "slo", "minAvailability"),
                         "needs spec.probe to measure availability: add a probe (service, port) "
                         "or remove minAvailability")
    fault = spec.get("fault") or {}
    if fault.get("type") == "network_partition" and spec.get("probe") is None:
        raise where.fail(("spec", "fault", "type"),
                         "network_partition needs spec.probe: its Service's endpoints show the "
                         "pod leave and rejoin; add a probe on a Service that selects the target")


def _offending_key(error: jsonschema.ValidationError) -> str | None:
    if error.validator == "additionalProperties":
        return _unknown_fields(error)[0]
    return None


def _schema_of(error: jsonschema.ValidationError) -> Mapping[str, Any]:
    return error.schema if isinstance(error.schema, Mapping) else {}


def _unknown_fields(error: jsonschema.ValidationError) -> list[str]:
    allowed = _schema_of(error).get("properties", {})
    instance = error.instance if isinstance(error.instance, Mapping) else {}
    return sorted(str(key) for key in instance if key not in allowed)


def _describe(error: jsonschema.ValidationError, path: tuple[str | int, ...]) -> str:
    value: Any = error.instance
    rule: Any = error.validator_value
    kind = str(error.validator)
    joined = ".".join(str(part) for part in path)
    if kind == "additionalProperties":
        allowed = ", ".join(_schema_of(error).get("properties", {}))
        return f"unknown field {_shown(_unknown_fields(error)[0])}; allowed: {allowed}"
    if kind == "required":
        missing = [field for field in rule if field not in value]
        return f"missing required field {missing[0]!r}"
    if kind == "enum":
        return f"{_shown(value)} is not allowed; use one of {', '.join(map(str, rule))}"
    if kind == "type":
        return f"{_shown(value)} is not of type {rule}"
    if kind == "minProperties":
        return "must not be empty; add at least one entry"
    if kind == "minLength":
        return "must not be empty"
    if kind == "pattern":
        return f"{_shown(value)} does not match {rule!r}"
    if kind in ("minimum", "maximum"):
        return _describe_bound(kind, value, rule, _schema_of(error))
    if kind in ("oneOf", "anyOf", "not") and joined in _JUNCTOR_MESSAGES:
        return _JUNCTOR_MESSAGES[joined]
    return " ".join(error.message.split())[:200]


def _describe_bound(kind: str, value: Any, bound: Any, schema: Mapping[str, Any]) -> str:
    exclusive = schema.get(f"exclusive{kind.capitalize()}", False)
    if kind == "minimum":
        relation = "greater than" if exclusive else "at least"
    else:
        relation = "less than" if exclusive else "at most"
    return f"{_shown(value)} is out of range; it must be {relation} {bound}"


@functools.cache
def _crd_schema() -> dict[str, Any]:
    try:
        crd = yaml.safe_load(CRD_PATH.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"cannot read the CRD at {CRD_PATH}: {exc.strerror}; reinstall") from exc
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@functools.cache
def _strict_spec_schema() -> dict[str, Any]:
    """The spec schema with unknown fields rejected, which the API server does by pruning."""
    return _forbid_unknown(copy.deepcopy(_crd_schema()["properties"]["spec"]))


def _forbid_unknown(schema: dict[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties")
    if isinstance(properties, dict):
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        for child in properties.values():
            _forbid_unknown(child)
    return schema


def _apply_defaults(schema: Mapping[str, Any], value: Any) -> Any:
    """Fill in schema defaults the way the API server does: only inside objects that exist."""
    if not isinstance(value, dict):
        return value
    for field, child in schema.get("properties", {}).items():
        if field not in value and "default" in child:
            value[field] = copy.deepcopy(child["default"])
        if field in value:
            value[field] = _apply_defaults(child, value[field])
    return value
