"""check_liveness and with_liveness on literal evidence: PASS, FAIL, UNKNOWN."""

from __future__ import annotations

import itertools

from harness.checkers.liveness import check_liveness, unsettled_orders, with_liveness
from harness.checkers.verdict import Verdict
from harness.history import FAIL, INFO, OK, History

ACCEPTED = {"token": "LV1", "accepted": True, "status": 200}
HEAD = 120
AT_HEAD = {"engine-1": 120, "engine-2": 120, "logger": 120}


def trial(*outcomes: str | None) -> list:
    """One new-order op per outcome (``None``: never completed), tokens T1, T2, ..."""
    ticks = itertools.count()
    h = History(clock=lambda: next(ticks))
    for i, outcome in enumerate(outcomes, 1):
        inv = h.invoke(0, "new", {"account": "A1", "token": f"T{i}"})
        if outcome is not None:
            h.complete(inv, outcome, {})
    return h.ops


def judge(head=HEAD, reached=None, probe=ACCEPTED, ops=None, fates=None):
    return check_liveness(head, AT_HEAD if reached is None else reached, probe,
                          trial(OK, FAIL) if ops is None else ops, fates or {}, 10.0)


def test_everything_at_the_head_probe_accepted_load_settled_passes():
    v = judge()
    assert v.status == "pass", v
    assert "head 120" in v.summary and "all 2 order ops settled" in v.summary


def test_info_and_open_ops_whose_final_state_is_known_are_settled():
    fates = {("A1", "T2"): "open", ("A1", "T3"): "not_found"}
    v = judge(ops=trial(OK, INFO, None), fates=fates)
    assert v.status == "pass", v
    assert "(2 by their final state)" in v.summary


def test_a_replica_short_of_the_head_fails():
    v = judge(reached={"engine-1": 120, "engine-2": 80, "logger": 120})
    assert v.status == "fail"
    assert "engine-2 stopped at seq 80" in v.summary
    assert v.evidence["stuck"] == {"engine-2": 80}


def test_a_component_that_does_not_answer_is_stuck():
    v = judge(reached={"engine-1": 120, "logger": None})
    assert v.status == "fail"
    assert "logger did not answer" in v.summary


def test_a_refused_or_unanswered_probe_fails():
    v = judge(probe={"token": "LV9", "accepted": False, "status": 504})
    assert v.status == "fail" and "LV9 was not accepted (status 504" in v.summary
    v = judge(probe={"token": "LV9", "accepted": False, "status": None, "error": "timed out"})
    assert v.status == "fail" and "timed out" in v.summary


def test_the_issue_trial_7_of_80_settled_with_the_exchange_stalled_fails():
    ops = trial(*([OK] * 7 + [INFO] * 73))
    fates = {("A1", f"T{i}"): "pending" for i in range(8, 81)}
    v = judge(reached={"engine-1": 7, "engine-2": 7, "logger": 7}, ops=ops, fates=fates,
              probe={"token": "LV1", "accepted": False, "status": 504})
    assert v.status == "fail"
    assert "73 of the trial's 80 order ops never settled" in v.summary
    assert "3 components short" in v.summary and "probe" in v.summary
    assert v.evidence["unsettled_count"] == 73


def test_an_op_never_completed_and_never_answered_for_is_unsettled():
    v = judge(ops=trial(OK, None))
    assert v.status == "fail"
    assert "never completed, final state None" in v.summary


def test_problems_are_judged_before_thinness():
    """No head to compare with (thin), but the probe was refused: FAIL, not UNKNOWN."""
    v = judge(head=None, reached={}, probe={"token": "LV1", "accepted": False, "status": 504})
    assert v.status == "fail"
    v = judge(head=None, reached={}, probe=None, ops=trial(INFO),
              fates={("A1", "T1"): "unknown"})
    assert v.status == "fail"


def test_thin_evidence_is_unknown_never_pass():
    assert judge(head=None, reached={}).status == "unknown"
    v = judge(probe=None)
    assert v.status == "unknown" and "no probe order was sent" in v.summary
    v = judge(ops=[])
    assert v.status == "unknown" and "the trial sent no order" in v.summary
    v = judge(reached={})
    assert v.status == "unknown" and "no component named its last seq" in v.summary


def test_unsettled_orders_reads_a_replace_by_its_new_token():
    ticks = itertools.count()
    h = History(clock=lambda: next(ticks))
    h.invoke(0, "replace", {"account": "A1", "token": "T1", "new_token": "T2"})
    unsettled, judged = unsettled_orders(h.ops, {("A1", "T1"): "open"})
    assert judged == 1 and unsettled[0]["order"] == ["A1", "T2"]
    assert unsettled_orders(h.ops, {("A1", "T2"): "replaced"}) == ([], 1)


def test_with_liveness_a_stall_fails_the_trial_and_keeps_its_evidence():
    trial_v = Verdict.passed("zero_loss.kill_logger.trial1", "all 10 survived", {"acked": 10})
    live = judge(reached={"engine-1": 3})
    v = with_liveness(trial_v, live)
    assert v.status == "fail" and v.requirement == "zero_loss.kill_logger.trial1"
    assert v.summary.startswith("liveness after the fault: ")
    assert v.evidence["acked"] == 10 and v.evidence["liveness"]["status"] == "fail"


def test_with_liveness_unknown_withholds_a_pass_but_never_hides_a_fail():
    thin = judge(probe=None)
    assert with_liveness(Verdict.passed("r", "ok"), thin).status == "unknown"
    assert with_liveness(Verdict.failed("r", "lost 2"), thin).status == "fail"
    assert with_liveness(Verdict.failed("r", "lost 2"), thin).summary == "lost 2"
    kept = with_liveness(Verdict.unknown("r", "only 3 acked"), judge())
    assert kept.status == "unknown" and kept.summary == "only 3 acked"
    assert with_liveness(Verdict.not_applicable("r", "no logger"), judge()).status == "n/a"
