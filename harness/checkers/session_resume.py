"""Session resume: a re-login at any point replays exactly from there, then goes live.

Both doors number an account's outbound messages from 1 (one sequence shared
by the doors). A SoupBinTCP Login Request asks for a sequence number N: the
server sends from N on (0 means the next one; an N past the next one gets the
next one), and Login Accepted says which number comes first. An SSE request
with ``Last-Event-ID: K`` asks for the events after K (no header: new events
only); each event carries its number as its id. ``expected_first`` is that
rule, one home for both doors.

The evidence is the account's full outbound history (``history``: number ->
content, recorded once by a session that followed the account from 1) and
one ``Resume`` per re-login: what it asked for, where the history's head was
when it asked (the next number then), the first number the door announced
(Login Accepted; an SSE stream announces none), what it received in order as
(number, content), and ``must_reach``, the history's head when the resumed
session was last read (everything up to there had been released: the
session must have it too). Judged, problems first:

- **fail**: the history itself is not numbered 1..n; a resume announced or
  started anywhere but the expected first number; a number out of turn (a
  gap or a duplicate); a message whose content differs from the history's
  at its number, or numbered past the history's end; a resume that stopped
  short of ``must_reach``.
- **unknown**: nothing wrong, but fewer than ``min_resumes`` resumes.
- **pass**: every resume started exactly where asked and matched the history
  message for message, up to the head.

The verdict's evidence counts what coverage needs: ``resumes``, ``edges``
(the edge points tried: first, last, next, past, current), ``mid_traffic``
(re-logins made while traffic was being released) and ``messages`` compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .verdict import MAX_EXAMPLES, Verdict, too_thin

SOUPBINTCP, SSE = "soupbintcp", "sse"
DOORS = (SOUPBINTCP, SSE)
#: the edge points a run should try (besides seeded-random ones): the first message, the
#: last one, the next one, past the next one, and "current" (SoupBinTCP 0, SSE no header)
EDGES = ("first", "last", "next", "past", "current")
MIN_RESUMES = 10

__all__ = ["DOORS", "EDGES", "MIN_RESUMES", "SOUPBINTCP", "SSE", "Resume",
           "check_session_resume", "expected_first"]


@dataclass(frozen=True, slots=True)
class Resume:
    """One re-login and what it received (see the module doc)."""

    door: str  #: SOUPBINTCP or SSE
    requested: int | None  #: the requested sequence number / Last-Event-ID (None: no header)
    next_at_login: int  #: the number the account's next message would get when it asked
    announced: int | None  #: Login Accepted's number (None for SSE)
    messages: Sequence[tuple[int, str]]  #: (number, content) in the order received
    must_reach: int  #: the history's head when the session was last read
    edge: str = ""  #: one of EDGES, or "" for a seeded-random point
    mid_traffic: bool = False  #: asked while traffic was being released
    notes: Mapping[str, Any] = field(default_factory=dict)


def expected_first(door: str, requested: int | None, next_at_login: int) -> int:
    """The number the first message of a resume must carry, by the door's rule."""
    if door == SOUPBINTCP:
        if requested is None or requested == 0 or requested > next_at_login:
            return next_at_login
        return requested
    if door == SSE:
        if requested is None or requested + 1 > next_at_login:
            return next_at_login
        return requested + 1
    raise ValueError(f"unknown door {door!r}; known: {', '.join(DOORS)}")


def _history_problems(history: Sequence[tuple[int, str]]) -> list[str]:
    numbers = [n for n, _ in history]
    if numbers != list(range(1, len(numbers) + 1)):
        bad = next(i for i, n in enumerate(numbers, 1) if n != i)
        return [(f"the full history is not numbered 1..{len(numbers)}: message {bad} "
                 f"is numbered {numbers[bad - 1]}")]
    return []


def _resume_problems(r: Resume, history: Mapping[int, str]) -> list[str]:
    """What is wrong with one resume (at most one problem per kind)."""
    want = expected_first(r.door, r.requested, r.next_at_login)
    asked = f"{r.door} resume at {r.requested}"
    problems = []
    if r.announced is not None and r.announced != want:
        problems.append(f"{asked}: Login Accepted announced {r.announced}, expected {want}")
    expect = want if r.announced is None else r.announced
    for i, (number, content) in enumerate(r.messages):
        if number != expect + i:
            problems.append(f"{asked}: starts at {number}, expected {expect}" if i == 0 else
                            f"{asked}: message {i + 1} is numbered {number}, expected "
                            f"{expect + i} (a gap or a duplicate)")
            break
        if number not in history:
            problems.append(f"{asked}: message {number} is past the history's end "
                            f"({len(history)})")
            break
        if content != history[number]:
            problems.append(f"{asked}: message {number} differs from the history's "
                            f"({content[:80]!r} != {history[number][:80]!r})")
            break
    last = (r.messages[-1][0] if r.messages else want - 1) if not problems else None
    if last is not None and last < r.must_reach:
        problems.append(f"{asked}: received up to {last}, stopped short of {r.must_reach} "
                        f"({r.must_reach - last} missing)")
    return problems


def check_session_resume(requirement: str, history: Sequence[tuple[int, str]],
                         resumes: Sequence[Resume], min_resumes: int = MIN_RESUMES) -> Verdict:
    """Judge every resume against the full history (see the module doc)."""
    problems = _history_problems(history)
    by_number = dict(history)
    failed: list[dict[str, Any]] = []
    for r in resumes:
        found = _resume_problems(r, by_number)
        if found:
            problems += found
            if len(failed) < MAX_EXAMPLES:
                failed.append({**asdict(r), "messages": len(r.messages),
                               "first": r.messages[0][0] if r.messages else None})
    edges = sorted({r.edge for r in resumes if r.edge})
    evidence = {"history": len(history), "resumes": len(resumes), "edges": edges,
                "mid_traffic": sum(r.mid_traffic for r in resumes),
                "messages": sum(len(r.messages) for r in resumes),
                "failed_resumes": len(failed), "examples": failed,
                "requested": [r.requested for r in resumes][:100]}
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        return Verdict.failed(requirement, "; ".join(problems[:3]) + more, evidence)
    verdict = Verdict.passed(
        requirement, f"{len(resumes)} resumes ({', '.join(edges) or 'no edge points'} among "
        f"them; {evidence['mid_traffic']} during traffic) each replayed exactly from the point "
        f"asked, then live: {evidence['messages']} messages matched the {len(history)}-message "
        f"history", evidence)
    if len(resumes) < min_resumes:
        return too_thin(verdict, f"too little evidence: {len(resumes)} resumes, "
                                 f"fewer than {min_resumes}")
    return verdict
