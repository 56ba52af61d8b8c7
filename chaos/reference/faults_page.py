"""docs/reference/faults.md: every fault in the registry (chaos.fault_types.FAULTS) with what
it does, its phases, what it needs, which providers have that, and the example drills using it."""

from __future__ import annotations

import importlib
from typing import Any

import yaml

from chaos.cluster.incluster import InClusterProvider
from chaos.cluster.kind import KindCluster
from chaos.cluster.kubeconfig import KubeconfigCluster
from chaos.cluster.local import LocalCluster
from chaos.drill.fault_types import FAULTS, OBSERVED, FaultType
from chaos.drill.loading import CRD_PATH, crd_schema
from chaos.reference.markdown import code, header, paragraph, table

PROVIDERS: tuple[tuple[str, type[Any]], ...] = (
    ("local", LocalCluster), ("kind", KindCluster), ("kubeconfig", KubeconfigCluster),
    ("in-cluster (operator)", InClusterProvider))
"""Each provider as users name it, and its class, whose capabilities decide what it can do."""

DRILLS_DIR = CRD_PATH.parent.parent / "drills"


def providers_for(fault: FaultType) -> list[str]:
    """The providers that have the capability FAULT needs (all of them when it needs none)."""
    return [name for name, cls in PROVIDERS if fault.needs is None or issubclass(cls, fault.needs)]


def how(fault: FaultType) -> str:
    """The fault module's docstring, without its leading `name:`."""
    module = importlib.import_module(f"chaos.drill.faults.{fault.factory.partition(':')[0]}")
    text = paragraph(module.__doc__ or "").removeprefix(f"{fault.name}:").strip()
    return text[:1].upper() + text[1:]


def example_drills() -> dict[str, list[str]]:
    """Fault name to the drill files in manifests/drills/ that use it, by file name."""
    found: dict[str, list[str]] = {}
    for path in sorted(DRILLS_DIR.glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        found.setdefault(document["spec"]["fault"]["type"], []).append(
            f"manifests/drills/{path.name}")
    return found


def fault_fields() -> list[list[str]]:
    """spec.fault's fields from the CRD: name and description."""
    properties = crd_schema()["properties"]["spec"]["properties"]["fault"]["properties"]
    return [[code(f"spec.fault.{name}"), str(schema.get("description", ""))]
            for name, schema in properties.items()]


def section(fault: FaultType, drills: list[str]) -> list[str]:
    lines = [f"## `{fault.name}`", "", f"{fault.summary[0].upper()}{fault.summary[1:]}.", "",
             how(fault), "",
             f"- **Phases:** {' → '.join(code(phase) for phase in fault.phases)}",
             f"- **Followed as:** a {fault.follow.value}",
             f"- **Needs:** {fault.capability}",
             f"- **Providers:** {', '.join(providers_for(fault))}"]
    if fault.instead:
        lines.append(f"- **Elsewhere use:** {code(fault.instead)}")
    if fault.name in OBSERVED:
        lines.append("- **Also recorded by `chaos-drill watch`** when something else causes it")
    if drills:
        lines.append(f"- **Example drills:** {', '.join(code(path) for path in drills)}")
    return lines + [""]


def render() -> str:
    intro = ("Every fault chaos-drill can inject, as declared in its fault registry. The same "
             "name is used everywhere: in `spec.fault.type`, in `chaos-drill faults`, in the "
             "journal and in the `fault` label of the metrics. A fault whose capability the "
             "provider lacks is refused before anything is injected, naming the fault to use "
             "instead. With a probe, an incident about a pod the probed Service sends traffic "
             "to also has the traffic phases `endpoint_removed` and `endpoint_added`, from the "
             "Service's EndpointSlices (see [writing drills](../drills.md)).")
    lines = header("Faults", "chaos/fault_types.py and chaos/faults/", intro)
    lines += table(["fault", "what it does", "needs", "providers"],
                   [[code(f.name), f.summary, f.capability, ", ".join(providers_for(f))]
                    for f in FAULTS])
    drills = example_drills()
    for fault in FAULTS:
        lines += section(fault, drills.get(fault.name, []))
    lines += ["## Fault fields", "",
              "The fields of `spec.fault` (see [the drill spec](drill-spec.md) for types, "
              "defaults and limits):", ""]
    lines += table(["field", "description"], fault_fields())
    return "\n".join(lines).rstrip() + "\n"
