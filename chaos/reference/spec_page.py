"""docs/reference/drill-spec.md: every field of a ChaosDrill, walked from the CRD's OpenAPI
schema (manifests/crds/chaosdrill.yaml), with its type, default, allowed values, limits and
description; the schema's combined rules (oneOf, anyOf, not) are shown as they are written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from chaos.drill.loading import crd_schema
from chaos.reference.markdown import code, header, paragraph, table

LIMITS = (("minimum", "≥"), ("maximum", "≤"), ("minLength", "length ≥"),
          ("minProperties", "entries ≥"), ("pattern", "matches"))
RULES = ("oneOf", "anyOf", "not")


def type_of(schema: dict[str, Any]) -> str:
    kind = str(schema.get("type", "any"))
    values = schema.get("additionalProperties")
    if kind == "object" and isinstance(values, dict) and "type" in values:
        return f"map of string to {values['type']}"
    return kind


def limits_of(schema: dict[str, Any]) -> str:
    parts = []
    for key, word in LIMITS:
        if key not in schema:
            continue
        exclusive = schema.get(f"exclusive{key[0].upper()}{key[1:]}") is True
        symbol = {"≥": ">", "≤": "<"}.get(word, word) if exclusive else word
        parts.append(f"{symbol} {code(str(schema[key]))}")
    return ", ".join(parts)


def fields(schema: dict[str, Any], path: str, required: bool) -> Iterator[list[str]]:
    """One row per field under SCHEMA, depth first in the schema's own order."""
    enum = ", ".join(code(str(value)) for value in schema.get("enum", []))
    default = json.dumps(schema["default"]) if "default" in schema else ""
    yield [code(path), type_of(schema), "yes" if required else "", code(default), enum,
           limits_of(schema), str(schema.get("description", ""))]
    needed = set(schema.get("required", []))
    for name, child in schema.get("properties", {}).items():
        yield from fields(child, f"{path}.{name}", name in needed)


def rules(schema: dict[str, Any], path: str) -> Iterator[str]:
    """Each combined rule in SCHEMA and below it, as compact JSON under its field path."""
    for key in RULES:
        if key in schema:
            yield f"- {code(path)} {key}: {code(json.dumps(schema[key], separators=(', ', ': ')))}"
    for name, child in schema.get("properties", {}).items():
        yield from rules(child, f"{path}.{name}" if path else name)


def render() -> str:
    root = crd_schema()
    intro = ("A drill is one `ChaosDrill` document, the same for `chaos-drill run FILE` and for "
             "an object applied to the cluster and run by the operator. Both are validated "
             "against the CRD's schema; a file is also refused when it has fields the schema "
             "does not name. A default is filled in when the field is left out.")
    lines = header("Drill spec (ChaosDrill)", "manifests/crds/chaosdrill.yaml", intro)
    lines += [f"`apiVersion: chaosdrill.dev/v1alpha1`, `kind: ChaosDrill`. "
              f"{paragraph(str(root.get('description', '')))}", "", "## Fields", ""]
    rows: list[list[str]] = []
    needed = set(root.get("required", []))
    for name, child in root["properties"].items():
        rows += fields(child, name, name in needed)
    lines += table(["field", "type", "required", "default", "allowed", "limits", "description"],
                   rows)
    lines += ["## Combined rules", "",
              "Rules that span several fields, as the schema states them:", ""]
    lines += list(rules(root, "")) or ["None."]
    return "\n".join(lines).rstrip() + "\n"
