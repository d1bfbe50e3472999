"""Latency budgets: the verdict of a load run, and the per-stage histograms it reads.

It exists apart from the load generator (``harness.loadgen``) because it is
pure: stage-stamp rows in, per-stage samples out (``stage_samples``); samples
in, HdrHistograms out (``histograms``, built after the run, never with
``record_corrected_value``); histograms and a profile's ``budgets`` in, a
``Verdict`` out (``judge_budget``). It is tested on literal histograms, never
against this machine's latency, and a report can judge recorded samples
without running anything.

A budget key is ``<stage>_p<percentile>_us`` (``engine_p99_us: 50``). The
stamped stages (``STAGES``) are ``sequence`` (gateway in -> sequenced),
``engine`` (sequenced -> decided: the budgeted one), ``durable`` (decided ->
durable) and ``release`` (durable -> gateway out).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.checkers.verdict import FAIL, PASS, UNKNOWN, Verdict
from harness.schedule import NS

REQUIREMENT = "latency_budget"
#: (stage, from stamp, to stamp) of the gateway's stage stamps
STAGES = (("sequence", "gateway_in_ns", "sequenced_ns"), ("engine", "sequenced_ns", "decided_ns"),
          ("durable", "decided_ns", "durable_ns"), ("release", "durable_ns", "gateway_out_ns"))
HGRM_MAX_NS = 3_600 * NS
MIN_COVERAGE = 0.99  #: stage rows / requests the SUT answered, below which a stage is UNKNOWN
_BUDGET_KEY = re.compile(r"^(?P<stage>[a-z][a-z0-9_]*?)_p(?P<pct>\d+(?:[._]\d+)?)_us$")


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    key: str  #: as written in the profile, e.g. ``engine_p99_us``
    stage: str
    percentile: float
    limit_us: float


def parse_budgets(budgets: Mapping[str, Any]) -> list[BudgetCheck]:
    """``{"engine_p99_us": 50, "wire_p99.9_us": 2000}`` -> checks; ``ValueError`` on a bad key."""
    out = []
    for key, limit in (budgets or {}).items():
        m = _BUDGET_KEY.match(str(key))
        if m is None or isinstance(limit, bool) or not isinstance(limit, int | float) or limit <= 0:
            raise ValueError(f"budgets.{key}: want <stage>_p<percentile>_us: <µs > 0>, got {limit!r}")
        pct = float(m["pct"].replace("_", "."))
        if not 0 < pct < 100:
            raise ValueError(f"budgets.{key}: the percentile must be in (0, 100)")
        out.append(BudgetCheck(str(key), m["stage"], pct, float(limit)))
    return out


def min_samples(percentile: float) -> int:
    """Fewest samples for which the percentile is not simply the maximum: 100 for p99."""
    return math.ceil(1.0 / (1.0 - percentile / 100.0) - 1e-9)


def value_at_percentile(hist: Any, percentile: float) -> int:
    """The nearest-rank percentile (rank ``ceil(p/100 * n)``, as the report's table) read from an
    HdrHistogram as the highest value equivalent to its bucket. hdrh's own
    ``get_value_at_percentile`` rounds the rank half-up, one sample short at times."""
    n = int(hist.get_total_count())
    rank = max(1, math.ceil(percentile / 100.0 * n - 1e-9))
    for item in hist.get_recorded_iterator():
        if item.total_count_to_this_value >= rank:
            return int(item.value_iterated_to)
    return int(hist.get_max_value())


def _hardware_text(match: Mapping[str, Any]) -> str:
    if not match:
        return "hardware: no target profile"
    if match.get("matched"):
        return f"hardware matched {match.get('profile')}"
    return f"hardware did NOT match {match.get('profile')} ({len(match.get('reasons') or [])} reasons)"


def judge_budget(histograms: Mapping[str, Any], budget: Mapping[str, Any],
                 hardware_match: Mapping[str, Any] | None, *,
                 expected: Mapping[str, int] | None = None, unanswered: int = 0,
                 min_coverage: float = MIN_COVERAGE) -> Verdict:
    """PASS/FAIL of every ``<stage>_p<pct>_us`` budget, stating whether the hardware matched.

    A check is UNKNOWN when its stage has fewer than ``min_samples`` values or
    fewer than ``min_coverage`` of the ``expected`` count (the samples would be a
    subset). Any FAIL fails; else any UNKNOWN, or requests that got no answer
    (``unanswered``), make it UNKNOWN. The percentile is the nearest rank, read
    from the HdrHistogram (values in ns) as the highest value equivalent to it, so
    rounding never favours the SUT (``value_at_percentile``). The hardware match never changes the status: it is
    stated next to it (summary and evidence).
    """
    match = dict(hardware_match or {})
    hw = _hardware_text(match)
    evidence: dict[str, Any] = {"hardware_match": match, "hardware_matched": match.get("matched"),
                                "unanswered": unanswered, "checks": []}
    checks = parse_budgets(budget)
    if not checks:
        return Verdict.unknown(REQUIREMENT, f"the profile sets no latency budget; {hw}", evidence)
    for c in checks:
        hist = histograms.get(c.stage)
        count = int(hist.get_total_count()) if hist is not None else 0
        row: dict[str, Any] = {"budget": c.key, "stage": c.stage, "percentile": c.percentile,
                               "limit_us": c.limit_us, "count": count, "needed": min_samples(c.percentile)}
        want = (expected or {}).get(c.stage)
        if want is not None:
            row["expected"] = want
        if count < row["needed"]:
            row.update(status=UNKNOWN, why=f"{count} samples; p{c.percentile:g} needs >= {row['needed']}")
        elif want and count < min_coverage * want:
            row.update(status=UNKNOWN, why=f"stage stamps for {count} of {want} answered requests")
        else:
            value = value_at_percentile(hist, c.percentile)
            row.update(value_us=value / 1000, max_us=hist.get_max_value() / 1000,
                       status=PASS if value <= c.limit_us * 1000 else FAIL)
            row["why"] = (f"{c.stage} p{c.percentile:g} {value / 1000:.1f} µs "
                          f"{'<=' if row['status'] == PASS else '>'} {c.limit_us:g} µs (n={count})")
        evidence["checks"].append(row)
    rows = evidence["checks"]
    if any(r["status"] == FAIL for r in rows):
        status, parts = FAIL, [r["why"] for r in rows if r["status"] == FAIL]
    elif any(r["status"] == UNKNOWN for r in rows):
        status, parts = UNKNOWN, [r["why"] for r in rows if r["status"] == UNKNOWN]
    elif unanswered:
        status, parts = UNKNOWN, [r["why"] for r in rows] + [f"{unanswered} requests got no answer"]
    else:
        status, parts = PASS, [r["why"] for r in rows]
    return Verdict(REQUIREMENT, status, "; ".join(parts) + f"; {hw}", evidence)


def histograms(samples: Mapping[str, Sequence[tuple[int, int]]]) -> dict[str, Any]:
    """One HdrHistogram (ns, 1 ns .. 1 h, 3 digits) per stage, from raw values, after the run."""
    from hdrh.histogram import HdrHistogram

    out = {}
    for stage, pts in samples.items():
        h = HdrHistogram(1, HGRM_MAX_NS, 3)
        for _, lat in pts:
            h.record_value(min(max(lat, 1), HGRM_MAX_NS))
        out[stage] = h
    return out


def stage_samples(rows: Sequence[Mapping[str, int]]) -> tuple[dict[str, list[tuple[int, int]]], int]:
    """Per stage ``(gateway_in_ns, duration_ns)`` from stage-stamp rows; and how many durations
    were negative (clocks of different processes; recorded as 0)."""
    out: dict[str, list[tuple[int, int]]] = {name: [] for name, _, _ in STAGES}
    negative = 0
    for r in rows:
        for name, a, b in STAGES:
            if r.get(a) and r.get(b):
                d = r[b] - r[a]
                negative += d < 0
                out[name].append((r["gateway_in_ns"], max(d, 0)))
    return out, negative
