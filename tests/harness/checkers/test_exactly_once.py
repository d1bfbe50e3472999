from __future__ import annotations

import itertools

from reference_impl.core.messages import (
    Accepted,
    Cancel,
    Executed,
    Heartbeat,
    NewOrder,
    Sequenced,
    Side,
)

from harness.checkers.exactly_once import (
    check_applied_once,
    check_history_once,
    check_reported_once,
    check_same_final_state,
    check_sequenced_once,
    require_resends,
)
from harness.history import FAIL, INFO, OK, History


def acc(seq, token, account="ACC1", qty=10):
    return {"seq": seq, "type": "accepted", "account": account, "token": token,
            "symbol": "ACME", "side": "B", "qty": qty, "price": 10000, "order_ref": seq}


def rej(seq, token, reason="bad_price", account="ACC1"):
    return {"seq": seq, "type": "rejected", "account": account, "token": token,
            "reason": reason}


def exe(seq, token, match_id, liq, qty=5, account="ACC1"):
    return {"seq": seq, "type": "executed", "account": account, "token": token, "qty": qty,
            "price": 10000, "match_id": match_id, "liquidity": liq}


def can(seq, token, qty, reason="user", account="ACC1"):
    return {"seq": seq, "type": "canceled", "account": account, "token": token, "qty": qty,
            "reason": reason}


def new_history():
    ticks = itertools.count(0, 10)
    return History(clock=lambda: next(ticks))


def order(h, f, token, outcome_type, outputs, process=1, **extra):
    value = {"account": "ACC1", "token": token, **extra}
    inv = h.invoke(process, f, value)
    if outcome_type is not None:
        h.complete(inv, outcome_type, {**value, "outputs": outputs})
    return inv


# ------------------------------------------------------------- applied once


def test_applied_once_good():
    v = check_applied_once([1, 2, 3, 4])
    assert v.status == "pass"


def test_applied_twice_names_the_seq():
    v = check_applied_once([1, 2, 3, 3, 4])
    assert v.status == "fail"
    assert v.evidence["reused"] == [3]
    assert "first: 3" in v.summary


def test_applied_with_gap_or_not_from_one_fails():
    assert check_applied_once([1, 2, 4]).evidence["gaps"] == [[3, 3]]
    assert check_applied_once([2, 3]).status == "fail"
    assert check_applied_once([]).status == "unknown"


# ----------------------------------------------------------- sequenced once


def _msg(seq, req, gw=1, inc=1, body=None):
    return Sequenced(seq, 0, gw, inc, req, "ACC1", body or Cancel(f"T{req}", 0))


def test_each_request_sequenced_once():
    msgs = [_msg(1, 1), _msg(2, 2), _msg(3, 1, gw=2), _msg(4, 1, inc=2),
            Sequenced(5, 0, 0, 0, 0, "", Heartbeat()), Sequenced(6, 0, 0, 0, 0, "", Heartbeat())]
    v = check_sequenced_once(msgs)
    assert v.status == "pass" and v.evidence["client_requests"] == 4


def test_resend_sequenced_twice_fails():
    v = check_sequenced_once([_msg(1, 1), _msg(2, 2), _msg(3, 1)])
    assert v.status == "fail"
    assert v.evidence["duplicates"] == [{"request": [1, 1, 1], "seqs": [1, 3]}]
    assert check_sequenced_once([Sequenced(1, 0, 0, 0, 0, "", Heartbeat())]).status == "unknown"


# ------------------------------------------------------------ reported once


def test_reported_once_good_stream():
    outs = [acc(1, "A"), acc(2, "B"), exe(2, "A", 1, "A"), exe(2, "B", 1, "R"),
            can(3, "A", 5), rej(4, "C")]
    v = check_reported_once(outs)
    assert v.status == "pass"
    assert (v.evidence["orders"], v.evidence["fills"]) == (2, 2)


