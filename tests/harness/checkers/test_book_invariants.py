from __future__ import annotations

import copy

import pytest

from reference_impl.core.engine import Engine
from reference_impl.core.messages import Cancel, Heartbeat, NewOrder, Sequenced, Side, Tif
from reference_impl.core.replay_format import output_to_json
from reference_impl.core.rules import Instruments

from harness.checkers import book_invariants
from harness.checkers.book_invariants import check_book
from harness.model import Model

B, S = Side.BUY, Side.SELL


def m(seq, account, body):
    return Sequenced(seq, 1_000 + seq, 1, 1, seq, account, body)


INPUTS = [
    m(1, "ACC1", NewOrder("S1", "ACME", S, 10, 10100)),
    m(2, "ACC2", NewOrder("S2", "ACME", S, 10, 10000)),
    m(3, "ACC3", NewOrder("S3", "ACME", S, 5, 10000)),
    m(4, "ACC4", NewOrder("B1", "ACME", B, 12, 10100)),
    m(5, "ACC3", Cancel("S3", 0)),
    m(6, "ACC1", NewOrder("S4", "ACME", S, 5, 9000, tif=Tif.IOC)),
    Sequenced(7, 0, 0, 0, 0, "", Heartbeat()),
]


def acc(seq, account, token, side, qty, price, ref):
    return {"seq": seq, "type": "accepted", "account": account, "token": token,
            "symbol": "ACME", "side": side, "qty": qty, "price": price, "order_ref": ref}


def exe(seq, account, token, qty, price, match_id, liq):
    return {"seq": seq, "type": "executed", "account": account, "token": token, "qty": qty,
            "price": price, "match_id": match_id, "liquidity": liq}


GOOD = [
    acc(1, "ACC1", "S1", "S", 10, 10100, 1),
    acc(2, "ACC2", "S2", "S", 10, 10000, 2),
    acc(3, "ACC3", "S3", "S", 5, 10000, 3),
    acc(4, "ACC4", "B1", "B", 12, 10100, 4),
    exe(4, "ACC2", "S2", 10, 10000, 1, "A"),  # best price, then earliest: S2 before S3
    exe(4, "ACC4", "B1", 10, 10000, 1, "R"),
    exe(4, "ACC3", "S3", 2, 10000, 2, "A"),
    exe(4, "ACC4", "B1", 2, 10000, 2, "R"),
    {"seq": 5, "type": "canceled", "account": "ACC3", "token": "S3", "qty": 3, "reason": "user"},
    acc(6, "ACC1", "S4", "S", 5, 9000, 5),
    {"seq": 6, "type": "canceled", "account": "ACC1", "token": "S4", "qty": 5, "reason": "ioc"},
]


def test_literal_good_outputs_are_what_the_reference_engine_emits():
    engine = Engine()
    got = [output_to_json(o) for msg in INPUTS for o in engine.apply(msg)]
    assert got == GOOD


def test_good_outputs_pass():
    v = check_book(INPUTS, GOOD)
    assert v.status == "pass", v.summary
    assert v.evidence["steps"] == 7 and v.evidence["orders"] == 5
    assert v.evidence["first_difference"] is None and v.evidence["crossed"] is None


def test_core_output_tuples_pass_too():
    engine = Engine()
    outs = [o for msg in INPUTS for o in engine.apply(msg)]
    assert check_book(INPUTS, outs).status == "pass"


def test_time_priority_violation_fails_at_its_seq():
    bad = copy.deepcopy(GOOD)
    # fill the later S3 first at the same price
    bad[4:8] = [exe(4, "ACC3", "S3", 5, 10000, 1, "A"), exe(4, "ACC4", "B1", 5, 10000, 1, "R"),
                exe(4, "ACC2", "S2", 7, 10000, 2, "A"), exe(4, "ACC4", "B1", 7, 10000, 2, "R")]
    v = check_book(INPUTS, bad)
    assert v.status == "fail"
    d = v.evidence["first_difference"]
    assert d["seq"] == 4 and d["input"]["token"] == "B1"
    assert d["expected"] == GOOD[3:8] and d["got"] == bad[3:8]


def test_price_priority_violation_and_wrong_fill_price_fail():
    bad = copy.deepcopy(GOOD)
    bad[5]["price"] = bad[4]["price"] = 10100  # traded at the aggressor's price
    assert check_book(INPUTS, bad).evidence["first_difference"]["seq"] == 4


def test_missing_and_stray_outputs_fail():
    v = check_book(INPUTS, GOOD[:-1])  # the IOC remainder cancel is missing
    assert v.status == "fail" and v.evidence["first_difference"]["seq"] == 6
    stray = GOOD + [{"seq": 9, "type": "rejected", "account": "ACC1", "token": "X",
                     "reason": "bad_price"}]
    v = check_book(INPUTS, stray)
    assert v.status == "fail" and v.evidence["stray_output_seqs"] == [9]


def test_overdrawn_order_is_reported():
    bad = copy.deepcopy(GOOD)
    bad[8]["qty"] = 9  # canceled more than was left
    v = check_book(INPUTS, bad)
    assert v.status == "fail"
    assert v.evidence["overdrawn"][0]["order"] == ["ACC3", "S3"]


def test_instruments_change_the_model():
    # ACME is not tradable here: the model rejects everything, the outputs disagree
    v = check_book(INPUTS, GOOD, Instruments({"OTHER": 100}))
    assert v.status == "fail" and v.evidence["first_difference"]["seq"] == 1
    assert check_book(INPUTS, GOOD, Instruments(None)).status == "pass"
    assert check_book(INPUTS, GOOD, {"ACME": 100}).status == "pass"


def test_gap_in_inputs_is_unknown_and_empty_is_unknown():
    v = check_book(INPUTS[:2] + INPUTS[3:], GOOD)
    assert v.status == "unknown" and v.evidence["gap_at"] == 4
    assert check_book([], []).status == "unknown"


def test_a_difference_before_a_gap_fails_rather_than_unknown():
    """Problems are judged before thinness: what was checked up to the gap already disagrees."""
    bad = [o for o in GOOD if o["seq"] != 2]
    v = check_book(INPUTS[:2] + INPUTS[3:], bad)
    assert v.status == "fail" and v.evidence["first_difference"]["seq"] == 2
    assert v.evidence["gap_at"] == 4


class _NoMatchModel(Model):
    """A broken model that never matches: its book crosses."""

    def _match(self, seq, aggressor, out):
        return None


class _LeakyModel(Model):
    """A broken model whose cancels forget to account for the decrement."""

    def _cancel(self, seq, account, b):
        out = super()._cancel(seq, account, b)
        order = next(o for o in self.all_orders if o.token == b.token)
        order.canceled = 0
        return out


def test_crossed_book_is_detected(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(book_invariants, "Model", _NoMatchModel)
    v = check_book(INPUTS, GOOD)
    assert v.status == "fail"
    assert v.evidence["crossed"] == {"seq": 4, "symbol": "ACME", "best_bid": 10100,
                                     "best_ask": 10000}


def test_unconserved_quantity_is_detected(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(book_invariants, "Model", _LeakyModel)
    v = check_book(INPUTS, GOOD)
    assert v.status == "fail"
    assert v.evidence["unconserved"] == [{"order": ["ACC3", "S3"], "original": 5, "filled": 2,
                                          "open": 0, "canceled": 0}]
