"""Exactly-once: each message applied once, each order and fill reported once.

At-least-once delivery plus idempotent receivers must add up to exactly-once
application (DESIGN.md §1). The checks, each over plain data:

- ``check_applied_once``: one replica's applied seqs, in order: each once,
  contiguous from 1 (``continuity.sequence_faults`` does the counting).
- ``check_sequenced_once``: each client request ``(gateway_id, incarnation,
  request_seq)`` was sequenced at most once (a resend must be deduplicated).
- ``check_reported_once``: an output stream (replay-format dicts or core
  ``Output`` tuples) reports each ``(account, token)`` accepted/replaced at
  most once, each fill ``(match_id, liquidity)`` once, and never takes more
  out of an order than it had (``executed + canceled <= qty``).
- ``check_same_final_state``: a run under faulty delivery ends in the state a
  clean run of the same input ends in.
- ``check_history_once``: what clients saw. An op completed ``ok`` carries
  exactly one outcome for its order (new: accepted or rejected; replace:
  replaced or rejected naming the new token; cancel: a user cancel or
  rejected); an order is acknowledged as accepted at most once across all
  ops; and one sequenced decision (one seq) is reported the same way to
  every op that saw it. ``info`` and open ops are not judged.

History convention (docs/checkers.md): an order op's invoke value holds
``account`` and ``token`` (a replace also ``new_token``); its completion value
holds ``outputs``, the replay-format dicts the SUT sent for the request.
``order_key`` and ``op_outputs`` read that convention for every checker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.history import FAIL as OP_FAIL
from harness.history import OK as OP_OK
from harness.history import Op, pairs
from reference_impl.core.messages import CLIENT_BODIES, Sequenced
from reference_impl.core.replay_format import output_to_json

from .continuity import sequence_faults
from .determinism import hex_hash
from .verdict import MAX_EXAMPLES, Verdict

APPLIED = "exactly_once.applied"
SEQUENCED = "exactly_once.sequenced"
REPORTED = "exactly_once.reported"
FINAL_STATE = "exactly_once.same_final_state"
HISTORY = "exactly_once.history"

ORDER_FS = ("new", "replace")
#: output types that are an op's outcome, by op kind
OUTCOME_TYPES = {"new": ("accepted", "rejected"), "replace": ("replaced", "rejected"),
                 "cancel": ("canceled", "rejected")}

__all__ = [
    "check_applied_once", "check_history_once", "check_reported_once",
    "check_same_final_state", "check_sequenced_once", "op_outputs", "order_key",
    "outcome_outputs", "output_dicts", "require_resends",
]


# ------------------------------------------------------------------ helpers


def output_dicts(outputs: Iterable[Any]) -> list[dict]:
    """Replay-format dicts for outputs given as dicts or core ``Output`` tuples."""
    return [o if isinstance(o, Mapping) else output_to_json(o) for o in outputs]


def _merged(inv: Op, done: Op | None) -> dict:
    value = dict(inv.value)
    if done is not None:
        value.update(done.value)
    return value


def order_key(inv: Op, done: Op | None = None) -> tuple[str | None, str | None]:
    """``(account, token)`` of the order an op is about: the new token for a replace."""
    value = _merged(inv, done)
    token = value.get("new_token") if inv.f == "replace" else value.get("token")
    return value.get("account"), token


def op_outputs(done: Op | None) -> list[dict]:
    """The outputs a completion recorded (none for an open op)."""
    if done is None:
        return []
    return output_dicts(done.value.get("outputs") or [])


def outcome_outputs(inv: Op, done: Op | None) -> list[dict]:
    """The outputs that decide ``inv``'s request (see ``OUTCOME_TYPES``)."""
    account, token = order_key(inv, done)
    kinds = OUTCOME_TYPES.get(inv.f, ())
    found = []
    for o in op_outputs(done):
        if o.get("type") not in kinds or o.get("token") != token:
            continue
        if account is not None and o.get("account") != account:
            continue
        if o["type"] == "canceled" and o.get("reason") != "user":
            continue  # an IOC remainder is not a cancel request's answer
        found.append(o)
    return found


