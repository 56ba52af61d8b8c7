"""Tests cannot poison each other through imports: no file under tests/ imports a test module
(test_*), so what they share lives in tests/support.py or a helper module named without test_
(tests/bench/benchsupport.py)."""

from __future__ import annotations

import ast
from pathlib import Path

from support import REPO


def imports_of_test_modules(path: Path) -> list[str]:
    """Every import in PATH that names a module test_* (or imports a name test_* from one, which
    may be a module too), as 'file:line: name'."""
    where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or "", *(alias.name for alias in node.names)]
        else:
            continue
        for name in names:
            if any(part.startswith("test_") for part in name.split(".")):
                found.append(f"{where}:{node.lineno}: {name}")
    return found


def test_no_test_module_imports_another() -> None:
    files = sorted((REPO / "tests").rglob("*.py"))
    assert len(files) > 50
    found = [hit for path in files for hit in imports_of_test_modules(path)]
    assert found == [], ("a test module imports another: move what they share into "
                         "tests/support.py\n" + "\n".join(found))


def test_the_check_sees_every_form_of_import(tmp_path: Path) -> None:
    module = tmp_path / "fake.py"
    module.write_text("import test_drills\nfrom test_drills import run\nfrom . import test_x\n"
                      "import support\nfrom support import REPO\nimport a.test_b as c\n"
                      "def f():\n    from test_late import g\n")
    assert [hit.split(": ")[1] for hit in imports_of_test_modules(module)] == [
        "test_drills", "test_drills", "test_x", "a.test_b", "test_late"]
