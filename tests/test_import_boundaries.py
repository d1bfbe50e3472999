"""The house's thresholds: who may import what, and no import cycles.

- The harness and the suites reach a SUT only through the adapter
  (``harness/sut/``). Of ``reference_impl`` they may import the core's value
  vocabulary (messages, codecs, replay format, errors,
  the durability policy names) anywhere; anything else
  only from the modules in ``ALLOWED``, each with its reason.
- ``reference_impl`` never imports the harness or the suites.
- No import cycle inside ``reference_impl/`` or ``harness/``, counting imports
  made inside functions; only ``if TYPE_CHECKING:`` imports are exempt.

Parsed with ``ast``, so an import inside a function or a ``from x import y``
of a submodule counts like any other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("reference_impl", "harness", "suites")

#: core modules that are vocabulary (values and their encodings), importable anywhere
VOCABULARY = {
    "reference_impl.core", "reference_impl.core.messages", "reference_impl.core.errors",
    "reference_impl.core.replay_format", "reference_impl.core.ouch_messages",
    "reference_impl.core.ouch_codec", "reference_impl.core.soupbin_codec",
    "reference_impl.core.mold_codec", "reference_impl.core.sequenced_codec",
    "reference_impl.core.output_codec", "reference_impl.core.status_codec",
    "reference_impl.core.wal_codec",
    "reference_impl.core.durability",  # the policy names a SUT declares and a profile schedules
}

#: harness/suites modules that may import more of reference_impl, and why
ALLOWED = {
    "harness.sut.reference": "the reference adapter: drives reference_impl",
    "harness.cli.up": "`crucible up/down` operate the reference cluster itself",
    "harness.cli.wal": "`crucible wal` reads the reference's write-ahead log",
    "harness.cli.replay": "`crucible engine replay` runs the reference engine offline",
    "harness.checkers.determinism": "the reference engine is the determinism checker's oracle (its verdict says so)",
}


def _allowed(module: str) -> bool:
    return module in ALLOWED or module.startswith("harness.sut.reference")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            out[_module_name(path)] = path
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:`` (exempt: never executed)."""
    exempt: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = getattr(test, "id", None) or getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                exempt.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return exempt


def imports_of(module: str, path: Path, known: set[str]) -> Iterator[str]:
    """Every project module ``module`` imports (a ``from pkg import sub`` names ``pkg.sub``)."""
    tree = ast.parse(path.read_text(), str(path))
    exempt = _type_checking_nodes(tree)
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if id(node) in exempt:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_pkg else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] not in PACKAGES:
                continue
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
            if len(subs) < len(node.names):
                yield target
            yield from subs


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {m: {t for t in imports_of(m, p, known) if t in known and t != m} for m, p in mods.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    scc = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        scc.append(top)
                        if top == node:
                            break
                    if len(scc) > 1:
                        out.append(sorted(scc))
    return out


def _reaches(graph: dict[str, set[str]]) -> list[str]:
    """Imports of reference_impl beyond its vocabulary from outside the allow-list."""
    return [f"{module} imports {t}" for module, targets in sorted(graph.items())
            if not module.startswith("reference_impl") and not _allowed(module)
            for t in sorted(targets) if t.startswith("reference_impl") and t not in VOCABULARY]


def test_harness_and_suites_reach_the_reference_only_through_the_adapter() -> None:
    bad = _reaches(_graph())
    assert not bad, "\n".join(bad)


def test_reference_impl_never_imports_the_harness() -> None:
    bad = [f"{m} imports {t}" for m, ts in sorted(_graph().items()) if m.startswith("reference_impl")
           for t in sorted(ts) if not t.startswith("reference_impl")]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package", ["reference_impl", "harness"])
def test_no_import_cycles(package: str) -> None:
    graph = {m: {t for t in ts if t.startswith(package)} for m, ts in _graph().items()
             if m.startswith(package)}
    assert _cycles(graph) == []


def test_the_allow_list_names_existing_modules() -> None:
    mods = _modules()
    assert [m for m in ALLOWED if m not in mods] == []


def test_checker_sees_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    a = tmp_path / "a.py"
    a.write_text("def f():\n    from harness.b import x\n")
    b = tmp_path / "b.py"
    b.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from harness.a import y\n"
                 "import harness.a\n")
    known = {"harness.a", "harness.b"}
    graph = {"harness.a": set(imports_of("harness.a", a, known)),
             "harness.b": set(imports_of("harness.b", b, known))}
    assert _cycles(graph) == [["harness.a", "harness.b"]]
    b.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import harness.a\n")
    graph["harness.b"] = set(imports_of("harness.b", b, known))
    assert _cycles(graph) == []


def test_checker_sees_a_forbidden_reach(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from reference_impl.logger import wal_reader\nfrom reference_impl.core import messages\n")
    known = {"reference_impl.logger", "reference_impl.logger.wal_reader", "reference_impl.core",
             "reference_impl.core.messages"}
    graph = {"suites.probe": set(imports_of("suites.probe", probe, known))}
    assert _reaches(graph) == ["suites.probe imports reference_impl.logger.wal_reader"]
