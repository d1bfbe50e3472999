"""The report's plots, rendered with matplotlib's Agg backend to base64 PNG strings.

- ``latency_over_time``: latency per stage against run time (raw points when
  few, else per-bin p50 and max lines), with every fault window shaded and
  named, and client throughput (ok completions per second) below it when the
  history has any.
- ``percentile_spectrum``: latency against percentile on a log "nines" axis
  (x = -log10(1 - p): 90 %, 99 %, 99.9 %...), the HdrHistogram view, where
  tails show.

Figures are built with ``matplotlib.figure.Figure`` and a canvas of their
own, never ``pyplot``: no global state, safe inside pytest. Every function
returns None when there is nothing to draw; ``available()`` says whether
matplotlib is installed (the ``report`` extra).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence

from harness.report.samples import percentile

RAW_POINTS_MAX = 5000  #: above this many samples a stage is drawn as binned p50/max lines
BINS = 200
FAULT_COLOURS = ("#f4a261", "#e76f51", "#9b5de5", "#00bbf9", "#f15bb5", "#2a9d8f")


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _png(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _log_y(ax) -> None:
    """A log latency axis labelled 20, 50, 100 rather than 2x10^1."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _binned(pts: Sequence[tuple[float, float]], lo: float, hi: float):
    width = (hi - lo) / BINS or 1.0
    bins: dict[int, list[float]] = {}
    for t, v in pts:
        bins.setdefault(min(int((t - lo) / width), BINS - 1), []).append(v)
    xs, p50, mx = [], [], []
    for b in sorted(bins):
        vals = sorted(bins[b])
        xs.append(lo + (b + 0.5) * width)
        p50.append(percentile(vals, 50.0))
        mx.append(vals[-1])
    return xs, p50, mx


def latency_over_time(samples: Mapping[str, Sequence[tuple[int, int]]],
                      faults: Sequence[tuple[str, int, int | None]],
                      throughput: Sequence[int] = (), t0_ns: int | None = None) -> str | None:
    """Latency (µs, log scale) against seconds since ``t0_ns``; None when there is nothing to draw.

    ``throughput`` holds completion times (ns) of ok client ops, drawn per second below.
    """
    series = {s: pts for s, pts in samples.items() if pts}
    if not series and not faults:
        return None
    from matplotlib.figure import Figure

    times = [t for pts in series.values() for t, _ in pts] + [f[1] for f in faults] + list(throughput)
    t0 = min(times) if t0_ns is None else t0_ns
    end = max([t + lat for pts in series.values() for t, lat in pts] + [f[2] or f[1] for f in faults]
              + list(throughput) + [t0 + 1])
    span = (end - t0) / 1e9
    rows = 2 if throughput else 1
    fig = Figure(figsize=(10, 4.5 if rows == 1 else 6))
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": [3, 1][:rows]})[:, 0]
    ax = axes[0]
    for stage, pts in series.items():
        xy = [((t - t0) / 1e9, max(lat, 1) / 1000) for t, lat in pts]
        if len(xy) <= RAW_POINTS_MAX:
            ax.plot([x for x, _ in xy], [y for _, y in xy], ".", markersize=2, alpha=0.6, label=stage)
        else:
            xs, p50, mx = _binned(xy, 0.0, span)
            line = ax.plot(xs, p50, "-", linewidth=1, label=f"{stage} p50")[0]
            ax.plot(xs, mx, ":", linewidth=1, color=line.get_color(), label=f"{stage} max")
    if series:
        _log_y(ax)
        ax.set_ylabel("latency (µs)")
        ax.legend(loc="upper right", fontsize="small")
    else:
        ax.set_yticks([])
        ax.set_ylabel("no latency samples")
    for i, (name, start, stop) in enumerate(faults):
        colour = FAULT_COLOURS[i % len(FAULT_COLOURS)]
        x0, x1 = (start - t0) / 1e9, ((stop if stop is not None else end) - t0) / 1e9
        for a in axes:
            a.axvspan(x0, max(x1, x0 + span / 500), color=colour, alpha=0.25, linewidth=0)
        ax.annotate(name + ("" if stop is not None else " (open)"), xy=(x0, 1.0),
                    xycoords=("data", "axes fraction"), xytext=(2, -4), textcoords="offset points",
                    rotation=90, va="top", ha="left", fontsize="x-small", color="#333")
    ax.set_title("latency over time (shaded: fault windows)")
    if throughput:
        width = max(span / 100, 0.01)  # seconds per throughput bin
        counts = [0] * (int(span / width) + 1)
        for t in throughput:
            counts[min(int((t - t0) / 1e9 / width), len(counts) - 1)] += 1
        axes[1].step([i * width for i in range(len(counts))], [c / width for c in counts],
                     where="post", linewidth=1)
        axes[1].set_ylabel("ok ops/s")
    axes[-1].set_xlim(0, span * 1.02)
    axes[-1].set_xlabel("seconds since the first operation")
    return _png(fig)


def nines(p: float) -> float:
    """The "nines" coordinate of a percentile in [0, 100): 90 -> 1, 99 -> 2, 99.9 -> 3."""
    return -math.log10(1.0 - p / 100.0)


def percentile_spectrum(samples: Mapping[str, Sequence[tuple[int, int]]]) -> str | None:
    """Latency (µs) against percentile on a "nines" axis, one line per stage."""
    series = {s: sorted(lat for _, lat in pts) for s, pts in samples.items() if pts}
    if not series:
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.5))
    ax = fig.subplots()
    top = 1
    for stage, values in series.items():
        n = len(values)
        depth = max(1.0, math.log10(n))  # no more nines than the samples can support
        top = max(top, math.ceil(depth))
        steps = 200
        xs = [depth * i / steps for i in range(steps + 1)]
        ys = [percentile(values, 100.0 * (1 - 10 ** -x)) / 1000 if x < depth else values[-1] / 1000
              for x in xs]
        ax.plot(xs, [max(y, 0.001) for y in ys], linewidth=1.2, label=f"{stage} (n={n})")
    ticks = list(range(top + 1))
    ax.set_xticks(ticks)
    ax.set_xticklabels(["0%"] + [f"{100 - 10 ** (2 - k):g}%" for k in ticks[1:]])
    _log_y(ax)
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (µs)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    ax.set_title("latency percentile spectrum")
    return _png(fig)
