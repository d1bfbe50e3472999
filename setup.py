"""Compiles the hot core modules with Cython when it can (reference_impl/core_build.py says why),
and puts the kit's suites and profiles into the wheel.

Everything else about the package is in pyproject.toml. The extensions are
optional: without Cython or a C compiler the install still succeeds and the
same modules run as plain Python.

The checkout's ``suites/`` and ``profiles/`` go into the wheel as
``harness/kit/suites`` and ``harness/kit/profiles`` (``harness/kit.py`` finds
them there, else in the checkout), so that ``pip install .`` or ``pipx
install .`` certifies from any directory while the repository keeps the
layout the docs describe. pyproject.toml cannot add mapped packages to a
discovered list, hence the packages here; their data files are listed in
pyproject.toml's package-data, which setuptools reads instead of setup()'s.
"""

import runpy
from pathlib import Path

from setuptools import find_namespace_packages, setup
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

KIT = {"harness.kit.suites": "suites", "harness.kit.profiles": "profiles"}

setup(ext_modules=ext_modules,
      packages=find_namespace_packages(include=["reference_impl*", "harness*"]) + list(KIT),
      package_dir=KIT)
