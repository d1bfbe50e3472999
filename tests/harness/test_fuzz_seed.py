"""A certification's fuzz frames follow from its seed alone, whatever else is loaded."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

SUITES = Path(__file__).resolve().parents[2] / "suites"


def _frames(seed: int) -> list[bytes]:
    import _fuzz

    got: list[bytes] = []
    _fuzz.fuzz(_fuzz.http_requests({"DEMO1": "demo1pw"}, ["ACME", "GLOBEX"]), 150, seed,
               lambda example: got.append(repr(example).encode()))
    _fuzz.fuzz(_fuzz.ouch_frames(), 150, seed, lambda example: got.append(repr(example).encode()))
    return got


def test_the_same_seed_gives_the_same_frames_after_more_modules_load(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(SUITES))
    first = _frames(42)
    # modules full of literal constants that hypothesis would otherwise mix in
    for name in ("harness.report", "harness.cli.certify", "reference_impl.launch.cluster",
                 "reference_impl.logger.wal_reader", "harness.workload", "_load", "harness.sut.wal_files"):
        importlib.import_module(name)
    assert _frames(42) == first
    assert _frames(43) != first  # and the seed does matter
    assert "_fuzz" in sys.modules
