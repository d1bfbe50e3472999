"""check_rule_conformance on literal scenario results: pass, fail, unknown, short coverage."""

from __future__ import annotations

from harness.checkers.rule_conformance import check_dense_workload, check_rule_conformance, normalize, parting

FOK = {"A": [["accepted", "a1", "S", 3, 200], ["executed", "a1", 3, 200, "A"]],
       "B": [["accepted", "b1", "B", 5, 200], ["canceled", "b1", 5, "ioc"],
             ["accepted", "b2", "B", 3, 200], ["executed", "b2", 3, 200, "R"]]}
FOK_PARTLY = {"A": [["accepted", "a1", "S", 3, 200], ["executed", "a1", 3, 200, "A"]],
              "B": [["accepted", "b1", "B", 5, 200], ["executed", "b1", 3, 200, "R"],
                    ["canceled", "b1", 2, "ioc"], ["accepted", "b2", "B", 3, 200],
                    ["canceled", "b2", 3, "ioc"]]}


def result(seen, door="http", rule="R6", unknown=None):
    return {"rule": rule, "title": "fill-or-kill", "door": door, "expected": FOK, "seen": seen,
            "unknown": unknown}


def test_normalize_keeps_what_a_client_sees_and_cuts_the_prefix():
    out = {"seq": 9, "type": "replaced", "account": "DEMO1", "token": "H07abcda2",
           "old_token": "H07abcda1", "qty": 3, "price": 200, "order_ref": 41}
    assert normalize(out, "H07abcd") == ["replaced", "a2", "a1", 3, 200]
    assert normalize({"type": "executed", "token": "x", "qty": 1, "price": 5, "match_id": 3,
                      "liquidity": "R"}) == ["executed", "x", 1, 5, "R"]
    assert parting([[1], [2]], [[1], [2]]) is None
    assert parting([[1], [2]], [[1]]) == 1
    assert parting([[1]], [[2]]) == 0


def test_every_stream_as_the_rule_gives_passes_with_a_coverage_table():
    v = check_rule_conformance([result(FOK), result(FOK, "ouch")], ["R6"])
    assert v.status == "pass", v.summary
    assert v.evidence["per_rule"] == [
        {"rule": "R6", "door": "http", "pass": 1, "fail": 0, "unknown": 0},
        {"rule": "R6", "door": "ouch", "pass": 1, "fail": 0, "unknown": 0}]


def test_a_fill_or_kill_that_partly_fills_fails_naming_rule_door_and_account():
    v = check_rule_conformance([result(FOK), result(FOK_PARTLY, "ouch")], ["R6"])
    assert v.status == "fail"
    assert "R6 (ouch)" in v.summary and "account B" in v.summary and "event 2" in v.summary
    (f,) = v.evidence["failures"]
    assert (f["door"], f["account"], f["at"]) == ("ouch", "B", 1)


def test_a_missing_stream_or_an_extra_event_fails():
    assert check_rule_conformance([result({"A": FOK["A"]})], ["R6"]).status == "fail"
    extra = {**FOK, "A": FOK["A"] + [["canceled", "a1", 0, "user"]]}
    assert check_rule_conformance([result(extra)], ["R6"]).status == "fail"


def test_a_scenario_without_an_answer_is_unknown_and_a_fail_beats_it():
    v = check_rule_conformance([result(FOK), result({}, "ouch", unknown="step 2 got no answer")],
                               ["R6"])
    assert v.status == "unknown" and "without an answer" in v.summary
    v = check_rule_conformance([result(FOK_PARTLY), result({}, "ouch", unknown="timeout")],
                               ["R6"])
    assert v.status == "fail"


def test_a_rule_without_a_judged_scenario_is_unknown_and_nothing_run_is_unknown():
    v = check_rule_conformance([result(FOK)], ["R6", "R7"])
    assert v.status == "unknown" and "R7 (http)" in v.summary
    assert check_rule_conformance([], ["R6"]).status == "unknown"


def dense(seen, door="ouch", unknown=None, situations=None, reproduction=None):
    return {"door": door, "requests": 4, "expected": FOK, "seen": seen, "unknown": unknown,
            "situations": {"fok_meets_too_little": 1} if situations is None else situations,
            "reproduction": reproduction}


def test_dense_runs_that_agree_with_the_model_and_meet_the_minimums_pass():
    v = check_dense_workload([dense(FOK, "http"), dense(FOK)], {"fok_meets_too_little": 1})
    assert v.status == "pass" and "8 dense requests" in v.summary


def test_a_dense_run_that_differs_fails_and_prints_its_reproduction():
    repro = ["A new t1 S 3@2 DAY", "B new t2 B 5@2 FOK"]
    v = check_dense_workload([dense(FOK, "http"), dense(FOK_PARTLY, reproduction=repro)],
                             {"fok_meets_too_little": 1})
    assert v.status == "fail"
    assert "reproduction (2 requests): A new t1 S 3@2 DAY; B new t2 B 5@2 FOK" in v.summary


def test_a_dense_run_short_of_a_situation_or_unanswered_is_unknown_but_a_difference_fails():
    v = check_dense_workload([dense(FOK, situations={})], {"fok_meets_too_little": 2})
    assert v.status == "unknown" and "fok_meets_too_little 0 of 2" in v.summary
    v = check_dense_workload([dense({}, unknown="step 3 got no answer")], {})
    assert v.status == "unknown" and "step 3" in v.summary
    v = check_dense_workload([dense(FOK_PARTLY, situations={})], {"fok_meets_too_little": 2})
    assert v.status == "fail"
    assert check_dense_workload([], {}).status == "unknown"
