"""check_refuse_at_once and check_refused_never_sequenced on literal flood evidence.

Problems first, then thinness; with a declared in-flight limit and the core
stopped, the number admitted is judged against it.
"""

from __future__ import annotations

from harness.checkers.backpressure import check_refuse_at_once, check_refused_never_sequenced, limit_tolerance
from harness.coverage import covered

PROMPT_429 = {"status": 429, "retry_after": "1", "seconds": 0.01}


def flood(**over):
    ev = {"flood": 4200, "refused": 616, "admitted": 3584, "missing": [], "missing_count": 0,
          "accepted_twice": 0, "other_while_paused": [], "slowest_refusal_s": 0.2,
          "http": PROMPT_429, "declared_limit": None, "paused": True}
    ev.update(over)
    return ev


def test_refused_at_once_and_every_admitted_order_accepted_passes():
    v = check_refuse_at_once(flood(), 1.0)
    assert v.status == "pass" and "616 of 4200 orders refused" in v.summary


def test_never_refused_with_a_504_where_a_429_was_due_fails_not_unknown():
    v = check_refuse_at_once(flood(refused=0, admitted=4200,
                                   http={"status": 504, "retry_after": None, "seconds": 5.0}),
                             1.0)
    assert v.status == "fail", v
    assert "got 504" in v.summary


def test_without_an_http_door_only_the_ouch_refusals_are_judged():
    v = check_refuse_at_once(flood(http=None), 1.0)
    assert v.status == "pass" and "HTTP" not in v.summary


def test_never_refused_and_nothing_wrong_shown_is_unknown():
    v = check_refuse_at_once(flood(refused=0, admitted=4200), 1.0)
    assert v.status == "unknown" and "never reached the limit" in v.summary


def test_each_problem_fails():
    cases = [
        (flood(http={"status": 429, "retry_after": None, "seconds": 0.01}), "not 429 with"),
        (flood(http={"status": 429, "retry_after": "1", "seconds": 3.0}), "not at once"),
        (flood(missing=["BP1"], missing_count=5), "5 of 3584 admitted orders never completed"),
        (flood(accepted_twice=2), "2 orders accepted twice"),
        (flood(other_while_paused=["OrderAccepted(...)"]), "1 other messages while the core"),
    ]
    for ev, words in cases:
        v = check_refuse_at_once(ev, 1.0)
        assert v.status == "fail" and words in v.summary, (words, v)


# ------------------------------------------------------------------ a declared limit


def test_declared_limit_met_exactly_passes_and_says_so():
    v = check_refuse_at_once(flood(declared_limit=3584), 1.0)
    assert v.status == "pass" and "within the declared limit 3584" in v.summary


def test_declared_limit_and_a_flood_never_refused_fails_not_unknown():
    v = check_refuse_at_once(flood(declared_limit=3584, refused=0, admitted=4200), 1.0)
    assert v.status == "fail", v
    assert "past the declared in-flight limit 3584 was never refused" in v.summary


def test_more_admitted_than_the_declared_limit_fails():
    v = check_refuse_at_once(flood(declared_limit=3584, refused=612, admitted=3588), 1.0)
    assert v.status == "fail" and "3588 orders admitted while the core was stopped" in v.summary


def test_refusals_beginning_far_below_the_declared_limit_fail_within_tolerance_pass():
    tol = limit_tolerance(3584)
    assert tol == 179
    ok = check_refuse_at_once(flood(declared_limit=3584, admitted=3584 - tol), 1.0)
    assert ok.status == "pass", ok
    low = check_refuse_at_once(flood(declared_limit=3584, admitted=3584 - tol - 1), 1.0)
    assert low.status == "fail" and "far below the declared in-flight limit 3584" in low.summary


def test_without_a_pause_the_declared_limit_is_not_judged():
    v = check_refuse_at_once(flood(declared_limit=3584, paused=False, refused=0, admitted=4200), 1.0)
    assert v.status == "unknown", v


def test_coverage_below_its_minimum_turns_a_pass_unknown_and_keeps_a_fail():
    v = covered(check_refuse_at_once(flood(), 1.0), {"refused": 616, "admitted": 3584,
                                                     "sessions": 1}, {})
    assert v.status == "unknown" and "sessions: 1 of 2" in v.summary
    bad = covered(check_refuse_at_once(flood(accepted_twice=1), 1.0),
                  {"refused": 0, "admitted": 0, "sessions": 0}, {})
    assert bad.status == "fail"


# ------------------------------------------------------------------ refused never sequenced


def tokens_ev(**over):
    ev = {"refused": 616, "admitted": 3584, "records": 3584}
    for key in ("refused_sequenced", "refused_accepted", "admitted_unsequenced",
                "admitted_sequenced_twice"):
        ev[key], ev[f"{key}_count"] = [], 0
    ev.update(over)
    return ev


def test_nothing_refused_sequenced_and_every_admitted_once_passes():
    v = check_refused_never_sequenced(tokens_ev())
    assert v.status == "pass" and "none of 616 refused orders sequenced" in v.summary


def test_a_refused_token_sequenced_fails():
    v = check_refused_never_sequenced(tokens_ev(refused_sequenced=["BP0070000042"],
                                                refused_sequenced_count=1))
    assert v.status == "fail", v
    assert "1 refused orders were sequenced anyway (first: BP0070000042)" in v.summary


def test_each_token_problem_fails():
    for key, words in (("refused_accepted", "accepted afterwards"),
                       ("admitted_unsequenced", "never sequenced"),
                       ("admitted_sequenced_twice", "sequenced twice")):
        v = check_refused_never_sequenced(tokens_ev(**{key: ["T1"], f"{key}_count": 3}))
        assert v.status == "fail" and f"3 {key.split('_')[0]} orders were" in v.summary, (key, v)
        assert words in v.summary


def test_nothing_refused_is_unknown_and_a_problem_still_fails():
    v = check_refused_never_sequenced(tokens_ev(refused=0))
    assert v.status == "unknown" and "nothing was refused" in v.summary
    bad = check_refused_never_sequenced(tokens_ev(refused=0, admitted_unsequenced=["T"],
                                                  admitted_unsequenced_count=1))
    assert bad.status == "fail"


def test_too_few_admitted_checked_is_unknown():
    v = covered(check_refused_never_sequenced(tokens_ev()),
                {"refused_checked": 616, "admitted_checked": 10}, {})
    assert v.status == "unknown" and "admitted_checked: 10 of 100" in v.summary
