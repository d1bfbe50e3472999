"""check_refuse_at_once on literal flood evidence: problems first, then thinness."""

from __future__ import annotations

from harness.checkers.backpressure import check_refuse_at_once

PROMPT_429 = {"status": 429, "retry_after": "1", "seconds": 0.01}


def flood(**over):
    ev = {"flood": 4200, "refused": 616, "admitted": 3584, "missing": [], "missing_count": 0,
          "accepted_twice": 0, "other_while_paused": [], "slowest_refusal_s": 0.2,
          "http": PROMPT_429}
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
