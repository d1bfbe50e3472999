"""Which build of the hot core modules is running, and the switch back to their source.

``reference_impl/core/book.py`` and ``engine.py`` are plain Python and stay
the reference text. Installed with a C compiler at hand, ``setup.py`` also
compiles these two with Cython (``book.pxd`` and ``engine.pxd`` beside them
declare the classes' attribute layouts and a few local types; the ``.py``
files do not change) and Python then imports the extension module in
preference to the source. ``CRUCIBLE_PURE_PYTHON=1`` makes a process import
the source instead: to step through the engine in a debugger, to measure what
the compilation buys, or to run a replica of the other build
(``tests/test_compiled_core.py`` proves that both give the same bytes).
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib.abc import MetaPathFinder
from importlib.machinery import EXTENSION_SUFFIXES, SOURCE_SUFFIXES, FileFinder, ModuleSpec, SourceFileLoader
from pathlib import Path

#: the core modules that setup.py compiles when it can
COMPILED_MODULES = ("reference_impl.core.book", "reference_impl.core.engine")
#: set to 1 (or any value but 0 and empty) to run their source
PURE_ENV = "CRUCIBLE_PURE_PYTHON"


class _SourceOnly(MetaPathFinder):
    """Finds the compiled modules' ``.py`` files, so the extension modules are passed over."""

    def find_spec(self, fullname: str, path: object, target: object = None) -> ModuleSpec | None:
        if fullname not in COMPILED_MODULES or not path:
            return None
        for entry in path:  # type: ignore[attr-defined]
            spec = FileFinder(entry, (SourceFileLoader, SOURCE_SUFFIXES)).find_spec(fullname)
            if spec is not None:
                return spec
        return None


def pure_requested() -> bool:
    return os.environ.get(PURE_ENV, "") not in ("", "0")


def prefer_source() -> None:
    """Import the compiled modules from their source from now on (before their first import)."""
    loaded = [m for m in COMPILED_MODULES if m in sys.modules]
    if loaded:
        raise RuntimeError(f"{', '.join(loaded)} already imported: prefer_source() must come first")
    if not any(isinstance(f, _SourceOnly) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceOnly())


def core_build() -> dict[str, str]:
    """``{"book": "compiled" | "interpreted", "engine": ...}`` for this process."""
    builds = {}
    for name in COMPILED_MODULES:
        module = importlib.import_module(name)
        compiled = str(module.__file__).endswith(tuple(EXTENSION_SUFFIXES))
        builds[name.rpartition(".")[2]] = "compiled" if compiled else "interpreted"
    return builds


def stale_extensions(package_dir: Path) -> list[str]:
    """Extension modules in ``package_dir`` older than their ``.py`` or ``.pxd``: rebuild them.

    A stale extension still wins the import, so an edit to the source would
    silently not run; the test suite calls this on the checkout.
    """
    stale = []
    for name in COMPILED_MODULES:
        short = name.rpartition(".")[2]
        sources = [p for p in (package_dir / f"{short}.py", package_dir / f"{short}.pxd") if p.exists()]
        newest_source = max(p.stat().st_mtime for p in sources)
        for suffix in EXTENSION_SUFFIXES:
            ext = package_dir / f"{short}{suffix}"
            if ext.exists() and ext.stat().st_mtime < newest_source:
                stale.append(ext.name)
    return stale
