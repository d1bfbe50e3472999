"""Latency samples for the report: record, summarize, save, load.

A sample is ``(time_ns, latency_ns)`` under a stage name (``client``,
``engine``, ``durable``...): ``time_ns`` is when the operation was meant to
start, on the same monotonic clock as the history (so fault windows line up
on the plot), and ``latency_ns`` is measured from that intended time (open
loop: a stall cannot hide). Samples are saved as ``latencies.csv``
(``stage,time_ns,latency_ns``) and, per stage, as an HdrHistogram
percentile distribution ``latency-<stage>.hgrm`` (microseconds).

When a run recorded no samples, ``from_history`` derives a ``client`` stage
from the history: every client op that completed ``ok``, from its invoke
(or the ``intended_ns`` in its invoke value) to its completion.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from harness.history import NEMESIS, OK, Op, pairs

Samples = dict[str, list[tuple[int, int]]]  #: stage -> [(time_ns, latency_ns)]

#: the percentiles report.json lists for each stage
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9), ("p99.99", 99.99))
HGRM_MAX_NS = 3_600 * 10**9  #: one hour: larger latencies are clamped in the .hgrm


def percentile(sorted_values: Sequence[int], pct: float) -> int:
    """Nearest-rank percentile of an already sorted, non-empty sequence."""
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values) - 1e-9))  # 99.9 % of 1000 is 999, not 1000
    return sorted_values[min(rank, len(sorted_values)) - 1]


def percentile_us(values_ns: Iterable[float], pct: float) -> float:
    """Nearest-rank percentile of unsorted ns values, in µs (the benchmarks' figures)."""
    return percentile(sorted(values_ns), pct) / 1000


def summarize(samples: Mapping[str, Sequence[tuple[int, int]]]) -> dict[str, dict[str, float]]:
    """Per stage: count, min, the ``PERCENTILES`` and max, in microseconds."""
    out = {}
    for stage, pts in samples.items():
        if not pts:
            continue
        values = sorted(lat for _, lat in pts)
        row: dict[str, float] = {"count": len(values), "min_us": values[0] / 1000}
        for name, pct in PERCENTILES:
            row[f"{name}_us"] = percentile(values, pct) / 1000
        row["max_us"] = values[-1] / 1000
        out[stage] = row
    return out


def from_history(ops: Iterable[Op]) -> Samples:
    """A ``client`` stage from the history's ok completions (empty when there are none)."""
    pts = []
    for inv, done in pairs(ops):
        if inv.process == NEMESIS or done is None or done.type != OK:
            continue
        start = inv.value.get("intended_ns", inv.time_ns) if isinstance(inv.value, dict) else inv.time_ns
        if isinstance(start, int) and done.time_ns >= start:
            pts.append((start, done.time_ns - start))
    return {"client": pts} if pts else {}


def write_csv(path: str | Path, samples: Mapping[str, Sequence[tuple[int, int]]]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["stage", "time_ns", "latency_ns"])
        for stage, pts in samples.items():
            w.writerows((stage, t, lat) for t, lat in pts)


def read_csv(path: str | Path) -> Samples:
    out: Samples = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["stage"], []).append((int(row["time_ns"]), int(row["latency_ns"])))
    return out


def hgrm_name(stage: str) -> str:
    return "latency-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", stage) + ".hgrm"


def write_hgrm(path: str | Path, pts: Sequence[tuple[int, int]]) -> bool:
    """An HdrHistogram percentile distribution in microseconds; False when hdrhistogram is missing."""
    try:
        from hdrh.histogram import HdrHistogram
    except ImportError:
        return False
    hist = HdrHistogram(1, HGRM_MAX_NS, 3)
    for _, lat in pts:
        hist.record_value(min(max(lat, 1), HGRM_MAX_NS))
    with open(path, "wb") as fh:
        hist.output_percentile_distribution(fh, 1000.0)
    return True