def test_core_output_tuples_are_accepted():
    outs = [Accepted(1, "ACC1", "A", "ACME", Side.BUY, 10, 10000, 1),
            Executed(2, "ACC1", "A", 5, 10000, 1, "A")]
    assert check_reported_once(outs).status == "pass"


def test_order_accepted_twice_fails_naming_it():
    v = check_reported_once([acc(1, "A"), acc(7, "A")])
    assert v.status == "fail"
    assert v.evidence["orders_reported_twice"][0]["order"] == ["ACC1", "A"]


def test_fill_reported_twice_fails():
    outs = [acc(1, "A"), acc(2, "B"), exe(2, "A", 1, "A"), exe(2, "B", 1, "R"),
            exe(2, "A", 1, "A")]
    v = check_reported_once(outs)
    assert v.status == "fail"
    assert v.evidence["fills_reported_twice"][0]["fill"] == [1, "A"]


def test_cancels_beyond_qty_fail():
    v = check_reported_once([acc(1, "A", qty=10), exe(2, "A", 1, "A", qty=4), can(3, "A", 6),
                             can(4, "A", 6)])
    assert v.status == "fail"
    assert v.evidence["overdrawn"] == [{"order": ["ACC1", "A"], "qty": 10,
                                        "executed_plus_canceled": 16}]


def test_no_outputs_is_unknown():
    assert check_reported_once([]).status == "unknown"


# --------------------------------------------------------- same final state


def test_same_final_state():
    assert check_same_final_state("ab" * 32, bytes.fromhex("ab" * 32)).status == "pass"
    v = check_same_final_state("ab" * 32, "cd" * 32)
    assert v.status == "fail" and v.evidence["faulty_hash"] == "cd" * 32
    assert check_same_final_state(None, "cd" * 32).status == "unknown"


def test_same_final_state_digests_compare_applied_seq():
    clean = {"applied_seq": 100, "state_hash": "ab" * 32}
    assert check_same_final_state(clean, dict(clean)).status == "pass"
    v = check_same_final_state(clean, {"applied_seq": 99, "state_hash": "ab" * 32})
    assert v.status == "fail" and "seq 99" in v.summary
    # problems before thinness: different seqs fail even when a hash is missing
    v = check_same_final_state(clean, {"applied_seq": 99, "state_hash": None})
    assert v.status == "fail" and "seq 99" in v.summary
    assert check_same_final_state(clean, {"applied_seq": 100}).status == "unknown"


# ----------------------------------------------------------- history once


def test_good_history_passes():
    h = new_history()
    order(h, "new", "A", OK, [acc(1, "A")])
    order(h, "new", "B", FAIL, [rej(2, "B")])
    order(h, "new", "C", OK, [acc(3, "C"), exe(3, "C", 1, "R"), can(3, "C", 5, "ioc")])
    order(h, "replace", "A", OK, [{"seq": 4, "type": "replaced", "account": "ACC1",
                                   "token": "A2", "old_token": "A", "qty": 5, "price": 10000,
                                   "order_ref": 4}], new_token="A2")
    order(h, "cancel", "A2", OK, [can(5, "A2", 5)], qty=0)
    order(h, "new", "D", INFO, [])  # unknown outcome: not judged
    order(h, "new", "E", None, [])  # still open
    v = check_history_once(h.ops)
    assert v.status == "pass", v.summary
    assert v.evidence["ok_ops_judged"] == 4


def test_ok_op_with_two_outcomes_fails():
    h = new_history()
    op = order(h, "new", "A", OK, [acc(1, "A"), rej(3, "A", "duplicate_token")])
    v = check_history_once(h.ops)
    assert v.status == "fail"
    bad = v.evidence["ops_without_exactly_one_outcome"][0]
    assert (bad["op"], bad["order"]) == (op.index, ["ACC1", "A"])


def test_ok_op_without_outcome_fails():
    h = new_history()
    order(h, "new", "A", OK, [acc(1, "OTHER")])
    v = check_history_once(h.ops)
    assert v.status == "fail"
    assert v.evidence["ops_without_exactly_one_outcome"][0]["outcomes"] == []


