"""Open-loop send schedules: when each request is *meant* to leave, fixed before the run.

Theory of operation
-------------------
A load shape (the ``shape:`` mapping of a load profile) is a rate over time,
``rate(t)`` requests per second for ``0 <= t < duration_s``. It is cut into
segments whose rate is linear in time (constant and bursts: flat segments;
a ramp: one sloped segment), so the expected number of requests sent by
time ``t`` is ``N(t) = integral of rate``, in closed form per segment.

The i-th request's intended send offset is ``N^-1(x_i)``:

- ``arrivals: uniform`` (the default): ``x_i = i``, evenly spaced at the
  local rate, the first at offset 0. The seed plays no part.
- ``arrivals: poisson``: ``x_i`` are the partial sums of Exp(1) draws from
  ``random.Random(seed)``, an inhomogeneous Poisson process by time
  rescaling. The same seed gives the same schedule.

The schedule ends at ``duration_s`` or after ``max_count`` requests,
whichever comes first, so every run is bounded in count and in time before
it starts. Offsets are integer nanoseconds from the run's start, never
decreasing. Pure: no clock, no I/O; the runner (``harness.loadgen``) adds
the start time and sends each request at ``start + offset``, late rather
than never.

Shapes (every rate in requests per second, every key but ``kind`` optional
unless marked):

- ``constant``: ``rate_per_s`` (required).
- ``burst``: ``rate_per_s`` (required) between bursts; every ``every_ms``
  (1000) a burst of ``burst_ms`` (10) at ``burst_rate_per_s`` (default
  ``burst_factor`` (10) x ``rate_per_s``), starting ``burst_offset_ms``
  (``every_ms / 2``) into each period.
- ``ramp``: linear from ``start_rate_per_s`` (0) to ``end_rate_per_s``
  (required) over the whole duration: past the SUT's saturation point, the
  latency knee shows where it starts to queue.

Common keys: ``duration_s`` (required, at most ``MAX_DURATION_S``),
``max_count`` (default and ceiling ``MAX_COUNT``), ``arrivals``. A key of
no kind (``SHAPE_KEYS``) is a ``ShapeError``: a misspelled one would
otherwise plan the default silently. A key of another kind is ignored, so
that switching ``kind`` alone works.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any, NamedTuple

KINDS = ("constant", "burst", "ramp")
ARRIVALS = ("uniform", "poisson")
SHAPE_KEYS = ("kind", "duration_s", "max_count", "arrivals", "rate_per_s",  # constant
              "burst_rate_per_s", "burst_factor", "burst_ms", "every_ms", "burst_offset_ms",  # burst
              "start_rate_per_s", "end_rate_per_s")  # ramp
MAX_DURATION_S = 3600.0
MAX_COUNT = 2_000_000
NS = 1_000_000_000


class ShapeError(ValueError):
    """A load shape that cannot be planned (the profile's fault)."""

    def __init__(self, key: str, reason: str) -> None:
        self.key, self.reason = key, reason
        super().__init__(f"shape.{key}: {reason}")


class Segment(NamedTuple):
    """``[start_s, end_s)`` whose rate goes linearly from ``rate0`` to ``rate1`` (per second)."""

    start_s: float
    end_s: float
    rate0: float
    rate1: float

    @property
    def count(self) -> float:
        """Expected requests in the segment: the integral of its rate."""
        return (self.rate0 + self.rate1) / 2.0 * (self.end_s - self.start_s)

    def time_of(self, c: float) -> float:
        """The time at which the segment's running count reaches ``c`` (0 <= c <= count)."""
        if c <= 0.0:
            return self.start_s
        length = self.end_s - self.start_s
        a = (self.rate1 - self.rate0) / (2.0 * length)  # N(t) = rate0 t + a t^2
        if a == 0.0:
            return self.start_s + c / self.rate0
        # the stable root of a t^2 + rate0 t - c = 0 (also for rate0 = 0 or a < 0)
        disc = max(self.rate0 * self.rate0 + 4.0 * a * c, 0.0)
        return self.start_s + 2.0 * c / (self.rate0 + math.sqrt(disc))


def _number(shape: Mapping[str, Any], key: str, default: float | None = None, *,
            positive: bool = True, minimum: float = 0.0) -> float:
    value = shape.get(key, default)
    if value is None:
        raise ShapeError(key, "is required")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ShapeError(key, f"must be a number, got {value!r}")
    if positive and value <= 0:
        raise ShapeError(key, f"must be > 0, got {value!r}")
    if value < minimum:
        raise ShapeError(key, f"must be >= {minimum}, got {value!r}")
    return float(value)


def segments(shape: Mapping[str, Any]) -> list[Segment]:
    """The shape as linear-rate segments covering ``[0, duration_s)``."""
    kind = shape.get("kind", "constant")
    if kind not in KINDS:
        raise ShapeError("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    for key in shape:
        if key not in SHAPE_KEYS:
            raise ShapeError(str(key), f"unknown key; known: {', '.join(SHAPE_KEYS)}")
    duration = _number(shape, "duration_s")
    if duration > MAX_DURATION_S:
        raise ShapeError("duration_s", f"at most {MAX_DURATION_S:g} s, got {duration:g}")
    if kind == "constant":
        rate = _number(shape, "rate_per_s")
        return [Segment(0.0, duration, rate, rate)]
    if kind == "ramp":
        r0 = _number(shape, "start_rate_per_s", 0.0, positive=False)
        r1 = _number(shape, "end_rate_per_s")
        return [Segment(0.0, duration, r0, r1)]
    base = _number(shape, "rate_per_s")
    every = _number(shape, "every_ms", 1000.0) / 1000.0
    burst = _number(shape, "burst_ms", 10.0) / 1000.0
    if burst >= every:
        raise ShapeError("burst_ms", "a burst must be shorter than its period (every_ms)")
    peak = _number(shape, "burst_rate_per_s", base * _number(shape, "burst_factor", 10.0))
    offset = _number(shape, "burst_offset_ms", every * 500.0, positive=False) / 1000.0
    if offset + burst > every:
        raise ShapeError("burst_offset_ms", "the burst must end within its period")
    out: list[Segment] = []
    t = 0.0
    while t < duration:
        edges = (t, t + offset, t + offset + burst, t + every)
        for (a, b), rate in zip(pairwise(edges), (base, peak, base), strict=True):
            a, b = min(a, duration), min(b, duration)
            if b > a:
                out.append(Segment(a, b, rate, rate))
        t += every
    return out


def expected_count(shape: Mapping[str, Any]) -> float:
    """``N(duration_s)``: requests the shape asks for before ``max_count`` applies."""
    return sum(s.count for s in segments(shape))


def plan_schedule(shape: Mapping[str, Any], seed: int) -> list[int]:
    """Intended send offsets (ns from the run's start, non-decreasing); see the module doc."""
    segs = segments(shape)
    arrivals = shape.get("arrivals", "uniform")
    if arrivals not in ARRIVALS:
        raise ShapeError("arrivals", f"must be one of {', '.join(ARRIVALS)}, got {arrivals!r}")
    limit = int(_number(shape, "max_count", MAX_COUNT))
    if limit > MAX_COUNT:
        raise ShapeError("max_count", f"at most {MAX_COUNT}, got {limit}")
    rng = random.Random(seed) if arrivals == "poisson" else None
    out: list[int] = []
    base = 0.0  # the running count at the current segment's start
    x = rng.expovariate(1.0) if rng is not None else 0.0  # the next target count
    last = 0
    for seg in segs:
        top = base + seg.count
        while x < top - 1e-9 and len(out) < limit:
            t_ns = round(seg.time_of(x - base) * NS)
            t_ns = min(max(t_ns, last, int(seg.start_s * NS)), math.ceil(seg.end_s * NS) - 1)
            out.append(t_ns)
            last = t_ns
            x += rng.expovariate(1.0) if rng is not None else 1.0
        base = top
        if len(out) >= limit:
            break
    return out


def per_second(offsets: Sequence[int], duration_s: float | None = None) -> list[int]:
    """How many sends each whole second of the schedule holds (the offered load over time)."""
    span = math.ceil(duration_s) if duration_s else (offsets[-1] // NS + 1 if offsets else 0)
    counts = [0] * max(span, 0)
    for t in offsets:
        i = t // NS
        if i < len(counts):
            counts[i] += 1
    return counts


def describe(shape: Mapping[str, Any]) -> str:
    """One line for humans: ``constant 1000/s for 10 s (uniform)``."""
    kind = shape.get("kind", "constant")
    d = shape.get("duration_s")
    arr = shape.get("arrivals", "uniform")
    if kind == "ramp":
        what = f"ramp {shape.get('start_rate_per_s', 0):g}->{shape.get('end_rate_per_s'):g}/s"
    elif kind == "burst":
        base = float(shape.get("rate_per_s", 0))
        peak = shape.get("burst_rate_per_s", base * float(shape.get("burst_factor", 10)))
        what = (f"{base:g}/s with {shape.get('burst_ms', 10):g} ms bursts at {float(peak):g}/s "
                f"every {shape.get('every_ms', 1000):g} ms")
    else:
        what = f"constant {shape.get('rate_per_s'):g}/s"
    return f"{what} for {d:g} s ({arr})"
