"""Liveness after a fault window: the exchange is moving again, and the trial's load settled.

A trial that passes its safety checks can still leave the exchange stalled
for good (a replica stuck at a seq, a sequencer that never publishes again)
with most of its own orders never answered: nothing in a safety check fails
on "never happened". ``check_liveness`` judges three kinds of evidence,
gathered once the fault window closed and the SUT was given ``bound_s`` to
catch up:

- **heads**: the sequencer's head and the last seq each other component
  names (each replica's applied seq, the logger's durable seq). Every
  component must have reached the head; one that did not answer at all is
  stuck too.
- **probe**: one fresh order sent after the wait. It must be accepted.
- **the trial's own load**: every order op (new, replace, cancel) must have
  reached ``ok`` or ``fail``, or, when it completed ``info`` or never
  completed, its final state must be known (``fates``: the SUT's answer for
  that order, as ``harness.clients.settle`` gives it; ``pending``,
  ``unknown`` or no answer leave it unsettled).

Problems are judged before thinness: a stuck component, a refused probe or
an unsettled order FAILS even where other evidence is missing. Without a
head (no digests), a probe or any order op, the verdict is UNKNOWN naming
what is missing, never PASS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from harness.history import FAIL as OP_FAIL
from harness.history import OK as OP_OK
from harness.history import Op, pairs

from .exactly_once import OUTCOME_TYPES, order_key
from .verdict import FAIL, MAX_EXAMPLES, PASS, UNKNOWN, Verdict, first

REQUIREMENT = "liveness.after_fault"
ORDER_FS = tuple(OUTCOME_TYPES)  #: the order ops: new, replace, cancel
UNSETTLED_FATES = frozenset({None, "", "pending", "unknown"})

__all__ = ["check_liveness", "unsettled_orders", "with_liveness"]


def unsettled_orders(ops: Iterable[Op], fates: Mapping[Any, str | None]
                     ) -> tuple[list[dict[str, Any]], int]:
    """``(unsettled, order ops judged)``: each order op neither ok/fail nor of known fate."""
    known = {tuple(k): v for k, v in fates.items()}
    unsettled, judged = [], 0
    for inv, done in pairs(ops):
        if inv.f not in ORDER_FS:
            continue
        judged += 1
        if done is not None and done.type in (OP_OK, OP_FAIL):
            continue
        fate = known.get(order_key(inv))
        if fate in UNSETTLED_FATES:
            unsettled.append({"op": inv.index, "f": inv.f, "order": list(order_key(inv)),
                              "completed": None if done is None else done.type, "fate": fate})
    return unsettled, judged


def _stuck(head: int, reached: Mapping[str, int | None]) -> dict[str, int | None]:
    return {name: seq for name, seq in sorted(reached.items()) if seq is None or seq < head}


def check_liveness(head: int | None, reached: Mapping[str, int | None],
                   probe: Mapping[str, Any] | None, ops: Iterable[Op],
                   fates: Mapping[Any, str | None], bound_s: float,
                   requirement: str = REQUIREMENT) -> Verdict:
    """Every component at the head, the probe accepted, every order op settled (module doc).

    ``head``: the sequencer's head after the wait (None: not observable).
    ``reached``: component -> the last seq it names (None: no answer).
    ``probe``: ``{"token", "accepted": bool, "status", ...}`` of the probe
    order, None when none could be sent. ``ops``: the trial's history ops.
    ``fates``: ``(account, token) -> final state`` of its open orders.
    """
    ops = list(ops)
    unsettled, judged = unsettled_orders(ops, fates)
    stuck = _stuck(head, reached) if head is not None else {}
    evidence: dict[str, Any] = {
        "bound_s": bound_s, "head": head, "reached": dict(reached),
        "stuck": stuck, "probe": dict(probe) if probe is not None else None,
        "order_ops": judged, "unsettled": first(unsettled), "unsettled_count": len(unsettled),
        "fates": {f"{a}/{t}": v for (a, t), v in first(fates.items(), MAX_EXAMPLES * 5)},
    }
    problems = []
    if stuck:
        name, seq = next(iter(stuck.items()))
        at = "did not answer" if seq is None else f"stopped at seq {seq}"
        problems.append(f"{len(stuck)} components short of the sequencer's head {head} "
                        f"{bound_s:g} s after the fault (first: {name} {at})")
    if probe is not None and not probe.get("accepted"):
        problems.append(f"the probe order {probe.get('token')} was not accepted "
                        f"(status {probe.get('status')}: {probe.get('error') or 'no accept'})")
    if unsettled:
        u = unsettled[0]
        problems.append(f"{len(unsettled)} of the trial's {judged} order ops never settled "
                        f"(first: op {u['op']} {u['f']} {u['order']}, "
                        f"{u['completed'] or 'never completed'}, final state {u['fate']})")
    if problems:
        return Verdict.failed(requirement, "; ".join(problems), evidence)
    missing = [what for what, absent in (
        ("no sequencer head to compare with", head is None),
        ("no component named its last seq", head is not None and not reached),
        ("no probe order was sent", probe is None),
        ("the trial sent no order", judged == 0)) if absent]
    if missing:
        return Verdict.unknown(requirement, "; ".join(missing), evidence)
    explained = sum(1 for inv, done in pairs(ops)
                    if inv.f in ORDER_FS and (done is None or done.type not in (OP_OK, OP_FAIL)))
    return Verdict.passed(requirement, f"{', '.join(sorted(reached))} at the sequencer's head "
                          f"{head}; probe accepted; all {judged} order ops settled "
                          f"({explained} by their final state)", evidence)


def with_liveness(verdict: Verdict, liveness: Verdict) -> Verdict:
    """``verdict`` with the trial's liveness joined in.

    A liveness FAIL fails the trial; a liveness UNKNOWN turns a PASS into
    UNKNOWN; otherwise the trial's status stands. The trial's own evidence is
    kept, the liveness verdict goes under ``liveness``; a liveness problem
    leads the summary.
    """
    evidence = {**verdict.evidence, "liveness": liveness.to_dict()}
    if not (liveness.status == FAIL or (liveness.status == UNKNOWN and verdict.status == PASS)):
        return Verdict(verdict.requirement, verdict.status, verdict.summary, evidence)
    return Verdict(verdict.requirement, liveness.status,
                   f"liveness after the fault: {liveness.summary}; {verdict.summary}", evidence)
