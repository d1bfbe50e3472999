"""The counts of a resend / gateway-restart trial, and its verdict on literal evidence."""

from __future__ import annotations

import itertools

from harness.checkers.exactly_once import check_sequenced_once, require_resends
from harness.checkers.resend_evidence import in_flight_at, requests_under_new_incarnation, resends_behind
from harness.coverage import covered
from harness.history import NEMESIS, OK, History
from reference_impl.core.messages import Cancel, Heartbeat, Sequenced

RID = "exactly_once.gateway_resend.sequenced_once"
ENOUGH = {"resends": 3000, "requests": 1500, "in_flight_at_pause": 1200,
          "resends_after_1000": 1200, "orders_after_restart": 180, "new_incarnation": 240}


def _msg(seq: int, req: int, gw: int = 1, inc: int = 1) -> Sequenced:
    return Sequenced(seq, 0, gw, inc, req, "ACC1", Cancel(f"T{inc}x{req}", 0))


def test_in_flight_counts_order_ops_open_at_the_index():
    ticks = itertools.count(0, 10)
    h = History(clock=lambda: next(ticks))
    answered = h.invoke(1, "new", {"account": "A", "token": "T1"})
    h.complete(answered, OK, {"outputs": []})
    waiting = [h.invoke(2, "new", {"account": "A", "token": f"W{i}"}) for i in range(3)]
    h.invoke(NEMESIS, "fault", {"name": "pause-sequencer"})  # not an order op
    at = len(h.ops)
    h.complete(waiting[0], OK, {"outputs": []})
    h.invoke(3, "cancel", {"account": "A", "token": "late"})  # invoked after: not in flight
    assert in_flight_at(h.ops, at) == 3
    assert in_flight_at(h.ops, 1) == 1  # only the first, before its completion


def test_resends_behind_counts_only_past_the_horizon():
    assert resends_behind(1000, (10, 1211), (900, 2100)) == 1200  # 1200 others ahead
    assert resends_behind(1000, (10, 1010), (900, 2100)) == 0  # 999 ahead: short of it
    assert resends_behind(1000, (0, 1001), (5, 5)) == 0  # nothing resent after the mark
    assert resends_behind(1000, (None, 5000), (0, 10)) == 0  # a reading is missing
    assert resends_behind(1000, (0, 5000), (0, None)) == 0


def test_requests_under_new_incarnation():
    before = [_msg(1, 1), _msg(2, 2), _msg(3, 1, gw=2), Sequenced(4, 0, 0, 0, 0, "", Heartbeat())]
    after = [_msg(5, 3), _msg(6, 1, inc=2), _msg(7, 2, inc=2), _msg(8, 2, gw=2), _msg(9, 1, gw=3)]
    # gateway 1 restarted (two requests under incarnation 2); gateway 2 did not; 3 is new
    assert requests_under_new_incarnation(before + after, after_seq=4) == 2
    assert requests_under_new_incarnation(before, after_seq=4) == 0


def _verdict(messages, resends: int = 3000):
    return require_resends(check_sequenced_once(messages, requirement=RID), resends)


def test_enough_evidence_passes_with_its_coverage_table():
    v = covered(_verdict([_msg(1, 1), _msg(2, 2)]), ENOUGH, {})
    assert v.status == "pass"
    assert {r["situation"]: r["seen"] for r in v.evidence["coverage"]} == ENOUGH


def test_no_long_horizon_resend_or_restart_is_unknown_naming_them():
    thin = {**ENOUGH, "resends_after_1000": 0, "orders_after_restart": 3}
    v = covered(_verdict([_msg(1, 1), _msg(2, 2)]), thin, {})
    assert v.status == "unknown"
    assert "resends_after_1000: 0 of 1" in v.summary
    assert "orders_after_restart: 3 of 20" in v.summary
    # the profile's evidence key lowers a minimum (a SUT that cannot restart its gateway)
    lowered = {"evidence": {RID: {"resends_after_1000": 0, "orders_after_restart": 0}}}
    assert covered(_verdict([_msg(1, 1)]), thin, lowered).status == "pass"


def test_a_request_sequenced_twice_fails_however_thin_the_evidence():
    v = covered(_verdict([_msg(1, 1), _msg(2, 2), _msg(3, 1)], resends=0),
                {"resends": 0, "requests": 3}, {})
    assert v.status == "fail"
    assert v.summary.startswith("1 requests sequenced more than once")
