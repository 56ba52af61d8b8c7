"""The package's layers, checked by following every module's imports (function-level ones too)
through every chain: no module reaches a layer above its own, however many hops away."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

import pytest

from support import REPO

PACKAGE = REPO / "chaos"
LAYERS: dict[str, int] = {
    # 0 base: the exception tree, the stdlib-only latency figures (the prober pod runs them
    # alone), where shipped files, the build cache and the pinned versions are, state files
    # written whole or not at all, the bounded HTTP server that the exporter and the live page
    # share
    "chaos": 0, "chaos.errors": 0, "chaos.latency": 0, "chaos.resources": 0,
    "chaos.statefile": 0, "chaos.serving": 0,
    # 1 images: image archives built with no registry; they know no cluster
    "chaos.images": 1,
    # 2 cluster: providers, the API client (kube), applying manifests (workloads); loads images
    "chaos.cluster": 2,
    # 3 drill: spec, targeting, the fault registry and faults, timeline, restore, signals
    "chaos.drill": 3,
    # 4 observe: watches and the prober; they report through protocols, never to results/metrics
    "chaos.observe": 4,
    # 5 results: journal, summary, causes, junit, report
    "chaos.results": 5,
    # 6 monitoring: the exporter (metrics), Prometheus (host and in-cluster), dashboards
    "chaos.monitoring": 6,
    # 7 the runner: wires the drill to observe/, results/ and metrics; probing sets up its prober
    # (the prober pod's image setting is observe/'s)
    "chaos.run": 7,
    # 8 fronts that run drills or show them: live views, the operator, the pytest plugin
    "chaos.view": 8, "chaos.operator": 8, "chaos.pytest_plugin": 8,
    # 9 the command line, on top of everything
    "chaos.cli": 9, "chaos.__main__": 9,
    # the reference pages, generated from the parser, the registry, the schema and the metrics
    "chaos.reference": 9,
}


def module_names(package: Path) -> dict[str, Path]:
    """Every module under PACKAGE by dotted name; a package's __init__ is the package."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imports(name: str, path: Path, modules: Mapping[str, Path]) -> set[str]:
    """The modules of the package that importing NAME (at PATH) runs, anywhere in its source:
    `from chaos.cluster import kube` counts as chaos.cluster.kube, and every parent package."""
    root = name.split(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(here[:len(here) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    resolved = set()
    for target in found:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        while target.startswith(root):
            if target in modules:
                resolved.add(target)
            target = target.rpartition(".")[0]
    return resolved - {name}


def layer_of(name: str, layers: Mapping[str, int]) -> int | None:
    """The layer of the longest prefix of NAME that LAYERS names."""
    owners = [prefix for prefix in layers if name == prefix or name.startswith(prefix + ".")]
    return layers[max(owners, key=len)] if owners else None


def upward_chains(package: Path, layers: Mapping[str, int]) -> list[str]:
    """Every module that reaches a higher layer, each with the shortest chain that does it."""
    modules = module_names(package)
    graph = {name: imports(name, path, modules) for name, path in modules.items()}
    wrong = []
    for start in sorted(modules):
        own = layer_of(start, layers)
        paths, queue = {start: [start]}, [start]
        while queue:
            current = queue.pop(0)
            for target in sorted(graph[current]):
                if target in paths:
                    continue
                paths[target] = [*paths[current], target]
                queue.append(target)
        for target, chain in paths.items():
            above = layer_of(target, layers)
            if own is not None and above is not None and above > own:
                wrong.append(f"{start} (layer {own}) reaches {target} (layer {above}): "
                             + " -> ".join(chain))
                break
    return wrong


MODULES = module_names(PACKAGE)


def test_every_module_has_a_layer() -> None:
    assert [name for name in MODULES if layer_of(name, LAYERS) is None] == []


def test_the_layers_name_real_modules() -> None:
    assert [prefix for prefix in LAYERS if prefix not in MODULES] == []


def test_no_module_reaches_a_layer_above_its_own() -> None:
    assert upward_chains(PACKAGE, LAYERS) == []


def test_the_checker_follows_chains_and_function_level_imports(tmp_path: Path) -> None:
    package = tmp_path / "fake"
    (package / "mid").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("from fake.mid import helper\n")
    (package / "mid" / "__init__.py").write_text("")
    (package / "mid" / "helper.py").write_text("def f() -> None:\n    from fake import top\n")
    (package / "top.py").write_text("import fake.low\n")
    layers = {"fake": 0, "fake.low": 0, "fake.mid": 0, "fake.top": 1}
    assert upward_chains(package, layers) == [
        "fake.low (layer 0) reaches fake.top (layer 1): fake.low -> fake.mid.helper -> fake.top",
        "fake.mid.helper (layer 0) reaches fake.top (layer 1): fake.mid.helper -> fake.top",
    ]


@pytest.mark.parametrize("source", ["from fake.mid import helper", "import fake.mid.helper",
                                    "from .mid import helper", "from . import mid"])
def test_the_checker_resolves_each_spelling_of_an_import(tmp_path: Path, source: str) -> None:
    package = tmp_path / "fake"
    (package / "mid").mkdir(parents=True)
    for path in (package / "__init__.py", package / "mid" / "__init__.py",
                 package / "mid" / "helper.py"):
        path.write_text("")
    (package / "low.py").write_text(f"def f() -> None:\n    {source}\n")
    modules = module_names(package)
    assert "fake.mid" in imports("fake.low", package / "low.py", modules)
