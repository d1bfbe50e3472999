"""check_session_resume on literal histories: exact replays pass; off-by-one, gaps, duplicates,
short replays and wrong announcements fail; too few resumes are UNKNOWN."""

from __future__ import annotations

import pytest

from harness.checkers.session_resume import SOUPBINTCP, SSE, Resume, check_session_resume, expected_first

RID = "exactly_once.session_resume.test"
HISTORY = [(n, f"m{n}") for n in range(1, 11)]  #: ten messages; the next one is 11


def replay(door: str, requested: int | None, next_at_login: int = 11, upto: int = 10,
           edge: str = "", shift: int = 0) -> Resume:
    """A resume that received the history from the door's first number (+ ``shift``) to ``upto``."""
    first = expected_first(door, requested, next_at_login)
    msgs = [(n, f"m{n + shift}") for n in range(first, upto + 1)]
    return Resume(door, requested, next_at_login, first if door == SOUPBINTCP else None, msgs,
                  must_reach=upto, edge=edge)


def good_resumes() -> list[Resume]:
    return [replay(SOUPBINTCP, 1, edge="first"), replay(SOUPBINTCP, 10, edge="last"),
            replay(SOUPBINTCP, 11, edge="next"), replay(SOUPBINTCP, 15, edge="past"),
            replay(SOUPBINTCP, 0, edge="current"), replay(SOUPBINTCP, 4),
            replay(SSE, 0, edge="first"), replay(SSE, 9, edge="last"), replay(SSE, 10, edge="next"),
            replay(SSE, 14, edge="past"), replay(SSE, None, edge="current"), replay(SSE, 3)]


@pytest.mark.parametrize("door,requested,nxt,first", [
    (SOUPBINTCP, 0, 11, 11), (SOUPBINTCP, 1, 11, 1), (SOUPBINTCP, 11, 11, 11),
    (SOUPBINTCP, 99, 11, 11), (SOUPBINTCP, None, 11, 11),
    (SSE, 0, 11, 1), (SSE, 10, 11, 11), (SSE, 99, 11, 11), (SSE, None, 11, 11), (SSE, 4, 11, 5)])
def test_expected_first_by_door(door, requested, nxt, first):
    assert expected_first(door, requested, nxt) == first


def test_exact_replays_pass_with_counts():
    v = check_session_resume(RID, HISTORY, good_resumes(), min_resumes=12)
    assert v.status == "pass", v.summary
    assert v.evidence["resumes"] == 12
    assert v.evidence["edges"] == ["current", "first", "last", "next", "past"]
    assert v.evidence["messages"] == sum(len(r.messages) for r in good_resumes())


def test_soupbintcp_replay_from_n_plus_one_fails():
    bad = replay(SOUPBINTCP, 4, shift=1)  # announced 4, but message 4 carries 5's content
    v = check_session_resume(RID, HISTORY, [*good_resumes(), bad], min_resumes=1)
    assert v.status == "fail"
    assert "soupbintcp resume at 4: message 4 differs" in v.summary


def test_sse_replay_from_the_id_itself_fails():
    r = replay(SSE, 3)
    bad = Resume(SSE, 3, 11, None, [(3, "m3"), *r.messages], must_reach=10)
    v = check_session_resume(RID, HISTORY, [bad], min_resumes=1)
    assert v.status == "fail" and "sse resume at 3: starts at 3, expected 4" in v.summary


def test_gap_and_duplicate_fail():
    gap = Resume(SSE, 0, 11, None, [(1, "m1"), (2, "m2"), (4, "m4")], must_reach=4)
    dup = Resume(SSE, 0, 11, None, [(1, "m1"), (2, "m2"), (2, "m2")], must_reach=2)
    for r in (gap, dup):
        v = check_session_resume(RID, HISTORY, [r], min_resumes=1)
        assert v.status == "fail" and "(a gap or a duplicate)" in v.summary


def test_wrong_announcement_fails():
    r = replay(SOUPBINTCP, 15)  # past the next: must be clamped to 11
    bad = Resume(SOUPBINTCP, 15, 11, 15, [], must_reach=10)
    assert check_session_resume(RID, HISTORY, [r], min_resumes=1).status == "pass"
    v = check_session_resume(RID, HISTORY, [bad], min_resumes=1)
    assert v.status == "fail" and "announced 15, expected 11" in v.summary


def test_short_replay_fails():
    short = replay(SOUPBINTCP, 2, upto=7)
    v = check_session_resume(RID, HISTORY, [_with_reach(short, 10)], min_resumes=1)
    assert v.status == "fail" and "stopped short of 10 (3 missing)" in v.summary


def _with_reach(r: Resume, must_reach: int) -> Resume:
    return Resume(r.door, r.requested, r.next_at_login, r.announced, r.messages, must_reach)


def test_message_past_the_history_fails():
    r = Resume(SSE, 9, 11, None, [(10, "m10"), (11, "m11")], must_reach=10)
    v = check_session_resume(RID, HISTORY, [r], min_resumes=1)
    assert v.status == "fail" and "past the history's end" in v.summary


def test_a_history_not_numbered_from_one_fails():
    v = check_session_resume(RID, [(1, "a"), (3, "b")], [], min_resumes=0)
    assert v.status == "fail" and "not numbered 1..2" in v.summary


def test_too_few_resumes_is_unknown_but_a_bad_one_still_fails():
    v = check_session_resume(RID, HISTORY, good_resumes()[:3], min_resumes=10)
    assert v.status == "unknown" and "3 resumes, fewer than 10" in v.summary
    bad = replay(SOUPBINTCP, 4, shift=1)
    assert check_session_resume(RID, HISTORY, [bad], min_resumes=10).status == "fail"


def test_coverage_below_the_minimums_is_unknown_naming_them():
    from harness.coverage import covered

    rid = "exactly_once.session_resume.sse"
    v = check_session_resume(rid, HISTORY, good_resumes(), min_resumes=1)
    seen = {"resumes": v.evidence["resumes"], "edge_points": len(v.evidence["edges"]),
            "mid_traffic": v.evidence["mid_traffic"], "messages": v.evidence["messages"]}
    thin = covered(v, seen, {})
    assert thin.status == "unknown"
    assert "resumes: 12 of 20" in thin.summary and "mid_traffic: 0 of 10" in thin.summary
    assert "edge_points" not in thin.summary
    ok = covered(v, seen, {"evidence": {rid: {"resumes": 12, "mid_traffic": 0, "messages": 1}}})
    assert ok.status == "pass" and ok.evidence["coverage"]
