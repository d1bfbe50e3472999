"""The compiled core (Cython, from the same .py files) and the plain source agree byte for byte.

Each build runs in its own process (``CRUCIBLE_PURE_PYTHON=1`` selects the
source, reference_impl/core_build.py): the sample replay file and a stream of
the benchmark's standard mix (every order type, cancels, reduces, replaces,
market sweeps) must give identical output bytes and state hashes. Without a
compiled build there is nothing to compare and the tests skip, unless
``CRUCIBLE_EXPECT_COMPILED=1`` (set by .ci/run) says the install must have
built one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reference_impl import core_build

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "reference_impl" / "core"

# Prints the build, then a digest of every output of the sample replay and of
# the standard mix, and the final state hashes.
_RUN_BOTH_STREAMS = r"""
import hashlib, io, json, sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/benchmarks"]
from reference_impl.core_build import core_build
from reference_impl.core.engine import Engine
from harness.cli.replay import replay_lines
from engine_throughput import build_stream

out = io.StringIO()
with open(sys.argv[1] + "/samples/orders.jsonl") as f:
    replay_lines(f, Engine(), out)
warm, timed, _ = build_stream(seed=3, messages=20_000, depth=300)
engine, digest = Engine(), hashlib.sha256()
for m in warm + timed:
    for o in engine.apply(m):
        digest.update(repr(tuple(o)).encode())
print(json.dumps({"build": core_build(),
                  "replay": hashlib.sha256(out.getvalue().encode()).hexdigest(),
                  "mix": digest.hexdigest(), "mix_state": engine.state_hash(),
                  "mix_snapshot": hashlib.sha256(engine.snapshot()).hexdigest()}))
"""


def _compiled_here() -> bool:
    return all(b == "compiled" for b in core_build.core_build().values())


@pytest.fixture(scope="module")
def compiled() -> None:
    if not _compiled_here():
        if os.environ.get("CRUCIBLE_EXPECT_COMPILED") == "1":
            pytest.fail(f"no compiled core although CRUCIBLE_EXPECT_COMPILED=1: {core_build.core_build()}")
        pytest.skip("the core runs interpreted here (no C compiler at install): nothing to compare")


def _run(pure: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k != core_build.PURE_ENV}
    if pure:
        env[core_build.PURE_ENV] = "1"
    done = subprocess.run([sys.executable, "-c", _RUN_BOTH_STREAMS, str(ROOT)], env=env,
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_compiled_and_source_builds_give_identical_outputs_and_state(compiled: None) -> None:
    c, p = _run(pure=False), _run(pure=True)
    assert c.pop("build") == {"book": "compiled", "engine": "compiled"}
    assert p.pop("build") == {"book": "interpreted", "engine": "interpreted"}
    assert c == p


def test_compiled_modules_are_not_older_than_their_source(compiled: None) -> None:
    assert core_build.stale_extensions(CORE) == [], "rebuild them: pip install -e ."


def test_prefer_source_refuses_once_the_engine_is_imported() -> None:
    import reference_impl.core.engine  # noqa: F401

    with pytest.raises(RuntimeError, match="already imported"):
        core_build.prefer_source()


def test_pure_switch_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in (("", False), ("0", False), ("1", True), ("yes", True)):
        monkeypatch.setenv(core_build.PURE_ENV, value)
        assert core_build.pure_requested() is expected
