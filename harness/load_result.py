"""What a load run produced, and the numbers derived from it after the run.

It exists apart from the runner (``harness.loadgen``) because it is pure
bookkeeping over a finished run's ops: no threads, no sockets, no clock, so
it is tested on literal ops. ``LoadResult.samples`` gives the per-stage
``(time_ns, latency_ns)`` the budget verdict (``harness.latency_budget``)
and the report read: ``wire`` (intended send -> response received), the
stamped stages ``sequence``, ``engine``, ``durable`` and ``release``
(``latency_budget.STAGES``), and ``send_lag`` (intended -> actually sent: the
generator's own delay, already inside ``wire``). ``counts``, ``throughput``
and ``summary`` are what ``load.json`` holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.history import FAIL as OP_FAIL
from harness.history import INFO, OK, Op
from harness.latency_budget import STAGES, stage_samples
from harness.schedule import NS, per_second

WIRE, SEND_LAG = "wire", "send_lag"


@dataclass
class LoadResult:
    door: str
    shape: dict[str, Any]
    t0_ns: int
    offsets: list[int]
    invokes: list[Op | None]
    completions: list[Op | None]
    duration_s: float = 0.0  #: of the schedule: the shape's, or less under a duration cap
    stage_rows: list[dict[str, int]] = field(default_factory=list)
    answered: int | None = None  #: requests the SUT says it answered (stage rows expected)
    unsent: int = 0  #: slots never sent: the run hit its hard stop
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def samples(self) -> dict[str, list[tuple[int, int]]]:
        wire, lag = [], []
        for i, done in enumerate(self.completions):
            inv = self.invokes[i]
            if inv is None:
                continue
            t = self.t0_ns + self.offsets[i]
            lag.append((t, inv.time_ns - t))
            if done is not None and not str(done.value.get("reason", "")).startswith("not sent"):
                wire.append((t, done.time_ns - t))
        stages, _ = stage_samples(self.stage_rows)
        return {WIRE: wire, **stages, SEND_LAG: lag}

    def counts(self) -> dict[str, int]:
        c = {"scheduled": len(self.offsets), "sent": sum(i is not None for i in self.invokes),
             OK: 0, OP_FAIL: 0, INFO: 0, "not_sent": 0, "backpressure": 0, "unsent": self.unsent}
        for done in self.completions:
            if done is None:
                continue
            c[done.type] += 1
            reason = str(done.value.get("reason", ""))
            c["not_sent"] += reason.startswith("not sent")
            c["backpressure"] += (done.value.get("status") == 429 or reason == "backpressure"
                                  or any(o.get("reason") == "backpressure" for o in done.value.get("outputs") or []))
        return c

    @property
    def unanswered(self) -> int:
        """Slots the SUT never answered: info (unknown), not sent, or past the hard stop."""
        c = self.counts()
        return c[INFO] + c["not_sent"] + c["unsent"]

    def expected(self) -> dict[str, int]:
        if self.answered is None:
            return {}
        return {name: self.answered for name, _, _ in STAGES}

    def throughput(self) -> list[dict[str, int]]:
        """Per second of the run: offered (scheduled), sent, and completions by type."""
        span = max(len(per_second(self.offsets)), 1)
        bins = [{"second": s, "offered": 0, "sent": 0, OK: 0, OP_FAIL: 0, INFO: 0} for s in range(span)]
        for i, n in enumerate(per_second(self.offsets)):
            bins[i]["offered"] = n
        for op, key in [(op, "sent") for op in self.invokes] + [(op, None) for op in self.completions]:
            if op is not None:
                s = (op.time_ns - self.t0_ns) // NS
                while s >= len(bins):
                    bins.append({"second": len(bins), "offered": 0, "sent": 0, OK: 0, OP_FAIL: 0, INFO: 0})
                bins[max(s, 0)][key or op.type] += 1
        return bins

    def summary(self) -> dict[str, Any]:
        c = self.counts()
        span_s = self.duration_s
        _, negative = stage_samples(self.stage_rows)
        return {"door": self.door, "shape": self.shape, "duration_s": self.duration_s, "counts": c,
                "offered_per_s": round(c["scheduled"] / span_s, 1) if span_s else None,
                "ok_per_s": round(c[OK] / self.elapsed_s, 1) if self.elapsed_s else None,
                "elapsed_s": round(self.elapsed_s, 3), "stage_rows": len(self.stage_rows),
                "answered_by_sut": self.answered, "negative_stage_durations": negative,
                "notes": self.notes, "throughput": self.throughput()}
