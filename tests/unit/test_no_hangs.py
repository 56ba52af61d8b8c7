"""Nothing in chaos/ or tests/ can wait for ever: every subprocess call has a timeout, and no
wait, join, communicate or queue get is called without one. (A deliberate endless wait says so in
a comment on its line: `# waits until stopped`.) Lock `with` blocks and queues are not checked."""

from __future__ import annotations

import ast
from pathlib import Path

from support import REPO

SUBPROCESS_CALLS = {"run", "check_output", "check_call", "call"}
BLOCKING_METHODS = {"wait", "join", "communicate", "acquire"}
ALLOWED = "# waits until stopped"


def unbounded_calls(path: Path) -> list[str]:
    source = path.read_text()
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        keywords = {k.arg for k in node.keywords}
        owner = node.func.value
        name = node.func.attr
        subprocess_call = (isinstance(owner, ast.Name) and owner.id == "subprocess"
                           and name in SUBPROCESS_CALLS and "timeout" not in keywords)
        bare_wait = name in BLOCKING_METHODS and not node.args and not node.keywords
        line = lines[node.lineno - 1]
        if (subprocess_call or bare_wait) and ALLOWED not in line:
            found.append(f"{path.relative_to(REPO)}:{node.lineno}: {line.strip()}")
    return found


def test_no_call_can_wait_for_ever() -> None:
    files = sorted([*REPO.glob("chaos/**/*.py"), *REPO.glob("tests/**/*.py")])
    assert len(files) > 50
    found = [hit for path in files for hit in unbounded_calls(path)]
    assert not found, "add a timeout:\n" + "\n".join(found)
