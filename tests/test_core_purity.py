"""The deterministic core must not reach for I/O, clocks, threads or randomness.

Parsed with ``ast`` rather than grepped so that an ``import os as o`` or a
``from time import monotonic`` inside a function is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "reference_impl" / "core"
FORBIDDEN = {
    "socket", "asyncio", "threading", "multiprocessing", "subprocess",
    "time", "random", "os", "logging", "select", "selectors", "signal",
}


def _imported_roots(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            roots.add("__import__")
    return roots


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_no_io(path: Path) -> None:
    bad = _imported_roots(ast.parse(path.read_text(), str(path))) & (FORBIDDEN | {"__import__"})
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_checker_catches_a_forbidden_import() -> None:
    assert _imported_roots(ast.parse("def f():\n    from time import monotonic\n")) == {"time"}
