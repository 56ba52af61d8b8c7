"""The package's layers, checked by parsing every module's imports (function-level ones too):
lower layers never import upper ones."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "chaos"
FRONTS = ("chaos.cli", "chaos.commands", "chaos.operator", "chaos.live", "chaos.pytest_plugin",
          "chaos.views", "chaos.__main__")
UPPER = ("chaos.drill.runner", *FRONTS)
RULES: dict[str, tuple[str, ...]] = {
    # module prefix: what it must not import
    "chaos.observe": ("chaos.drill.faults", "chaos.view", *UPPER),
    "chaos.view": ("chaos.drill.faults", *UPPER),
    "chaos.drill.faults": ("chaos.observe", *UPPER),
    "chaos.cluster": ("chaos.drill.faults", "chaos.observe", "chaos.results", *UPPER),
    "chaos.drill.fault_types": ("chaos.drill.faults", "chaos.observe", "chaos.results", *UPPER),
    "chaos.monitoring": ("chaos.drill.faults", "chaos.observe", "chaos.results", *UPPER),
    "chaos.results": ("chaos.drill.faults", "chaos.observe", *UPPER),
    "chaos.drill.timeline": ("chaos.drill.faults", "chaos.observe", "chaos.results", *UPPER),
    # stdlib only, shared by the prober (which runs alone in a pod) and the summary
    "chaos.latency": ("chaos.drill.faults", "chaos.observe", "chaos.results", "chaos.view",
                      "chaos.cluster.kube", *UPPER),
    "chaos.drill.spec": ("chaos.drill.faults", "chaos.observe", "chaos.results", *UPPER),
    "chaos.drill.targeting": ("chaos.drill.faults", "chaos.observe", "chaos.results", *UPPER),
    "chaos.cluster.kube": ("chaos.drill.faults", "chaos.observe", "chaos.results", *UPPER),
    "chaos.monitoring.metrics": ("chaos.drill.faults", "chaos.observe", *UPPER),
    "chaos.drill.runner": FRONTS,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every chaos module PATH imports; `from chaos.cluster import kube` counts."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "chaos" or name.startswith("chaos.")}


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_lower_layers_never_import_upper_ones(module: str) -> None:
    forbidden = [bad for prefix, bads in RULES.items() if within(module, prefix) for bad in bads]
    wrong = sorted(name for name in imported(MODULES[module])
                   if any(within(name, bad) for bad in forbidden))
    assert not wrong, f"{module} imports {', '.join(wrong)}, a layer above it"


def test_the_rules_name_real_modules() -> None:
    for prefix in RULES:
        assert any(within(name, prefix) for name in MODULES), prefix


def test_the_checker_sees_function_level_imports(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("def f() -> None:\n    from chaos.drill.faults import fault_for\n"
                      "from chaos.cluster import kube\n")
    assert {"chaos.drill.faults", "chaos.drill.faults.fault_for",
            "chaos.cluster.kube"} <= imported(source)