def test_order_acknowledged_twice_at_different_seqs_fails():
    h = new_history()
    order(h, "new", "A", OK, [acc(1, "A")], process=1)
    order(h, "new", "A", OK, [acc(9, "A")], process=2)
    v = check_history_once(h.ops)
    assert v.status == "fail"
    assert v.evidence["orders_accepted_twice"][0]["seqs"] == [1, 9]


def test_one_decision_reported_two_ways_fails():
    h = new_history()
    order(h, "new", "A", OK, [acc(4, "A")], process=1)
    order(h, "new", "A", FAIL, [rej(4, "A")], process=2)
    v = check_history_once(h.ops)
    assert v.status == "fail"
    assert v.evidence["inconsistent_reports"][0]["seq"] == 4


def test_reject_then_retry_and_duplicate_reuse_are_consistent():
    h = new_history()
    order(h, "new", "A", FAIL, [rej(1, "A", "bad_price")])  # a rejected order frees its token
    order(h, "new", "A", OK, [acc(2, "A")])
    order(h, "new", "A", FAIL, [rej(3, "A", "duplicate_token")])  # a reuse, refused
    order(h, "new", "A", OK, [acc(2, "A")], process=2)  # the same decision seen twice
    assert check_history_once(h.ops).status == "pass"


def test_history_with_nothing_ok_is_unknown():
    h = new_history()
    order(h, "new", "A", INFO, [])
    assert check_history_once(h.ops).status == "unknown"


def test_history_once_ignores_seqless_outcomes_of_a_door_without_seqs():
    h = History(clock=iter(range(100)).__next__)
    a = h.invoke(1, "new", {"account": "A", "token": "T"})
    h.complete(a, OK, {"account": "A", "token": "T", "outputs": [
        {"seq": None, "type": "accepted", "account": "A", "token": "T", "symbol": "X",
         "side": "B", "qty": 1, "price": 100, "order_ref": 1}]})
    b = h.invoke(1, "new", {"account": "A", "token": "T"})
    h.complete(b, FAIL, {"account": "A", "token": "T", "outputs": [
        {"seq": None, "type": "rejected", "account": "A", "token": "T", "reason": "duplicate_token"}]})
    assert check_history_once(h.ops).status == "pass"


# ------------------------------------------------------------ resend evidence


def _sequenced_pass():
    msgs = [Sequenced(i, 0, 1, 1, i, "ACC1", NewOrder(f"T{i}", "ACME", Side.BUY, 1, 10000))
            for i in range(1, 4)]
    return check_sequenced_once(msgs, requirement="exactly_once.gateway_resend.sequenced_once")


def test_resends_counter_unreadable_is_unknown_not_pass():
    v = require_resends(_sequenced_pass(), None, offered=True, reason="digest timed out")
    assert v.status == "unknown"
    assert "could not be read" in v.summary and "digest timed out" in v.summary
    assert v.evidence["gateway_resends"] is None


def test_no_resend_counter_offered_is_na():
    v = require_resends(_sequenced_pass(), None, offered=False,
                        reason="the gateway digest has no counters.resends")
    assert v.status == "n/a" and "counters.resends" in v.summary


def test_zero_resends_is_unknown_and_positive_passes():
    assert require_resends(_sequenced_pass(), 0).status == "unknown"
    v = require_resends(_sequenced_pass(), 3)
    assert v.status == "pass" and v.evidence["gateway_resends"] == 3


def test_a_duplicate_fails_whatever_the_counter_says():
    body = NewOrder("T1", "ACME", Side.BUY, 1, 10000)
    dup = check_sequenced_once([Sequenced(1, 0, 1, 1, 1, "ACC1", body),
                                Sequenced(2, 0, 1, 1, 1, "ACC1", body)])
    assert require_resends(dup, None, offered=False).status == "fail"
    assert require_resends(dup, None).status == "fail"
