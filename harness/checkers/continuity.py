"""Sequence continuity: no gaps, no reuse, starting where it should.

``check_sequence`` judges any list of sequence numbers in the order they were
seen (a replica's applied seqs, the input stream's seqs as recorded, the WAL's
record seqs): every seq from ``first`` to the highest seen appears exactly
once, and (with ``ordered``) never after a higher one. ``check_wal_continuity``
applies it to WAL records and also checks that each record's header seq is the
seq of the message it holds (the first 8 bytes of a sequenced-codec payload).

WAL records are accepted as ``(seq, payload)`` pairs or as
``wal_codec.WalRecord`` (``offset, seq, payload``); ``record_seq_payload``
reads either.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .verdict import MAX_EXAMPLES, Verdict, first

REQUIREMENT = "sequence_continuity"
WAL_REQUIREMENT = "wal_continuity"
_PAYLOAD_SEQ = struct.Struct(">Q")

STREAM_COVERAGE = "stream_coverage"

__all__ = ["check_sequence", "check_stream_coverage", "check_wal_continuity",
           "record_seq_payload", "sequence_faults"]


def record_seq_payload(record: Any) -> tuple[int, bytes]:
    """``(seq, payload)`` of a WAL record given as a pair or as a ``WalRecord``."""
    if hasattr(record, "payload") and hasattr(record, "seq"):
        return record.seq, bytes(record.payload)
    seq, payload = record
    return seq, bytes(payload)


def _ranges(missing: Iterable[int]) -> list[list[int]]:
    """Sorted ints as ``[[lo, hi], ...]`` runs."""
    runs: list[list[int]] = []
    for s in missing:
        if runs and s == runs[-1][1] + 1:
            runs[-1][1] = s
        else:
            runs.append([s, s])
    return runs


def sequence_faults(seqs: Sequence[int], first_seq: int | None = 1,
                    ordered: bool = True, last_seq: int | None = None) -> dict[str, Any]:
    """The raw findings for ``seqs``: gaps (ranges), reused seqs, order breaks.

    Shared by ``check_sequence`` and the exactly-once checker. Gaps are
    counted from ``first_seq`` (or the lowest seq when ``first_seq`` is None)
    to the highest seq seen, or to ``last_seq`` (the seq the stream must
    reach: the sequencer's head) when that is higher.
    """
    seen: set[int] = set()
    reused: list[int] = []
    reuse_count = 0
    out_of_order: list[list[int]] = []
    order_breaks = 0
    prev: int | None = None
    for s in seqs:
        if s in seen:
            reuse_count += 1
            if len(reused) < MAX_EXAMPLES and s not in reused:
                reused.append(s)
        elif ordered and prev is not None and s < prev:
            order_breaks += 1
            if len(out_of_order) < MAX_EXAMPLES:
                out_of_order.append([prev, s])
        seen.add(s)
        prev = s if prev is None else max(prev, s)
    low = min(seen) if seen else None
    high = max(seen) if seen else None
    start = first_seq if first_seq is not None else low
    below = sorted(s for s in seen if start is not None and s < start)
    end = high if last_seq is None or (high is not None and high >= last_seq) else last_seq
    gap_runs: list[list[int]] = []
    missing_count = 0
    if start is not None and end is not None and end >= start:
        missing = (s for s in range(start, end + 1) if s not in seen)
        gap_runs = _ranges(missing)
        missing_count = sum(hi - lo + 1 for lo, hi in gap_runs)
    return {
        "count": len(seqs), "distinct": len(seen), "first_expected": start,
        "last_expected": last_seq, "lowest": low, "highest": high,
        "gaps": gap_runs[:MAX_EXAMPLES], "gap_count": len(gap_runs), "missing_count": missing_count,
        "reused": reused, "reuse_count": reuse_count,
        "below_first": first(below), "below_first_count": len(below),
        "out_of_order": out_of_order, "order_break_count": order_breaks,
    }


def _describe(f: dict[str, Any]) -> list[str]:
    problems = []
    if f["gap_count"]:
        lo, hi = f["gaps"][0]
        where = f"{lo}" if lo == hi else f"{lo}..{hi}"
        short = f["last_expected"] is not None and (f["highest"] or 0) < f["last_expected"]
        problems.append(f"{f['missing_count']} seqs missing in {f['gap_count']} gaps "
                        f"(first: {where})" + (f"; the sequencer handed out seqs to "
                                               f"{f['last_expected']}, the stream stops at "
                                               f"{f['highest']}" if short else ""))
    if f["reuse_count"]:
        problems.append(f"{f['reuse_count']} reuses (first: seq {f['reused'][0]})")
    if f["below_first_count"]:
        problems.append(f"{f['below_first_count']} seqs below the first expected "
                        f"{f['first_expected']} (first: {f['below_first'][0]})")
    if f["order_break_count"]:
        a, b = f["out_of_order"][0]
        problems.append(f"{f['order_break_count']} out of order (first: {b} after {a})")
    return problems


def check_sequence(seqs: Sequence[int], first: int | None = 1, ordered: bool = True,
                   requirement: str = REQUIREMENT, what: str = "seqs",
                   last: int | None = None) -> Verdict:
    """Every seq from ``first`` to the highest seen (or ``last``), exactly once (and in order).

    ``first=None`` accepts any starting seq (a WAL whose old segments were
    truncated after a snapshot). ``last``: the sequencer's head, so a seq it
    handed out that never reached the stream counts as missing (a seq
    consumed without a message). No seqs at all is UNKNOWN, unless ``last``
    shows seqs were handed out: then they are all missing.
    """
    seqs = list(seqs)
    f = sequence_faults(seqs, first, ordered, last)
    problems = _describe(f)
    if problems:
        return Verdict.failed(requirement, f"{what}: " + "; ".join(problems), f)
    if not seqs:
        return Verdict.unknown(requirement, f"no {what} to check", f)
    return Verdict.passed(
        requirement, f"{f['count']} {what}, {f['lowest']}..{f['highest']}, no gaps, no reuse", f)


def check_wal_continuity(records: Iterable[Any], first: int | None = 1,
                         check_payload_seq: bool = True,
                         requirement: str = WAL_REQUIREMENT, last: int | None = None) -> Verdict:
    """The WAL's record seqs are continuous and unique, and each record holds its own seq.

    ``check_payload_seq`` compares the header seq with the payload's leading
    u64 (the sequenced codec's ``seq``); turn it off for a WAL whose payload
    is in another format. ``last``: the sequencer's head, once the WAL had
    time to reach it (``check_sequence``).
    """
    pairs = [record_seq_payload(r) for r in records]
    verdict = check_sequence([s for s, _ in pairs], first, True, requirement, "WAL records",
                             last)
    if not check_payload_seq or not pairs:
        return verdict
    mismatched = []
    mismatch_count = 0
    for seq, payload in pairs:
        inner = _PAYLOAD_SEQ.unpack_from(payload)[0] if len(payload) >= 8 else None
        if inner != seq:
            mismatch_count += 1
            if len(mismatched) < MAX_EXAMPLES:
                mismatched.append({"record_seq": seq, "payload_seq": inner})
    evidence = {**verdict.evidence, "payload_seq_mismatches": mismatched,
                "payload_seq_mismatch_count": mismatch_count}
    if not mismatch_count:
        return Verdict(verdict.requirement, verdict.status, verdict.summary, evidence)
    m = mismatched[0]
    problem = (f"{mismatch_count} records hold another seq's message "
               f"(first: record {m['record_seq']} holds seq {m['payload_seq']})")
    summary = problem if verdict.status != "fail" else f"{verdict.summary}; {problem}"
    return Verdict.failed(requirement, summary, evidence)


def check_stream_coverage(coverage: Mapping[str, Mapping[str, Any]],
                          requirement: str = STREAM_COVERAGE) -> Verdict:
    """Every fetched output stream holds every message its publisher published.

    ``coverage``: ``{stream: {"published_seq": n, "fetched": k, ...}}``, where
    ``published_seq`` is the publisher's own head and ``fetched`` how many of
    the seqs 1..n the harness actually got (a retransmission ring may no
    longer hold the oldest). Any other keys (``first_missing``) are kept as
    evidence. UNKNOWN when some stream is partial: a check over it would
    judge only part of what was published. UNKNOWN with no stream at all.
    """
    streams = {name: dict(c) for name, c in coverage.items()}
    partial = {name: c for name, c in streams.items()
               if int(c.get("fetched") or 0) != int(c.get("published_seq") or 0)}
    evidence: dict[str, Any] = {"streams": streams, "partial": sorted(partial)}
    if not streams:
        return Verdict.unknown(requirement, "no output stream was fetched", evidence)
    if partial:
        name = min(partial)
        c = partial[name]
        where = (f", first missing seq {c['first_missing']}"
                 if c.get("first_missing") is not None else "")
        return Verdict.unknown(requirement, f"partial evidence: fetched {c.get('fetched')} of "
                               f"the {c.get('published_seq')} messages {name} published"
                               f"{where}", evidence)
    total = sum(int(c["fetched"]) for c in streams.values())
    return Verdict.passed(requirement, f"{len(streams)} output streams fetched whole "
                          f"({total} messages)", evidence)
