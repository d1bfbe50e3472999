"""The detection table: which requirement must catch each test-only broken variant of the reference.

One home for it, read by ``tests/test_detection_power.py`` (each variant
against its one targeted suite selection) and ``crucible self-check`` (each
variant against the whole profile). The variant names are the reference's
``BROKEN_VARIANTS`` (docs/config.md ``faults:``), written here as strings so
that the harness needs nothing of the reference to read the table; a test
holds the two lists equal both ways, and every requirement named here to a
``@pytest.mark.requirement`` of the suites.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

MATCHING = ("test_matching_rules.py", "rule_conformance", "matching.rule_conformance")


@dataclass(frozen=True, slots=True)
class Detection:
    """One broken variant: the mistake it makes and the suite test whose requirement must FAIL on it."""

    variant: str  #: the fault flag (``CRUCIBLE_SUT_FAULTS``)
    mistake: str  #: the class of implementer's mistake, in words
    module: str  #: the suite module (under suites/) of the targeted selection
    keyword: str  #: the pytest ``-k`` expression selecting the test in that module
    requirement: str  #: the requirement that must fail
    rule: str = ""  #: the rule of docs/matching-rules.md its failing verdict must name, if any
    cause: str = ""  #: how its failing verdict must begin (the part of the check that caught it)


DETECTIONS: tuple[Detection, ...] = (
    Detection("ack_before_durable", "an acknowledgement released before its order is durable",
              "test_zero_loss.py", "kill-logger", "zero_loss.kill_logger"),
    Detection("skip_dedup", "a re-sent request sequenced again (no dedup)",
              "test_exactly_once.py", "resend", "exactly_once.gateway_resend.sequenced_once"),
    Detection("nondeterministic_tiebreak", "a non-deterministic tie-break: replicas diverge",
              "test_determinism.py", "replica_checkpoints", "determinism.replica_checkpoints"),
    Detection("unmuted_secondary", "a secondary engine that publishes too: every report twice",
              "test_exactly_once.py", "reported_once", "exactly_once.bus_faults.reported_once"),
    Detection("ignore_wal_crc", "a WAL reader that accepts a record with a bad CRC",
              "test_zero_loss.py", "bitflip", "zero_loss.bitflip_wal_tail"),
    Detection("no_gap_rerequest", "a receiver that never re-requests a gap",
              "test_exactly_once.py", "same_final_state", "exactly_once.bus_faults.same_final_state"),
    Detection("stall_after_fault", "a stream that stalls for good after a fault",
              "test_exactly_once.py", "resend", "exactly_once.gateway_resend.sequenced_once",
              cause="liveness after the fault: "),
    Detection("dedup_forgets", "a dedup that forgets old requests", "test_exactly_once.py", "resend",
              "exactly_once.gateway_resend.sequenced_once",
              cause="exactly_once.gateway_resend.sequenced_once.sequencer: "),
    Detection("seq_without_message", "a sequence number consumed without a message",
              "test_exactly_once.py", "continuity", "exactly_once.sequence_continuity",
              cause="WAL records: "),
    Detection("fok_partial_fill", "a fill-or-kill that partly fills", *MATCHING, rule="R6"),
    Detection("min_qty_ignored", "a minimum quantity ignored", *MATCHING, rule="R7"),
    Detection("market_remainder_rests", "a market order's remainder that rests", *MATCHING, rule="R8"),
    Detection("reduce_loses_priority", "a reduce that loses priority", *MATCHING, rule="R9"),
    Detection("replace_keeps_priority", "a replace that keeps its priority", *MATCHING, rule="R11"),
    Detection("soupbin_resume_after", "a SoupBinTCP re-login replayed from the requested number + 1",
              "test_session_resume.py", "soupbintcp_resume", "exactly_once.session_resume.soupbintcp"),
    Detection("sse_resume_at_id", "an SSE stream resumed from Last-Event-ID itself, not after it",
              "test_session_resume.py", "sse_resume", "exactly_once.session_resume.sse"),
    Detection("gateway_skips_output_gap", "a gateway that gives up an output-stream gap (no re-request)",
              "test_exactly_once_output.py", "output_faults", "exactly_once.output_faults.reported_once",
              cause="liveness after the fault: "),
    Detection("forward_refused", "a gateway that refuses an order for backpressure yet forwards it",
              "test_backpressure.py", "never_sequenced", "backpressure.refused_never_sequenced"),
)

BY_VARIANT: dict[str, Detection] = {d.variant: d for d in DETECTIONS}


class UnknownVariant(ValueError):
    """A variant name outside the detection table."""


def select(names: Iterable[str]) -> list[Detection]:
    """The rows for ``names`` in the order given; an unknown name raises, with a close match and the list."""
    rows = []
    for name in names:
        if name not in BY_VARIANT:
            close = difflib.get_close_matches(name, list(BY_VARIANT), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UnknownVariant(f"unknown variant {name!r}{hint}; known: {', '.join(BY_VARIANT)}")
        rows.append(BY_VARIANT[name])
    return rows


# ------------------------------------------------------------------ judging a self-check

PASSING = ("pass", "n/a")  #: the statuses a clean run may give without a false alarm
RUN = "(run)"  #: the false alarm's requirement when a clean run's verdict fails with no requirement to blame


@dataclass(frozen=True, slots=True)
class RunResult:
    """One certification run of a self-check, as its report.json tells it."""

    variant: str  #: the broken variant switched on; "" for the clean reference
    seed: int
    statuses: dict[str, str]  #: requirement -> status
    summaries: dict[str, str]  #: requirement -> verdict summary
    verdict: str
    verdict_summary: str
    seconds: float
    run_dir: str

    @classmethod
    def from_report(cls, report: dict, variant: str, seconds: float, run_dir: str) -> RunResult:
        rows = report["requirements"]
        return cls(variant, int(report["seed"]), {r["id"]: r["status"] for r in rows},
                   {r["id"]: r["summary"] for r in rows}, report["verdict"], report["verdict_summary"],
                   seconds, run_dir)

    def failed(self) -> list[str]:
        return sorted(r for r, s in self.statuses.items() if s == "fail")


def false_alarms(run: RunResult) -> list[dict]:
    """A clean run's requirements that are neither pass nor n/a (or the run itself, if none is to blame)."""
    alarms = [{"seed": run.seed, "requirement": r, "status": s, "summary": run.summaries[r]}
              for r, s in sorted(run.statuses.items()) if s not in PASSING]
    if not alarms and run.verdict not in PASSING:
        alarms.append({"seed": run.seed, "requirement": RUN, "status": run.verdict,
                       "summary": run.verdict_summary})
    return alarms


