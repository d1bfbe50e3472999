"""pytest-benchmark micro-benchmarks of ``Engine.apply`` (for ``--benchmark-compare-fail``).

Each round applies the same small pre-built stream of the standard mix (see
``engine_throughput``) to a fresh engine whose books were warmed up outside
the timed part; the figure is per stream, so ops/s = stream length / mean.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
for _p in (str(_HERE.parent), str(_HERE)):
    if _p not in sys.path:
        sys.path.append(_p)

from engine_throughput import build_stream  # noqa: E402
from naive_book import NaiveBook  # noqa: E402

from reference_impl.core.engine import Engine  # noqa: E402

STREAM = 5_000


@pytest.fixture(scope="module")
def stream():
    return build_stream(seed=3, messages=STREAM, depth=1000, settle=5_000)


def _run_stream(factory, stream):
    warm, timed, _ = stream

    def setup():
        target = factory()
        for m in warm:
            target.apply(m)
        return (target.apply, timed), {}

    def run(apply, msgs):
        for m in msgs:
            apply(m)

    return setup, run


def test_engine_apply_standard_mix(benchmark, stream):
    setup, run = _run_stream(Engine, stream)
    benchmark.extra_info["messages"] = STREAM
    benchmark.pedantic(run, setup=setup, rounds=15, iterations=1)


def test_naive_book_standard_mix(benchmark, stream):
    setup, run = _run_stream(NaiveBook, stream)
    benchmark.extra_info["messages"] = STREAM
    benchmark.pedantic(run, setup=setup, rounds=15, iterations=1)


def test_engine_state_hash(benchmark, stream):
    warm, timed, _ = stream
    engine = Engine()
    for m in warm + timed:
        engine.apply(m)
    benchmark(engine.state_hash)
