"""Zero acknowledged loss: every order a client was told is accepted survives the fault.

An *acknowledged order* is a history op with f ``new`` or ``replace`` that
completed ``ok`` and whose recorded outputs include the ``accepted`` (or
``replaced``) output for its order: ``(account, token)``, the new token for a
replace. Every acknowledged order must be in the WAL (when the WAL's orders
are given) and in the recovered state (when given: the orders the recovered
SUT holds, from its journal or from querying each order's status).

The verdict needs evidence. Fewer than ``min_acked`` orders acknowledged
before the first fault (nemesis op) is UNKNOWN, never a pass: a trial that
acknowledged nothing cannot show that nothing acknowledged was lost. One lost
order is a FAIL however few were acknowledged. ``info`` ops (outcome unknown)
and ops still open are neither acknowledged nor lost: they are counted as
``open``, with how many of them the evidence shows did happen.

The durability policy under test is part of the verdict: ``none`` acks before
anything is durable, so it is never zero-loss and always FAILs; a loss under
``replicated`` (expected after a power-off, which it does not cover) FAILs
with the policy named as the cause.

``check_power_off`` judges one power-off trial against what the policy
promises. Only ``fsync`` promises to survive power loss; under another policy
(``replicated`` survives process crashes) the loss is *measured and shown*:
acknowledged orders lost and an RPO-like figure (``rpo_ms``: how long before
the power went the earliest lost order was acknowledged), labelled as outside
the policy's promise (N/A), unless the profile requires it (``required``),
when it is judged as under ``fsync``. A loss FAILs first; then a trial whose
crash discarded nothing (no write or flush in flight was cut) is UNKNOWN: it
could not have lost anything.

``check_ack_after_flush`` judges the moment of durability from outside the
SUT: under ``fsync`` no acknowledgement may reach a client before the flush
that covers its order's record has completed (the lossy filesystem logs when
each byte range became durable; the harness finds each record by its token).

``check_no_corrupt_accepted`` judges recovery from a torn or corrupt WAL: every
intact record in front of the first bad one, and no record past it, must have
been applied; with no intact record at all the verdict is UNKNOWN.

``check_corrupt_middle_refused`` judges a defect in the *middle* of a segment
(a bad record with intact records after it). No crash explains that, so
cutting the log there would throw durable, acknowledged records away: the
WAL tool must report it and the logger must refuse to start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.history import INFO, NEMESIS, OK, Op, pairs
from reference_impl.core import sequenced_codec
from reference_impl.core.durability import FSYNC
from reference_impl.core.errors import DecodeError
from reference_impl.core.messages import NewOrder, Replace

from .continuity import record_seq_payload
from .exactly_once import ORDER_FS, order_key, outcome_outputs
from .verdict import FAIL, MAX_EXAMPLES, Verdict, first

REQUIREMENT = "zero_acked_loss"
POWER_OFF = "zero_loss.power_off"
ACK_AFTER_FLUSH = "zero_loss.ack_after_flush"
SURVIVES_POWER_LOSS = frozenset({FSYNC})  #: the policies that promise an ack survives a power loss
CUT_KEYS = ("bytes_discarded", "writes_discarded", "flushes_cut")  #: what a crash report says it cut
CORRUPT = "zero_loss.no_corrupt_record_applied"
CORRUPT_MIDDLE = "zero_loss.bitflip_wal_middle"
DEFAULT_MIN_ACKED = 100
#: order statuses that mean "the recovered SUT does not hold this order"
ABSENT_STATUSES = frozenset({None, "", "missing", "absent", "unknown", "not_found", "rejected"})

__all__ = [
    "acknowledged_orders",
    "check_ack_after_flush",
    "check_corrupt_middle_refused",
    "check_no_corrupt_accepted",
    "check_power_off",
    "check_zero_acked_loss",
    "wal_orders_from_records",
]

OrderKey = tuple[str, str]


def wal_orders_from_records(records: Iterable[Any],
                            errors: list[tuple[int, str]] | None = None) -> set[OrderKey]:
    """``(account, token)`` of every NewOrder and of every Replace's new token in the WAL.

    Records are ``(seq, payload)`` pairs or ``WalRecord``s with sequenced-codec
    payloads. A payload that does not decode is skipped and, when ``errors``
    is given, reported there as ``(seq, reason)``.
    """
    orders: set[OrderKey] = set()
    for record in records:
        seq, payload = record_seq_payload(record)
        try:
            msg = sequenced_codec.decode(payload)
        except DecodeError as exc:
            if errors is not None:
                errors.append((seq, str(exc)))
            continue
        if isinstance(msg.body, NewOrder):
            orders.add((msg.account, msg.body.token))
        elif isinstance(msg.body, Replace):
            orders.add((msg.account, msg.body.new_token))
    return orders


def _first_fault_index(ops: list[Op]) -> int | None:
    for op in ops:
        if op.process == NEMESIS and op.f == "fault":
            return op.index
    return None


def acknowledged_orders(
        ops: Iterable[Op]) -> tuple[dict[OrderKey, int], list[tuple[OrderKey, int]]]:
    """``({order: index of its ack}, [(order, invoke index) of info / open order ops])``."""
    acked: dict[OrderKey, int] = {}
    open_ops: list[tuple[OrderKey, int]] = []
    for inv, done in pairs(ops):
        if inv.f not in ORDER_FS:
            continue
        if done is None or done.type == INFO:
            open_ops.append((order_key(inv, done), inv.index))
            continue
        if done.type != OK:
            continue
        for o in outcome_outputs(inv, done):
            if o["type"] in ("accepted", "replaced"):
                key = (o.get("account"), o.get("token"))
                acked.setdefault(key, done.index)
    return acked, open_ops


def _present_set(recovered: set | Mapping | Iterable | None) -> set[OrderKey] | None:
    if recovered is None:
        return None
    if isinstance(recovered, Mapping):
        return {tuple(k) for k, status in recovered.items() if status not in ABSENT_STATUSES}
    return {tuple(k) for k in recovered}


def check_zero_acked_loss(ops: Iterable[Op], wal_orders: set[OrderKey] | None,
                          recovered_orders: set | Mapping | None,
                          min_acked: int = DEFAULT_MIN_ACKED, policy: str = "fsync",
                          requirement: str = REQUIREMENT) -> Verdict:
    """Every acknowledged order is in the WAL and in the recovered state (see the module doc).

    ``recovered_orders``: a set of ``(account, token)`` the recovered SUT holds,
    or a mapping ``(account, token) -> status`` (``ABSENT_STATUSES`` mean absent).
    Either source may be None; both None is UNKNOWN.
    """
    ops = list(ops)
    acked, open_ops = acknowledged_orders(ops)
    fault_at = _first_fault_index(ops)
    before = sum(1 for idx in acked.values() if fault_at is None or idx < fault_at)
    wal = _present_set(wal_orders)
    recovered = _present_set(recovered_orders)
    in_order = sorted(acked, key=acked.__getitem__)
    lost_wal = [k for k in in_order if wal is not None and k not in wal]
    lost_rec = [k for k in in_order if recovered is not None and k not in recovered]
    lost = list(dict.fromkeys(lost_wal + lost_rec))
    seen_anywhere = (wal or set()) | (recovered or set())
    evidence: dict[str, Any] = {
        "policy": policy, "min_acked": min_acked,
        "acked": len(acked), "acked_before_fault": before,
        "fault_at_op": fault_at,
        "sources": [s for s, v in (("wal", wal), ("recovered", recovered)) if v is not None],
        "lost": [list(k) for k in first(lost)], "lost_count": len(lost),
        "lost_from_wal": [list(k) for k in first(lost_wal)], "lost_from_wal_count": len(lost_wal),
        "lost_from_recovered": [list(k) for k in first(lost_rec)],
        "lost_from_recovered_count": len(lost_rec),
        "open": len(open_ops),
        "open_found": sum(1 for k, _ in open_ops if k in seen_anywhere),
        "open_ops": [idx for _, idx in open_ops[:MAX_EXAMPLES]],
    }
    if wal is None and recovered is None:
        return Verdict.unknown(requirement, "no evidence: neither the WAL's orders nor the "
                               "recovered state were given", evidence)
    if lost:
        where = " and ".join(s for s, n in (("the WAL", lost_wal), ("the recovered state",
                                                                    lost_rec)) if n)
        summary = (f"{len(lost)} of {len(acked)} acknowledged orders missing from {where} "
                   f"(first: {list(lost[0])})")
        if policy == "replicated":
            summary += ("; cause: durability policy 'replicated' acknowledges before fsync, "
                        "so a power-off loses acknowledged orders")
        elif policy == "none":
            summary += "; cause: durability policy 'none' acknowledges before anything is durable"
        return Verdict.failed(requirement, summary, evidence)
    if policy == "none":
        return Verdict.failed(requirement, "durability policy 'none' is not zero-loss: it "
                              "acknowledges before anything is durable (nothing was lost in "
                              f"this trial of {len(acked)} acknowledged orders)", evidence)
    if before < min_acked:
        return Verdict.unknown(requirement, f"only {before} acknowledged orders before the "
                               f"fault; need {min_acked}", evidence)
    return Verdict.passed(requirement, f"all {len(acked)} acknowledged orders survived "
                          f"({', '.join(evidence['sources'])}); {len(open_ops)} ops stayed "
                          f"open, policy {policy}", evidence)


def _rpo_ms(ops: list[Op], wal: set[OrderKey], crash_reports: Sequence[Mapping]) -> float:
    """From the earliest acknowledgement of a lost order to the power-off, in ms (0 when none).

    The power-off is the crash instant the reports give (``at_ns``, on the
    monotonic clock the history uses), else the fault op's start.
    """
    acked, _ = acknowledged_orders(ops)
    at = {op.index: op.time_ns for op in ops}
    fault_at = _first_fault_index(ops)
    instants = [int(r["at_ns"]) for r in crash_reports if r.get("at_ns")]
    lost_t = [at[i] for k, i in acked.items() if k not in wal]
    if not lost_t or (fault_at is None and not instants):
        return 0.0
    instant = min(instants) if instants else at[fault_at]
    return max(0.0, (instant - min(lost_t)) / 1e6)


def check_power_off(ops: Iterable[Op], wal_orders: set[OrderKey], crash_reports: Sequence[Mapping],
                    policy: str, required: bool = False, min_acked: int = DEFAULT_MIN_ACKED,
                    requirement: str = POWER_OFF) -> Verdict:
    """One power-off trial: acknowledged orders in the surviving WAL, per the policy's promise.

    ``crash_reports``: the lossy filesystem's report per mount (``CUT_KEYS``).
    ``required``: the profile asks a policy that does not promise power-loss
    survival to show it anyway. See the module doc for the order of judgement.
    """
    ops = list(ops)
    base = check_zero_acked_loss(ops, wal_orders, None, min_acked, policy, requirement)
    cut = {k: sum(int(r.get(k) or 0) for r in crash_reports) for k in CUT_KEYS}
    promised = policy in SURVIVES_POWER_LOSS
    evidence = {**base.evidence, **cut, "rpo_ms": round(_rpo_ms(ops, set(wal_orders), crash_reports), 3),
                "promised": promised, "required": required, "measured": base.status}
    measured = (f"{evidence['lost_count']} of {evidence['acked']} acknowledged orders lost, "
                f"RPO {evidence['rpo_ms']:.1f} ms, {cut['bytes_discarded']} bytes in "
                f"{cut['writes_discarded']} writes discarded, {cut['flushes_cut']} flushes cut")
    if not promised and not required:
        return Verdict.not_applicable(requirement, f"outside the promise of durability '{policy}' "
                                      f"(no survival of power loss), measured: {measured}", evidence)
    if base.status != FAIL and cut["bytes_discarded"] == 0:
        return Verdict.unknown(requirement, "the power-off discarded nothing: it cut no write or "
                               "flush in flight, so it could not have lost an order", evidence)
    return Verdict(requirement, base.status, f"{base.summary} ({measured})", evidence)


def check_ack_after_flush(ops: Iterable[Op], durable_at: Mapping[OrderKey, int | None], policy: str,
                          min_acked: int = DEFAULT_MIN_ACKED,
                          requirement: str = ACK_AFTER_FLUSH) -> Verdict:
    """No acknowledgement reached its client before its record was durable (``fsync`` only).

    ``durable_at``: per order found in the WAL, the monotonic ns its record
    became durable, or None when no flush covered it while the trial ran
    (judged after every ack arrived). An order not in the mapping was not
    found (untimed). An ack before its flush, or with none, FAILs; fewer than
    ``min_acked`` timed orders is UNKNOWN. Another policy does not wait for
    the flush: N/A.
    """
    ops = list(ops)
    acked, _ = acknowledged_orders(ops)
    at = {op.index: op.time_ns for op in ops}
    found = {k: i for k, i in acked.items() if k in durable_at}
    never = [k for k in found if durable_at[k] is None]
    early = sorted(((durable_at[k] - at[i]) / 1e6, k) for k, i in found.items()
                   if durable_at[k] is not None and at[i] < durable_at[k])
    evidence = {"policy": policy, "acked": len(acked), "timed": len(found), "min_acked": min_acked,
                "early_count": len(early), "early_ms": [[list(k), round(ms, 3)] for ms, k in first(early[::-1])],
                "never_durable": [list(k) for k in first(never)], "never_durable_count": len(never),
                "untimed": [list(k) for k in first(k for k in acked if k not in durable_at)]}
    if policy != FSYNC:
        return Verdict.not_applicable(requirement, f"durability '{policy}' does not wait for the "
                                      "flush before it acknowledges", evidence)
    if early or never:
        first_bad = f"{list(early[-1][1])}, {early[-1][0]:.3f} ms early" if early else f"{list(never[0])}"
        return Verdict.failed(requirement, f"{len(early) + len(never)} of {len(acked)} "
                              "acknowledgements reached the client before a flush covering their "
                              f"order completed ({len(never)} never flushed; first: {first_bad})",
                              evidence)
    if len(found) < min_acked:
        return Verdict.unknown(requirement, f"only {len(found)} acknowledged orders found in the WAL "
                               f"to time (of {len(acked)}); need {min_acked}", evidence)
    return Verdict.passed(requirement, f"all {len(found)} timed acknowledgements came after the "
                          f"flush covering their order ({len(acked) - len(found)} untimed)", evidence)


def check_no_corrupt_accepted(recovered_seqs: Iterable[int] | int,
                              valid_wal_seqs: Iterable[int],
                              requirement: str = CORRUPT) -> Verdict:
    """Recovery applied exactly the intact records in front of the first bad WAL record.

    ``valid_wal_seqs``: the seqs of the intact records in front of the first
    defect (``wal_codec.scan``'s records). ``recovered_seqs``: the seqs the
    recovered component applied from the WAL, or its applied seq as an int
    (meaning every seq up to n). Pass them before new traffic arrives: a new
    message may legitimately take the torn record's seq afterwards.

    FAIL when a seq was applied that is not an intact record (past the
    defect), and FAIL when an intact record up to ``max(valid)`` was not
    applied (recovery threw good records away, or recovered nothing), naming
    the first missing seq. UNKNOWN when there is no intact record at all:
    an empty recovery then shows nothing either way.
    """
    valid = set(valid_wal_seqs)
    last_valid = max(valid, default=None)
    if isinstance(recovered_seqs, int):
        applied_to = recovered_seqs
        extra = list(range(max(valid, default=0) + 1, applied_to + 1))
        missing = sorted(s for s in valid if s > applied_to)
        recovered_count = applied_to
    else:
        rec = list(recovered_seqs)
        rec_set = set(rec)
        extra = sorted(rec_set - valid)
        missing = sorted(valid - rec_set)
        applied_to = max(rec, default=0)
        recovered_count = len(rec)
    evidence = {
        "valid_records": len(valid), "last_valid_seq": last_valid,
        "recovered": recovered_count, "recovered_to": applied_to,
        "applied_beyond_valid": first(extra), "applied_beyond_valid_count": len(extra),
        "intact_not_applied": first(missing), "intact_not_applied_count": len(missing),
    }
    if extra:
        return Verdict.failed(requirement, f"{len(extra)} seqs applied that are not intact WAL "
                              f"records (first: {extra[0]}; last intact: "
                              f"{last_valid})", evidence)
    if not valid:
        return Verdict.unknown(requirement, "no intact WAL record in front of the defect: "
                               f"recovery applied {recovered_count} records, which shows "
                               "nothing either way", evidence)
    if missing:
        return Verdict.failed(requirement, f"{len(missing)} intact WAL records not applied by "
                              f"recovery (first missing: seq {missing[0]}; recovered to "
                              f"{applied_to}, last intact: {last_valid})", evidence)
    return Verdict.passed(requirement, f"recovery applied all {len(valid)} intact records up "
                          f"to seq {last_valid} and none past it", evidence)


def check_corrupt_middle_refused(verify_exit: int | None, records_after: int,
                                 started: bool, start_error: str | None = None,
                                 requirement: str = CORRUPT_MIDDLE) -> Verdict:
    """A WAL corrupt mid-segment is reported by ``crucible wal verify`` and refused by the logger.

    ``verify_exit``: the exit code of ``crucible wal verify`` on the corrupt
    WAL (1 reports a defect). ``records_after``: intact records behind the
    bad one (0 means the defect was a tail after all: UNKNOWN, this trial
    shows nothing about the middle). ``started``: whether the logger came up
    on it. ``start_error``: why it did not; a refusal is the logger exiting
    (the reason says "exited"); not coming up for another reason (not ready
    in time) shows no refusal and is UNKNOWN.
    """
    evidence = {"verify_exit": verify_exit, "records_after_defect": records_after,
                "logger_started": started, "start_error": start_error}
    problems = []
    if verify_exit != 1:
        problems.append(f"`crucible wal verify` exited {verify_exit}; it must report the "
                        "corrupt record (exit 1)")
    if started:
        problems.append("the logger started on a WAL corrupt in the middle of a segment; it "
                        "must refuse (cutting there throws intact, durable records away)")
    if problems:
        return Verdict.failed(requirement, "; ".join(problems), evidence)
    if records_after <= 0:
        return Verdict.unknown(requirement, "no intact record follows the corrupt one: the "
                               "defect is a tail, not the middle of the log", evidence)
    if not start_error or "exited" not in start_error:
        return Verdict.unknown(requirement, "the logger did not come up, but did not refuse "
                               f"either ({start_error or 'no reason given'})", evidence)
    return Verdict.passed(requirement, f"`crucible wal verify` reports the corrupt record and "
                          f"the logger refuses to start ({records_after} intact records "
                          f"follow it)", evidence)
