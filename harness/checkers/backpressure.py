"""Backpressure: a flood past the in-flight limit is refused at once; refused requests are never sequenced.

Two checkers judge the evidence of one flood trial (the suite
``test_backpressure`` gathers it: several sessions on both doors send at
once, while the core is stopped, so that together they cross the limit).

``check_refuse_at_once``: how many orders were refused with the
backpressure reason, how many admitted and accepted, anything else the door
said while the core was stopped, and the answer to HTTP orders sent past
the limit. Problems are judged first: another message while the core was
stopped, an HTTP refusal other than a prompt 429 with ``Retry-After``, an
admitted order never accepted, or one accepted twice FAIL even when the
flood was never refused. When the SUT declares its in-flight limit and the
core was stopped, the number admitted is judged against it: more than the
limit FAILS (a flood past it never refused included), and so do refusals
that began far below it (``limit_tolerance``). Only a trial that shows no
problem and no refusal, without a declared limit, is UNKNOWN (the limit
was never reached, so nothing was shown).

``check_refused_never_sequenced``: every refused request (by token) looked
up in the sequenced input the SUT stored, and in what its clients were
told afterwards. A refused order that was sequenced (or accepted) anyway
FAILS, and so does an admitted order sequenced twice or never. No refusal:
UNKNOWN.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .verdict import Verdict

REQUIREMENT = "backpressure.refuse_at_once"
NEVER_SEQUENCED = "backpressure.refused_never_sequenced"
#: refusals may begin this share of the declared limit below it (``limit_tolerance``)
TOLERANCE_SHARE = 0.05

__all__ = ["check_refuse_at_once", "check_refused_never_sequenced", "limit_tolerance"]


def limit_tolerance(limit: int) -> int:
    """How far below a declared limit refusals may begin: 5% of it, at least one.

    A SUT may count in flight what the harness does not send (a replica's or
    the logger's lag at the instant of the pause, its own internal
    requests); the harness settles the SUT before the trial, so that share is
    small. A limit that counts one door only, or a window half the declared
    one, is far outside 5%.
    """
    return max(1, int(limit * TOLERANCE_SHARE))


def _limit_problems(ev: Mapping[str, Any]) -> list[str]:
    """The admitted count against a declared limit, judged only while the core was stopped."""
    limit = ev.get("declared_limit")
    if limit is None or not ev.get("paused"):
        return []
    admitted, refused = int(ev.get("admitted") or 0), int(ev.get("refused") or 0)
    if not refused and admitted > limit:
        return [(f"a flood of {ev.get('flood')} orders past the declared in-flight limit {limit} "
                 "was never refused")]
    if admitted > limit:
        return [(f"{admitted} orders admitted while the core was stopped, past the declared "
                 f"in-flight limit {limit}")]
    low = limit - limit_tolerance(limit)
    if refused and admitted < low:
        return [(f"refusals began with {admitted} orders admitted, far below the declared "
                 f"in-flight limit {limit} (at least {low} due)")]
    return []


def check_refuse_at_once(evidence: Mapping[str, Any], at_once_s: float,
                         requirement: str = REQUIREMENT) -> Verdict:
    """Judge one flood trial.

    ``evidence``: ``flood`` (orders sent), ``refused`` (refused at once),
    ``admitted``, ``missing`` (admitted tokens never accepted, first ones),
    ``missing_count``, ``accepted_twice``, ``other_while_paused`` (messages
    other than a refusal while the core was stopped, empty when it was not),
    ``slowest_refusal_s``, ``http`` (``status``, ``retry_after``, ``seconds``
    of one HTTP order sent past the limit; None without an HTTP door),
    ``declared_limit`` (None when the SUT declares none) and
    ``paused`` (the core was stopped during the flood).
    """
    ev = dict(evidence)
    http = ev.get("http")
    problems = []
    if ev.get("other_while_paused"):
        problems.append(f"{len(ev['other_while_paused'])} other messages while the core was "
                        f"stopped (first: {ev['other_while_paused'][0]})")
    if http is None:
        pass  # no HTTP door
    elif http.get("status") != 429 or not http.get("retry_after"):
        problems.append(f"an HTTP order past the limit got {http.get('status')} "
                        f"(Retry-After {http.get('retry_after')!r}), not 429 with Retry-After")
    elif http.get("seconds", 0) > at_once_s:
        problems.append(f"the HTTP 429 took {http['seconds']} s, not at once")
    problems += _limit_problems(ev)
    if ev.get("missing_count"):
        problems.append(f"{ev['missing_count']} of {ev.get('admitted')} admitted orders never "
                        f"completed (first: {ev['missing'][0]})")
    if ev.get("accepted_twice"):
        problems.append(f"{ev['accepted_twice']} orders accepted twice")
    if problems:
        return Verdict.failed(requirement, "; ".join(problems), ev)
    if not ev.get("refused"):
        return Verdict.unknown(requirement, f"a flood of {ev.get('flood')} orders never reached "
                               "the limit (no backpressure reject)", ev)
    limit = ev.get("declared_limit")
    within = f", within the declared limit {limit}" if limit is not None and ev.get("paused") else ""
    answer = f", HTTP 429 in {http.get('seconds')} s" if http is not None else ""
    return Verdict.passed(requirement, f"{ev['refused']} of {ev.get('flood')} orders refused at "
                          f"once (slowest {ev.get('slowest_refusal_s')} s, core stopped){answer}; "
                          f"all {ev.get('admitted')} admitted orders accepted{within}", ev)


def check_refused_never_sequenced(evidence: Mapping[str, Any],
                                  requirement: str = NEVER_SEQUENCED) -> Verdict:
    """Judge the refused and admitted tokens of one flood against the sequenced input.

    ``evidence``: ``refused`` and ``admitted`` (token counts),
    ``refused_sequenced`` / ``refused_accepted`` (refused tokens found in the
    sequenced input / accepted afterwards, first ones) with their
    ``*_count``, ``admitted_unsequenced`` and ``admitted_sequenced_twice``
    (first ones) with their ``*_count``, ``records`` (sequenced records read).
    """
    ev = dict(evidence)
    problems = []
    for key, words in (("refused_sequenced", "refused orders were sequenced anyway"),
                       ("refused_accepted", "refused orders were accepted afterwards"),
                       ("admitted_unsequenced", "admitted orders were never sequenced"),
                       ("admitted_sequenced_twice", "admitted orders were sequenced twice")):
        if ev.get(f"{key}_count"):
            problems.append(f"{ev[f'{key}_count']} {words} (first: {ev[key][0]})")
    if problems:
        return Verdict.failed(requirement, "; ".join(problems), ev)
    if not ev.get("refused"):
        return Verdict.unknown(requirement, "nothing was refused: no refused request to look for "
                               "in the sequenced input", ev)
    return Verdict.passed(requirement, f"none of {ev['refused']} refused orders sequenced or "
                          f"accepted; all {ev.get('admitted')} admitted orders sequenced once "
                          f"({ev.get('records')} sequenced records read)", ev)