# ------------------------------------------------------------------ checks


def check_applied_once(applied_seqs: Sequence[int], first: int = 1,
                       requirement: str = APPLIED) -> Verdict:
    """One replica's applied seqs: each exactly once, in order, contiguous from ``first``."""
    seqs = list(applied_seqs)
    f = sequence_faults(seqs, first, ordered=True)
    if not seqs:
        return Verdict.unknown(requirement, "no applied seqs recorded", f)
    problems = []
    if f["reuse_count"]:
        problems.append(f"{f['reuse_count']} seqs applied again (first: {f['reused'][0]})")
    if f["gap_count"]:
        lo, hi = f["gaps"][0]
        problems.append(f"{f['missing_count']} seqs never applied (first gap: {lo}..{hi})")
    if f["order_break_count"] or f["below_first_count"]:
        problems.append("applied out of order or below the first seq")
    if problems:
        return Verdict.failed(requirement, "; ".join(problems), f)
    return Verdict.passed(requirement, f"{len(seqs)} seqs applied once each, "
                          f"{f['lowest']}..{f['highest']}", f)


def check_sequenced_once(messages: Iterable[Sequenced],
                         requirement: str = SEQUENCED) -> Verdict:
    """Each client request ``(gateway_id, incarnation, request_seq)`` got one seq at most."""
    seen: dict[tuple[int, int, int], int] = {}
    duplicates = []
    count = dup_count = 0
    for msg in messages:
        if not isinstance(msg.body, CLIENT_BODIES):
            continue
        count += 1
        key = (msg.gateway_id, msg.incarnation, msg.request_seq)
        if key in seen:
            dup_count += 1
            if len(duplicates) < MAX_EXAMPLES:
                duplicates.append({"request": list(key), "seqs": [seen[key], msg.seq]})
        else:
            seen[key] = msg.seq
    evidence = {"client_requests": count, "duplicates": duplicates, "duplicate_count": dup_count}
    if not count:
        return Verdict.unknown(requirement, "no client requests in the stream", evidence)
    if dup_count:
        d = duplicates[0]
        return Verdict.failed(requirement, f"{dup_count} requests sequenced more than once "
                              f"(first: gateway {d['request'][0]} request {d['request'][2]} "
                              f"at seqs {d['seqs'][0]} and {d['seqs'][1]})", evidence)
    return Verdict.passed(requirement, f"{count} client requests, each sequenced once", evidence)


def require_resends(sequenced: Verdict, resends: int | None, offered: bool = True,
                    reason: str = "") -> Verdict:
    """``sequenced`` (a ``check_sequenced_once`` verdict) only where dedup was exercised.

    ``resends``: how many requests the gateway sent again during the fault
    (None: not read). ``offered``: whether the SUT exposes a resend counter at
    all; ``reason`` says why it is not, or why it could not be read. A fail
    stays a fail (a request sequenced twice needs no counter to be shown);
    otherwise a SUT that exposes no resend counter is N/A (it does not offer
    the evidence), and a counter that was offered but could not be read, or
    read 0 (nothing was resent, so dedup was not exercised), is UNKNOWN.
    """
    evidence = {**sequenced.evidence, "gateway_resends": resends,
                "resend_counter_offered": offered}
    if reason:
        evidence["resend_counter_reason"] = reason
    req = sequenced.requirement
    if sequenced.status == "fail":
        return Verdict.failed(req, sequenced.summary, evidence)
    if not offered:
        return Verdict.not_applicable(req, "the SUT exposes no gateway resend counter, so "
                                      "there is no evidence that a resend happened"
                                      + (f" ({reason})" if reason else ""), evidence)
    if resends is None:
        return Verdict.unknown(req, "the gateway's resend counter could not be read"
                               + (f" ({reason})" if reason else "")
                               + "; dedup was not shown to be exercised", evidence)
    if sequenced.status == "pass" and resends <= 0:
        return Verdict.unknown(req, "the gateway resent nothing during the pause; "
                               "dedup was not exercised", evidence)
    if sequenced.status == "pass":
        return Verdict.passed(req, f"{sequenced.summary} ({resends} gateway resends)",
                              evidence)
    return Verdict(req, sequenced.status, sequenced.summary, evidence)


