from __future__ import annotations

import itertools

from reference_impl.core import sequenced_codec, wal_codec
from reference_impl.core.messages import (
    Cancel,
    Heartbeat,
    NewOrder,
    Replace,
    Sequenced,
    Side,
)

from harness.checkers.zero_loss import (
    acknowledged_orders,
    check_corrupt_middle_refused,
    check_no_corrupt_accepted,
    check_zero_acked_loss,
    wal_orders_from_records,
)
from harness.history import FAIL, INFO, NEMESIS, OK, History


def new_history():
    ticks = itertools.count(0, 10)
    return History(clock=lambda: next(ticks))


def acked_new(h, n, start=0, account="ACC1"):
    """n new orders T<i>, each acknowledged with its accepted output."""
    keys = []
    for i in range(start, start + n):
        token = f"T{i}"
        value = {"account": account, "token": token}
        inv = h.invoke(1, "new", value)
        out = {"seq": i + 1, "type": "accepted", "account": account, "token": token,
               "symbol": "ACME", "side": "B", "qty": 10, "price": 10000, "order_ref": i + 1}
        h.complete(inv, OK, {**value, "outputs": [out]})
        keys.append((account, token))
    return keys


def fault(h, name="kill logger"):
    inv = h.invoke(NEMESIS, "fault", {"name": name})
    h.complete(inv, OK)


def test_all_acked_orders_present_passes():
    h = new_history()
    keys = acked_new(h, 120)
    fault(h)
    v = check_zero_acked_loss(h.ops, set(keys), set(keys))
    assert v.status == "pass", v.summary
    assert v.evidence["acked"] == 120 and v.evidence["lost"] == []
    assert v.evidence["policy"] == "fsync" and v.evidence["sources"] == ["wal", "recovered"]


def test_acked_order_missing_from_wal_fails_naming_it():
    h = new_history()
    keys = acked_new(h, 120)
    fault(h)
    wal = set(keys) - {("ACC1", "T57")}
    v = check_zero_acked_loss(h.ops, wal, None)
    assert v.status == "fail"
    assert v.evidence["lost"] == [["ACC1", "T57"]]
    assert v.evidence["lost_from_wal"] == [["ACC1", "T57"]]
    assert "T57" in v.summary and "the WAL" in v.summary


def test_acked_order_missing_from_recovered_status_fails():
    h = new_history()
    keys = acked_new(h, 120)
    status = {k: "open" for k in keys}
    status[("ACC1", "T3")] = "filled"  # gone from the book but known: present
    status[("ACC1", "T9")] = "unknown"  # the recovered SUT has never heard of it
    v = check_zero_acked_loss(h.ops, None, status)
    assert v.status == "fail"
    assert v.evidence["lost_from_recovered"] == [["ACC1", "T9"]]


def test_a_loss_fails_even_with_few_acked():
    h = new_history()
    acked_new(h, 5)
    assert check_zero_acked_loss(h.ops, set(), None).status == "fail"


def test_fifty_acked_orders_is_unknown_never_pass():
    h = new_history()
    keys = acked_new(h, 50)
    fault(h)
    v = check_zero_acked_loss(h.ops, set(keys), set(keys))
    assert v.status == "unknown"
    assert v.summary == "only 50 acknowledged orders before the fault; need 100"


def test_only_acks_before_the_fault_count_as_evidence():
    h = new_history()
    keys = acked_new(h, 60)
    fault(h)
    keys += acked_new(h, 60, start=60)
    v = check_zero_acked_loss(h.ops, set(keys), None)
    assert v.status == "unknown"
    assert (v.evidence["acked"], v.evidence["acked_before_fault"]) == (120, 60)
    assert check_zero_acked_loss(h.ops, set(keys), None, min_acked=60).status == "pass"


def test_info_op_whose_order_is_absent_is_not_lost():
    h = new_history()
    keys = acked_new(h, 100)
    inv = h.invoke(2, "new", {"account": "ACC1", "token": "MAYBE"})
    h.complete(inv, INFO, {"account": "ACC1", "token": "MAYBE", "error": "timeout"})
    fault(h)
    v = check_zero_acked_loss(h.ops, set(keys), set(keys))
    assert v.status == "pass"
    assert v.evidence["open"] == 1 and v.evidence["open_found"] == 0
    assert v.evidence["lost_count"] == 0 and v.evidence["acked"] == 100


def test_open_op_found_in_wal_is_reported_as_found():
    h = new_history()
    keys = acked_new(h, 100)
    h.invoke(2, "new", {"account": "ACC1", "token": "MAYBE"})  # never completed
    v = check_zero_acked_loss(h.ops, set(keys) | {("ACC1", "MAYBE")}, None)
    assert v.status == "pass"
    assert (v.evidence["open"], v.evidence["open_found"]) == (1, 1)


def test_rejected_and_failed_orders_are_not_acknowledged():
    h = new_history()
    value = {"account": "ACC1", "token": "R"}
    inv = h.invoke(1, "new", value)
    h.complete(inv, FAIL, {**value, "outputs": [{"seq": 1, "type": "rejected", "account": "ACC1",
                                                 "token": "R", "reason": "bad_price"}]})
    inv = h.invoke(1, "new", {"account": "ACC1", "token": "S"})
    h.complete(inv, OK, {"account": "ACC1", "token": "S", "outputs": []})  # no accepted seen
    acked, open_ops = acknowledged_orders(h.ops)
    assert acked == {} and open_ops == []


