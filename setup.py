"""Compiles the hot core modules with Cython when it can (reference_impl/core_build.py says why).

Everything else about the package is in pyproject.toml. The extensions are
optional: without Cython or a C compiler the install still succeeds and the
same modules run as plain Python.
"""

from setuptools import setup
from setuptools.extension import Extension

try:
    from Cython.Build import cythonize
except ImportError:  # a build without Cython: the interpreted core
    ext_modules = []
else:
    ext_modules = cythonize(
        [Extension(f"reference_impl.core.{name}", [f"reference_impl/core/{name}.py"], optional=True)
         for name in ("book", "engine")],
        # the .py annotations describe the Python API; the .pxd files alone type the C build
        compiler_directives={"language_level": 3, "annotation_typing": False},
    )
    for ext in ext_modules:  # cythonize returns new Extensions without the flag
        ext.optional = True

setup(ext_modules=ext_modules)