def check_reported_once(outputs: Iterable[Any], requirement: str = REPORTED) -> Verdict:
    """Each order accepted once, each fill reported once, no order overdrawn."""
    outs = output_dicts(outputs)
    opened: dict[tuple[str, str], dict] = {}  # (account, token) -> its accepted/replaced
    twice_opened = []
    fills: dict[tuple[int, str], dict] = {}
    twice_filled = []
    taken: dict[tuple[str, str], int] = {}  # executed + canceled per order
    for o in outs:
        kind = o.get("type")
        key = (o.get("account"), o.get("token"))
        if kind in ("accepted", "replaced"):
            if key in opened:
                twice_opened.append({"order": list(key), "first": opened[key], "again": o})
            else:
                opened[key] = o
        elif kind == "executed":
            fill = (o.get("match_id"), o.get("liquidity"))
            if fill in fills:
                twice_filled.append({"fill": list(fill), "first": fills[fill], "again": o})
            else:
                fills[fill] = o
            taken[key] = taken.get(key, 0) + o.get("qty", 0)
        elif kind == "canceled":
            taken[key] = taken.get(key, 0) + o.get("qty", 0)
    overdrawn = [{"order": list(k), "qty": opened[k]["qty"], "executed_plus_canceled": t}
                 for k, t in taken.items() if k in opened and t > opened[k]["qty"]]
    unmatched = sum(1 for k in taken if k not in opened)
    evidence = {
        "outputs": len(outs), "orders": len(opened), "fills": len(fills),
        "orders_reported_twice": twice_opened[:MAX_EXAMPLES],
        "orders_reported_twice_count": len(twice_opened),
        "fills_reported_twice": twice_filled[:MAX_EXAMPLES],
        "fills_reported_twice_count": len(twice_filled),
        "overdrawn": overdrawn[:MAX_EXAMPLES], "overdrawn_count": len(overdrawn),
        "orders_without_accept": unmatched,
    }
    if not outs:
        return Verdict.unknown(requirement, "no outputs to check", evidence)
    problems = []
    if twice_opened:
        problems.append(f"{len(twice_opened)} orders reported accepted twice "
                        f"(first: {twice_opened[0]['order']})")
    if twice_filled:
        problems.append(f"{len(twice_filled)} fills reported twice "
                        f"(first: match {twice_filled[0]['fill']})")
    if overdrawn:
        problems.append(f"{len(overdrawn)} orders lost more than their qty to fills and "
                        f"cancels (first: {overdrawn[0]['order']})")
    if problems:
        return Verdict.failed(requirement, "; ".join(problems), evidence)
    return Verdict.passed(requirement, f"{len(opened)} orders and {len(fills)} fills, each "
                          "reported once", evidence)


def _state(value: Any) -> tuple[int | None, str | None]:
    if isinstance(value, Mapping):
        seq = value.get("applied_seq")
        return (int(seq) if seq is not None else None), hex_hash(value.get("state_hash"))
    return None, hex_hash(value)


def check_same_final_state(clean: Any, faulty: Any, requirement: str = FINAL_STATE) -> Verdict:
    """A faulty-delivery run ends in the clean run's state.

    Each side is a state hash (hex or bytes) or a digest
    ``{"applied_seq", "state_hash"}``; with digests the applied seqs must match
    too. Different applied seqs FAIL even without a hash; otherwise a
    missing hash is UNKNOWN.
    """
    clean_seq, clean_hash = _state(clean)
    faulty_seq, faulty_hash = _state(faulty)
    evidence = {"clean_hash": clean_hash, "faulty_hash": faulty_hash,
                "clean_applied_seq": clean_seq, "faulty_applied_seq": faulty_seq}
    if clean_seq is not None and faulty_seq is not None and clean_seq != faulty_seq:
        return Verdict.failed(requirement, f"the faulty run ended at seq {faulty_seq}, the "
                              f"clean run at {clean_seq}", evidence)
    if clean_hash is None or faulty_hash is None:
        missing = "clean" if clean_hash is None else "faulty"
        return Verdict.unknown(requirement, f"no final state hash from the {missing} run",
                               evidence)
    if clean_hash != faulty_hash:
        return Verdict.failed(requirement, "the faulty run's final state hash differs from "
                              "the clean run's", evidence)
    return Verdict.passed(requirement, "faulty and clean runs end in the same state", evidence)


