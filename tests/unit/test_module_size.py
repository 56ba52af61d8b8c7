"""Every module of the package stays small enough to read in one sitting."""

from __future__ import annotations

from pathlib import Path

import chaos

MAX_LINES = 400


def test_no_module_is_over_the_limit() -> None:
    package = Path(chaos.__file__).parent
    modules = sorted(package.rglob("*.py"))
    assert len(modules) > 50, f"found only {len(modules)} modules under {package}"
    over = {str(m.relative_to(package)): n for m in modules
            if (n := len(m.read_text().splitlines())) > MAX_LINES}
    assert over == {}, f"modules over {MAX_LINES} lines: split them"
