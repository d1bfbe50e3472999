"""Compiles the hot core modules with Cython when it can (reference_impl/core_build.py says why).

Everything else about the package is in pyproject.toml. The extensions are
optional: without Cython or a C compiler the install still succeeds and the
same modules run as plain Python.
"""

import runpy
from pathlib import Path

from setuptools import setup
from setuptools.extension import Extension

# the list lives with the code that reports and switches the build (stdlib only, safe to run here)
COMPILED_MODULES = runpy.run_path(str(Path(__file__).parent / "reference_impl" / "core_build.py"))[
    "COMPILED_MODULES"]

try:
    from Cython.Build import cythonize
except ImportError:  # a build without Cython: the interpreted core
    ext_modules = []
else:
    ext_modules = cythonize(
        [Extension(name, [name.replace(".", "/") + ".py"]) for name in COMPILED_MODULES],
        # the .py annotations describe the Python API; the .pxd files alone type the C build
        compiler_directives={"language_level": 3, "annotation_typing": False},
    )
    for ext in ext_modules:  # optional: a failed compile leaves the source to run
        ext.optional = True

setup(ext_modules=ext_modules)
