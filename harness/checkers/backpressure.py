"""Backpressure: a flood past the in-flight limit is refused at once; what was admitted completes.

``check_refuse_at_once`` judges the evidence of one flood trial (the suite
``test_backpressure`` gathers it): how many orders were refused with the
backpressure reason, how many admitted and accepted, anything else the door
said while the core was stopped, and the answer to one HTTP order sent past
the limit. Problems are judged first: another message while the core was
stopped, an HTTP answer other than a prompt 429 with ``Retry-After``, an
admitted order never accepted, or one accepted twice FAIL even when the
flood was never refused. Only a trial that shows no problem and no refusal
is UNKNOWN (the limit was never reached, so nothing was shown).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .verdict import Verdict

REQUIREMENT = "backpressure.refuse_at_once"

__all__ = ["check_refuse_at_once"]


def check_refuse_at_once(evidence: Mapping[str, Any], at_once_s: float,
                         requirement: str = REQUIREMENT) -> Verdict:
    """Judge one flood trial.

    ``evidence``: ``flood`` (orders sent), ``refused`` (refused at once),
    ``admitted``, ``missing`` (admitted tokens never accepted, first ones),
    ``missing_count``, ``accepted_twice``, ``other_while_paused`` (messages
    other than a refusal while the core was stopped, empty when it was not),
    ``slowest_refusal_s``, ``http`` (``status``, ``retry_after``, ``seconds``).
    """
    ev = dict(evidence)
    http = ev.get("http") or {}
    problems = []
    if ev.get("other_while_paused"):
        problems.append(f"{len(ev['other_while_paused'])} other messages while the core was "
                        f"stopped (first: {ev['other_while_paused'][0]})")
    if http.get("status") != 429 or not http.get("retry_after"):
        problems.append(f"an HTTP order past the limit got {http.get('status')} "
                        f"(Retry-After {http.get('retry_after')!r}), not 429 with Retry-After")
    elif http.get("seconds", 0) > at_once_s:
        problems.append(f"the HTTP 429 took {http['seconds']} s, not at once")
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
    return Verdict.passed(requirement, f"{ev['refused']} of {ev.get('flood')} orders refused at "
                          f"once (slowest {ev.get('slowest_refusal_s')} s, core stopped), HTTP "
                          f"429 in {http.get('seconds')} s; all {ev.get('admitted')} admitted "
                          "orders accepted", ev)