def summarize(clean: list[RunResult], broken: list[RunResult]) -> dict:
    """The self-check's result (self-check.json): each variant caught or not, the false alarms, the exit code.

    A variant is caught when the requirement its row names FAILED; another
    requirement failing instead is listed but does not count. Exit code 0
    only when every variant is caught and no clean run raised an alarm.
    """
    variants = []
    for run in broken:
        row = BY_VARIANT[run.variant]
        status = run.statuses.get(row.requirement, "not run")
        variants.append({"variant": run.variant, "mistake": row.mistake, "requirement": row.requirement,
                         "status": status, "caught": status == "fail", "failed": run.failed(),
                         "summary": run.summaries.get(row.requirement, run.verdict_summary),
                         "seed": run.seed, "seconds": round(run.seconds, 1), "run_dir": run.run_dir})
    alarms = [a for run in clean for a in false_alarms(run)]
    caught = sum(v["caught"] for v in variants)
    ok = caught == len(variants) and not alarms
    return {"variants": variants, "caught": caught, "of": len(variants),
            "clean_runs": [{"seed": r.seed, "verdict": r.verdict, "seconds": round(r.seconds, 1),
                            "run_dir": r.run_dir} for r in clean],
            "false_alarms": alarms, "exit_code": 0 if ok else 1}


def render(summary: dict) -> str:
    """The self-check's result as a markdown table and two totals (also readable as plain text)."""
    lines = []
    if summary["variants"]:
        lines += ["| variant | class of mistake | requirement that must catch it | its status | caught | failed in all |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| `{v['variant']}` | {v['mistake']} | `{v['requirement']}` | {v['status'].upper()} | "
                  f"{'yes' if v['caught'] else '**NO**'} | {', '.join(v['failed']) or '-'} |"
                  for v in summary["variants"]]
        lines += ["", f"caught {summary['caught']} of {summary['of']}"]
    runs, alarms = summary["clean_runs"], summary["false_alarms"]
    if runs:
        seeds = ", ".join(str(r["seed"]) for r in runs)
        total = f"{len(alarms)} false alarm{'s' * (len(alarms) != 1)} in {len(runs)} clean run{'s' * (len(runs) != 1)}"
        lines += ["", f"{total} (seeds {seeds})"]
        lines += [f"- seed {a['seed']}: `{a['requirement']}` {a['status'].upper()}: {a['summary']}"
                  for a in alarms]
    return "\n".join(lines).strip() + "\n"