def test_replace_acknowledges_its_new_token():
    h = new_history()
    value = {"account": "ACC1", "token": "OLD", "new_token": "NEW"}
    inv = h.invoke(1, "replace", value)
    h.complete(inv, OK, {**value, "outputs": [{
        "seq": 2, "type": "replaced", "account": "ACC1", "token": "NEW", "old_token": "OLD",
        "qty": 5, "price": 10000, "order_ref": 2}]})
    acked, _ = acknowledged_orders(h.ops)
    assert list(acked) == [("ACC1", "NEW")]
    v = check_zero_acked_loss(h.ops, {("ACC1", "OLD")}, None, min_acked=1)
    assert v.status == "fail" and v.evidence["lost"] == [["ACC1", "NEW"]]


def test_replicated_policy_loss_names_the_policy():
    h = new_history()
    keys = acked_new(h, 120)
    fault(h, "power-off")
    v = check_zero_acked_loss(h.ops, set(keys[:100]), None, policy="replicated")
    assert v.status == "fail"
    assert "policy 'replicated'" in v.summary and v.evidence["lost_count"] == 20


def test_policy_none_is_never_zero_loss():
    h = new_history()
    keys = acked_new(h, 120)
    v = check_zero_acked_loss(h.ops, set(keys), set(keys), policy="none")
    assert v.status == "fail" and "'none'" in v.summary


def test_no_evidence_source_is_unknown():
    h = new_history()
    acked_new(h, 120)
    assert check_zero_acked_loss(h.ops, None, None).status == "unknown"


def test_wal_orders_from_records():
    msgs = [
        Sequenced(1, 0, 1, 1, 1, "ACC1", NewOrder("A", "ACME", Side.BUY, 10, 10000)),
        Sequenced(2, 0, 1, 1, 2, "ACC2", Replace("B", "B2", 5, 10000)),
        Sequenced(3, 0, 1, 1, 3, "ACC1", Cancel("A", 0)),
        Sequenced(4, 0, 0, 0, 0, "", Heartbeat()),
    ]
    buf = b"".join(wal_codec.encode_record(m.seq, sequenced_codec.encode(m)) for m in msgs)
    records = wal_codec.scan(buf).records
    assert wal_orders_from_records(records) == {("ACC1", "A"), ("ACC2", "B2")}
    errors: list = []
    pairs = [(r.seq, r.payload) for r in records] + [(5, b"junk")]
    assert wal_orders_from_records(pairs, errors) == {("ACC1", "A"), ("ACC2", "B2")}
    assert [seq for seq, _ in errors] == [5]


def test_no_record_past_the_first_bad_one_applied():
    v = check_no_corrupt_accepted([1, 2, 3, 4], [1, 2, 3, 4])
    assert v.status == "pass"
    assert check_no_corrupt_accepted(4, range(1, 5)).status == "pass"


def test_record_past_the_bad_one_applied_fails():
    v = check_no_corrupt_accepted([1, 2, 3, 4, 5, 6], [1, 2, 3, 4])
    assert v.status == "fail"
    assert v.evidence["applied_beyond_valid"] == [5, 6]
    v = check_no_corrupt_accepted(6, [1, 2, 3, 4])
    assert v.status == "fail" and v.evidence["applied_beyond_valid"] == [5, 6]


def test_recovery_that_drops_intact_records_fails_naming_the_first():
    v = check_no_corrupt_accepted([1, 2, 4], [1, 2, 3, 4, 5])
    assert v.status == "fail"
    assert v.evidence["intact_not_applied"] == [3, 5]
    assert "seq 3" in v.summary
    v = check_no_corrupt_accepted(2, [1, 2, 3, 4])
    assert v.status == "fail" and v.evidence["intact_not_applied"] == [3, 4]
    assert "seq 3" in v.summary


def test_recovery_of_nothing_fails_when_intact_records_exist():
    v = check_no_corrupt_accepted(0, [1, 2, 3])
    assert v.status == "fail" and "seq 1" in v.summary
    assert check_no_corrupt_accepted([], [1, 2, 3]).status == "fail"


def test_no_intact_records_is_unknown():
    assert check_no_corrupt_accepted(0, []).status == "unknown"
    assert check_no_corrupt_accepted([], []).status == "unknown"
    # applying something when nothing is intact is still a fail
    assert check_no_corrupt_accepted([1], []).status == "fail"


REFUSED = "logger: exited with code 2 before it was ready"


def test_mid_segment_corruption_reported_and_refused_passes():
    v = check_corrupt_middle_refused(1, 12, started=False, start_error=REFUSED)
    assert v.status == "pass" and v.evidence["records_after_defect"] == 12


def test_logger_starting_on_mid_segment_corruption_fails():
    v = check_corrupt_middle_refused(1, 12, started=True)
    assert v.status == "fail" and "must refuse" in v.summary


def test_verify_not_reporting_mid_segment_corruption_fails():
    v = check_corrupt_middle_refused(0, 12, started=False, start_error=REFUSED)
    assert v.status == "fail" and "exited 0" in v.summary


def test_mid_segment_trial_without_evidence_is_unknown():
    # nothing after the flipped record: a tail, not the middle
    assert check_corrupt_middle_refused(1, 0, started=False,
                                        start_error=REFUSED).status == "unknown"
    # did not come up, but did not exit either (a hang is no refusal)
    v = check_corrupt_middle_refused(1, 5, started=False,
                                     start_error="logger: not healthy after 20 s")
    assert v.status == "unknown"