def _identity(o: dict) -> tuple:
    return tuple(sorted((k, v) for k, v in o.items() if not isinstance(v, (list, dict))))


def check_history_once(ops: Iterable[Op], requirement: str = HISTORY) -> Verdict:
    """Clients were told each outcome once and consistently (see the module doc)."""
    not_one = []
    not_one_count = judged = 0
    accepted_at: dict[tuple, dict] = {}  # order -> first acceptance seen, with its op
    twice_accepted = []
    by_seq: dict[tuple, tuple[tuple, int]] = {}  # (order, seq) -> (outcome identity, op)
    inconsistent = []
    for inv, done in pairs(ops):
        if inv.f not in OUTCOME_TYPES or done is None or done.type not in (OP_OK, OP_FAIL):
            continue
        outcomes = outcome_outputs(inv, done)
        key = order_key(inv, done)
        if done.type == OP_OK:
            judged += 1
            if len(outcomes) != 1:
                not_one_count += 1
                if len(not_one) < MAX_EXAMPLES:
                    not_one.append({"op": inv.index, "f": inv.f, "order": list(key),
                                    "outcomes": outcomes})
        if inv.f not in ORDER_FS:
            continue  # cancels of one order legitimately differ; only their count is judged
        for o in outcomes:
            if o.get("seq") is None:
                continue  # a door without input seqs (OUCH) cannot tie outcomes to decisions
            ident = _identity(o)
            seen = by_seq.get((key, o.get("seq")))
            if seen is None:
                by_seq[(key, o.get("seq"))] = (ident, inv.index)
            elif seen[0] != ident:
                inconsistent.append({"order": list(key), "seq": o.get("seq"),
                                     "ops": [seen[1], inv.index], "again": o})
            if o["type"] in ("accepted", "replaced"):
                first_acc = accepted_at.get(key)
                if first_acc is None:
                    accepted_at[key] = {"op": inv.index, "seq": o.get("seq")}
                elif first_acc["seq"] != o.get("seq"):
                    twice_accepted.append({"order": list(key), "ops": [first_acc["op"], inv.index],
                                           "seqs": [first_acc["seq"], o.get("seq")]})
    evidence = {
        "ok_ops_judged": judged,
        "ops_without_exactly_one_outcome": not_one, "ops_without_exactly_one_outcome_count":
            not_one_count,
        "orders_accepted_twice": twice_accepted[:MAX_EXAMPLES],
        "orders_accepted_twice_count": len(twice_accepted),
        "inconsistent_reports": inconsistent[:MAX_EXAMPLES],
        "inconsistent_report_count": len(inconsistent),
    }
    problems = []
    if not_one_count:
        n = not_one[0]
        problems.append(f"{not_one_count} ok ops without exactly one outcome (first: op "
                        f"{n['op']} {n['f']} {n['order']} has {len(n['outcomes'])})")
    if twice_accepted:
        t = twice_accepted[0]
        problems.append(f"{len(twice_accepted)} orders acknowledged twice (first: {t['order']} "
                        f"at seqs {t['seqs'][0]} and {t['seqs'][1]})")
    if inconsistent:
        i = inconsistent[0]
        problems.append(f"{len(inconsistent)} decisions reported differently (first: "
                        f"{i['order']} at seq {i['seq']}, ops {i['ops']})")
    if problems:
        return Verdict.failed(requirement, "; ".join(problems), evidence)
    if not judged:
        return Verdict.unknown(requirement, "no order op completed ok; nothing to judge",
                               evidence)
    return Verdict.passed(requirement, f"{judged} ok ops, each with exactly one outcome, "
                          "none contradicted", evidence)
