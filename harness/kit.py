"""Where the kit's own conformance suites and profiles are.

A wheel (``pip install .``, ``pipx install .``) carries the checkout's
``suites/`` and ``profiles/`` inside this package, as ``harness/kit/suites``
and ``harness/kit/profiles`` (setup.py maps them there), so that an install
certifies from any directory. A source checkout or an editable install has
no such copy and reads them at the top of the checkout, where the docs and
``pytest suites/`` expect them.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
PACKAGED = PACKAGE / "kit"  #: the wheel's copies
CHECKOUT = PACKAGE.parent  #: a source checkout or an editable install


def kit_dir(name: str) -> Path:
    """The kit's ``suites`` or ``profiles`` directory: the wheel's copy, else the checkout's."""
    packaged = PACKAGED / name
    return packaged if packaged.is_dir() else CHECKOUT / name
