"""Open-loop schedules (harness.schedule): counts, order, rates and seeds, as properties."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.schedule import (
    MAX_COUNT,
    NS,
    ShapeError,
    describe,
    expected_count,
    per_second,
    plan_schedule,
    segments,
)

seeds = st.integers(0, 2**32)
rates = st.integers(10, 5000)
durations = st.sampled_from([0.5, 1.0, 2.0, 3.0])


def window_count(offsets: list[int], start_ns: int, end_ns: int) -> int:
    return sum(start_ns <= t < end_ns for t in offsets)


def test_constant_is_evenly_spaced_from_zero() -> None:
    s = plan_schedule({"kind": "constant", "rate_per_s": 1000, "duration_s": 2}, seed=1)
    assert len(s) == 2000
    assert s[:3] == [0, 1_000_000, 2_000_000]
    assert s[-1] == 1_999_000_000


@settings(max_examples=40, deadline=None)
@given(rate=rates, duration=durations, seed=seeds)
def test_constant_count_order_and_rate(rate: int, duration: float, seed: int) -> None:
    s = plan_schedule({"kind": "constant", "rate_per_s": rate, "duration_s": duration}, seed)
    assert len(s) == math.ceil(rate * duration - 1e-9)
    assert all(a <= b for a, b in pairwise(s))
    assert 0 <= s[0] and s[-1] < duration * NS
    gap = NS / rate  # evenly spaced: every gap within 1 ns of rounding
    assert all(abs((b - a) - gap) <= 1 for a, b in pairwise(s))
    # any window of 100 ms holds rate * 0.1 sends, +-1
    for start in range(0, int(duration * NS) - NS // 10 + 1, NS // 10):
        assert abs(window_count(s, start, start + NS // 10) - rate / 10) <= 1


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["constant", "burst", "ramp"]), arrivals=st.sampled_from(["uniform", "poisson"]),
       seed=seeds)
def test_same_seed_same_schedule(kind: str, arrivals: str, seed: int) -> None:
    shape = {"kind": kind, "rate_per_s": 300, "end_rate_per_s": 600, "duration_s": 2, "arrivals": arrivals}
    assert plan_schedule(shape, seed) == plan_schedule(dict(shape), seed)


def test_uniform_ignores_the_seed_and_poisson_uses_it() -> None:
    uniform = {"kind": "constant", "rate_per_s": 500, "duration_s": 1}
    assert plan_schedule(uniform, 1) == plan_schedule(uniform, 2)
    poisson = {**uniform, "arrivals": "poisson"}
    assert plan_schedule(poisson, 1) != plan_schedule(poisson, 2)


@settings(max_examples=30, deadline=None)
@given(rate=st.integers(200, 3000), seed=seeds)
def test_poisson_rate_within_tolerance(rate: int, seed: int) -> None:
    duration = 2.0
    s = plan_schedule({"kind": "constant", "rate_per_s": rate, "duration_s": duration,
                       "arrivals": "poisson"}, seed)
    mean = rate * duration
    assert abs(len(s) - mean) <= 6 * math.sqrt(mean)  # a Poisson count: 6 sigma
    assert all(a <= b for a, b in pairwise(s))
    assert s[-1] < duration * NS


@settings(max_examples=30, deadline=None)
@given(base=st.integers(50, 1000), factor=st.integers(2, 20), burst_ms=st.integers(5, 100),
       seed=seeds)
def test_bursts_at_their_rate_in_their_window(base: int, factor: int, burst_ms: int, seed: int) -> None:
    shape = {"kind": "burst", "rate_per_s": base, "burst_factor": factor, "burst_ms": burst_ms,
             "every_ms": 1000, "duration_s": 3}
    s = plan_schedule(shape, seed)
    assert abs(len(s) - expected_count(shape)) <= 1
    assert all(a <= b for a, b in pairwise(s))
    for period in range(3):
        start = period * NS + NS // 2  # burst_offset_ms defaults to half the period
        in_burst = window_count(s, start, start + burst_ms * 1_000_000)
        assert abs(in_burst - base * factor * burst_ms / 1000) <= 2
        before = window_count(s, period * NS, start)
        assert abs(before - base / 2) <= 2


def test_ten_ms_bursts_at_ten_times_every_second() -> None:
    shape = {"kind": "burst", "rate_per_s": 1000, "duration_s": 2}  # the defaults: 10 ms, 10x, 1 s
    s = plan_schedule(shape, 0)
    assert window_count(s, 500_000_000, 510_000_000) == 100  # 10 ms at 10 000/s
    assert window_count(s, 400_000_000, 410_000_000) == 10  # 10 ms at 1 000/s
    assert len(s) == 2 * (990 + 100)


@settings(max_examples=30, deadline=None)
@given(r0=st.integers(0, 500), r1=st.integers(600, 4000), seed=seeds)
def test_ramp_rate_rises_linearly(r0: int, r1: int, seed: int) -> None:
    duration = 4
    s = plan_schedule({"kind": "ramp", "start_rate_per_s": r0, "end_rate_per_s": r1,
                       "duration_s": duration}, seed)
    assert abs(len(s) - (r0 + r1) / 2 * duration) <= 1
    assert all(a <= b for a, b in pairwise(s))
    counts = per_second(s, duration)
    for sec, n in enumerate(counts):  # the integral of the rate over that second, +-1
        want = r0 + (r1 - r0) * (sec + 0.5) / duration
        assert abs(n - want) <= 1.5
    assert counts == sorted(counts)


def test_max_count_bounds_the_schedule() -> None:
    s = plan_schedule({"kind": "constant", "rate_per_s": 1000, "duration_s": 10, "max_count": 250}, 0)
    assert len(s) == 250 and s[-1] == 249_000_000


@pytest.mark.parametrize("shape, key", [
    ({"kind": "zigzag", "duration_s": 1}, "kind"),
    ({"kind": "constant", "duration_s": 1}, "rate_per_s"),
    ({"kind": "constant", "rate_per_s": -5, "duration_s": 1}, "rate_per_s"),
    ({"kind": "constant", "rate_per_s": 10}, "duration_s"),
    ({"kind": "constant", "rate_per_s": 10, "duration_s": 10_000}, "duration_s"),
    ({"kind": "constant", "rate_per_s": True, "duration_s": 1}, "rate_per_s"),
    ({"kind": "burst", "rate_per_s": 10, "burst_ms": 1000, "duration_s": 1}, "burst_ms"),
    ({"kind": "burst", "rate_per_s": 10, "burst_offset_ms": 995, "duration_s": 1}, "burst_offset_ms"),
    ({"kind": "ramp", "duration_s": 1}, "end_rate_per_s"),
    ({"kind": "constant", "rate_per_s": 10, "duration_s": 1, "arrivals": "bursty"}, "arrivals"),
    ({"kind": "constant", "rate_per_s": 10, "duration_s": 1, "max_count": MAX_COUNT + 1}, "max_count"),
])
def test_bad_shapes_say_which_key(shape: dict, key: str) -> None:
    with pytest.raises(ShapeError) as err:
        plan_schedule(shape, 0)
    assert err.value.key == key


def test_segments_cover_the_duration() -> None:
    segs = segments({"kind": "burst", "rate_per_s": 100, "duration_s": 2.5})
    assert segs[0].start_s == 0 and segs[-1].end_s == 2.5
    assert all(a.end_s == b.start_s for a, b in pairwise(segs))


def test_describe() -> None:
    assert describe({"kind": "constant", "rate_per_s": 1000, "duration_s": 10}) == \
        "constant 1000/s for 10 s (uniform)"
    assert "ramp 0->5000/s" in describe({"kind": "ramp", "end_rate_per_s": 5000, "duration_s": 3})
