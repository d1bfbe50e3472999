"""check_power_off on literal histories and crash reports: the verdict follows the policy's promise."""

from __future__ import annotations

import itertools

from harness.checkers.zero_loss import check_ack_after_flush, check_power_off
from harness.history import NEMESIS, OK, History

CUT = [{"bytes_discarded": 640, "writes_discarded": 10, "flushes_cut": 1},
       {"bytes_discarded": 0, "writes_discarded": 0, "flushes_cut": 0}]
NOTHING_CUT = [{"bytes_discarded": 0, "writes_discarded": 0, "flushes_cut": 0}]


def trial(n: int) -> tuple[History, set]:
    """n orders acknowledged 1 ms apart, then the power-off; returns the history and the acked keys."""
    ms = itertools.count(0, 1_000_000)
    h = History(clock=lambda: next(ms))
    keys = set()
    for i in range(n):
        value = {"account": "ACC1", "token": f"T{i}"}
        inv = h.invoke(1, "new", value)
        out = {"type": "accepted", "account": "ACC1", "token": f"T{i}", "seq": i + 1}
        h.complete(inv, OK, {**value, "outputs": [out]})
        keys.add(("ACC1", f"T{i}"))
    h.complete(h.invoke(NEMESIS, "fault", {"name": "power-off"}), OK)
    return h, keys


def lose(keys: set, *tokens: str) -> set:
    return keys - {("ACC1", t) for t in tokens}


def test_fsync_keeps_every_ack_after_a_cut_passes_with_the_cut_in_evidence():
    h, keys = trial(120)
    v = check_power_off(h.ops, keys, CUT, "fsync")
    assert v.status == "pass", v.summary
    ev = v.evidence
    assert (ev["bytes_discarded"], ev["writes_discarded"], ev["flushes_cut"]) == (640, 10, 1)
    assert ev["rpo_ms"] == 0 and ev["promised"] is True and "640 bytes in 10 writes" in v.summary


def test_fsync_losing_an_ack_fails_with_an_rpo():
    h, keys = trial(120)
    v = check_power_off(h.ops, lose(keys, "T118", "T119"), CUT, "fsync")
    assert v.status == "fail" and "2 of 120" in v.summary
    # T118 was acked at op 237 (t = 237 ms); the power-off invoke is op 240
    assert v.evidence["rpo_ms"] == 3.0 and v.evidence["lost_count"] == 2
    at_crash = [{**CUT[0], "at_ns": 245_000_000}]   # the crash instant the lossy filesystem reports
    assert check_power_off(h.ops, lose(keys, "T118"), at_crash, "fsync").evidence["rpo_ms"] == 8.0


def test_a_power_off_that_discarded_nothing_is_unknown_not_pass():
    h, keys = trial(120)
    v = check_power_off(h.ops, keys, NOTHING_CUT, "fsync")
    assert v.status == "unknown" and "discarded nothing" in v.summary


def test_a_loss_fails_even_when_nothing_was_discarded():
    h, keys = trial(120)
    assert check_power_off(h.ops, lose(keys, "T5"), NOTHING_CUT, "fsync").status == "fail"


def test_too_few_acks_is_unknown():
    h, keys = trial(20)
    assert check_power_off(h.ops, keys, CUT, "fsync").status == "unknown"


def test_replicated_loss_is_measured_and_shown_outside_its_promise():
    h, keys = trial(120)
    v = check_power_off(h.ops, lose(keys, "T110"), CUT, "replicated")
    assert v.status == "n/a"
    assert "outside the promise of durability 'replicated'" in v.summary
    assert "1 of 120 acknowledged orders lost, RPO 19.0 ms" in v.summary   # acked at op 221, power-off at op 240
    assert v.evidence["measured"] == "fail" and v.evidence["promised"] is False


def test_replicated_loss_fails_when_the_profile_requires_it():
    h, keys = trial(120)
    v = check_power_off(h.ops, lose(keys, "T110"), CUT, "replicated", required=True)
    assert v.status == "fail" and "policy 'replicated'" in v.summary
    assert check_power_off(h.ops, keys, CUT, "replicated", required=True).status == "pass"
    assert check_power_off(h.ops, keys, NOTHING_CUT, "replicated", required=True).status == "unknown"


# ------------------------------------------------------------------ check_ack_after_flush


def flushed(keys: set, at_ns: int) -> dict:
    """Every order's record durable at ``at_ns``."""
    return {k: at_ns for k in keys}


def test_every_ack_after_its_flush_passes():
    h, keys = trial(120)
    v = check_ack_after_flush(h.ops, flushed(keys, 0), "fsync")
    assert v.status == "pass" and v.evidence["timed"] == 120, v.summary


def test_an_ack_before_its_flush_fails_naming_how_early():
    h, keys = trial(120)
    durable = flushed(keys, 0) | {("ACC1", "T3"): 10_500_000}   # T3 acked at op 7 (7 ms), durable at 10.5
    v = check_ack_after_flush(h.ops, durable, "fsync")
    assert v.status == "fail" and "1 of 120" in v.summary and "3.500 ms early" in v.summary
    assert v.evidence["early_ms"] == [[["ACC1", "T3"], 3.5]]


def test_an_acked_record_never_flushed_fails():
    h, keys = trial(120)
    v = check_ack_after_flush(h.ops, flushed(keys, 0) | {("ACC1", "T9"): None}, "fsync")
    assert v.status == "fail" and v.evidence["never_durable"] == [["ACC1", "T9"]]


def test_too_few_records_found_to_time_is_unknown():
    h, keys = trial(120)
    v = check_ack_after_flush(h.ops, flushed(set(sorted(keys)[:50]), 0), "fsync")
    assert v.status == "unknown" and "only 50" in v.summary and len(v.evidence["untimed"]) == 10


def test_ack_after_flush_is_na_unless_fsync():
    h, _ = trial(120)
    assert check_ack_after_flush(h.ops, {}, "replicated").status == "n/a"
