"""OUCH <-> replay-format mapping and outcome matching, on literal messages."""

from __future__ import annotations

import pytest

from harness.clients import ouch_map
from harness.clients.ouch_map import Matcher, output_from_ouch
from reference_impl.core import ouch_codec
from reference_impl.core.ouch_messages import (
    MARKET_PRICE,
    CancelReject,
    OrderAccepted,
    OrderCanceled,
    OrderExecuted,
    OrderRejected,
    OrderReplaced,
    SystemEvent,
)


def test_enter_order_maps_tif_market_and_fok():
    day = ouch_map.enter_order("T1", "ACME", "B", 10, 100)
    assert (day.side, day.price, day.time_in_force, day.min_qty) == (b"B", 100, 99_999, 0)
    fok = ouch_map.enter_order("T2", "ACME", "S", 10, 100, tif="FOK")
    assert (fok.time_in_force, fok.min_qty) == (0, 10)
    mkt = ouch_map.enter_order("T3", "ACME", "S", 5, ord_type="market", tif="IOC")
    assert (mkt.price, mkt.time_in_force) == (MARKET_PRICE, 0)
    # what the engine sees is what the replay format says
    core = ouch_codec.enter_to_core(ouch_codec.decode_inbound(ouch_codec.encode(fok)))
    assert (core.tif, core.min_qty) == (1, 10)


@pytest.mark.parametrize("kwargs, words", [
    ({"side": "X"}, "side"), ({"ord_type": "stop"}, "ord_type"), ({"tif": "GTC"}, "tif"),
    ({"ord_type": "market"}, "no price"), ({"price": None}, "needs a price"),
    ({"tif": "FOK", "min_qty": 2}, "FOK"),
])
def test_enter_order_refuses_what_ouch_cannot_say(kwargs, words):
    args = {"token": "T", "symbol": "ACME", "side": "B", "qty": 1, "price": 100, **kwargs}
    with pytest.raises(ValueError, match=words):
        ouch_map.enter_order(**args)


def test_outbound_messages_become_replay_format_outputs():
    acc = output_from_ouch(OrderAccepted(1, "T1", b"T", 10, "ACME", MARKET_PRICE, 0, "", b"Y",
                                         7, b"A", b"N", 0, b"N", b"D"), "A1")
    assert acc == {"seq": None, "type": "accepted", "account": "A1", "token": "T1",
                   "symbol": "ACME", "side": "S", "qty": 10, "price": 0, "order_ref": 7}
    assert output_from_ouch(OrderExecuted(1, "T1", 4, 100, b"A", 9), "A1") == {
        "seq": None, "type": "executed", "account": "A1", "token": "T1", "qty": 4,
        "price": 100, "match_id": 9, "liquidity": "A"}
    assert output_from_ouch(OrderCanceled(1, "T1", 6, b"I"), "A1")["reason"] == "ioc"
    assert output_from_ouch(OrderCanceled(1, "T1", 6, b"S"), "A1")["reason"] == "ouch_S"
    rep = output_from_ouch(OrderReplaced(1, "T2", b"B", 3, "ACME", 200, 99_999, "", b"Y", 8,
                                         b"A", b"N", 0, b"N", b"L", "T1"), "A1")
    assert (rep["type"], rep["token"], rep["old_token"], rep["order_ref"]) == (
        "replaced", "T2", "T1", 8)
    assert output_from_ouch(OrderRejected(1, "T3", b"X"), "A1")["reason"] == "bad_price"
    assert output_from_ouch(OrderRejected(1, "T3", b"O"), "A1")["reason"] == "ouch_O"
    assert output_from_ouch(CancelReject(1, "T3"), "A1") == {
        "seq": None, "type": "rejected", "account": "A1", "token": "T3",
        "reason": "cancel_reject"}
    assert output_from_ouch(SystemEvent(1, b"S"), "A1") is None


def _out(type_, token, reason=None):
    return {"type": type_, "token": token, "reason": reason}


def test_matcher_pairs_outcomes_with_waiting_requests():
    m = Matcher()
    m.add("new", "T1", "new T1")
    m.add("cancel", "T1", "cancel T1")
    m.add("replace", "T2", "replace T1->T2")
    m.add("cancel", "T5", "cancel T5")
    assert m.on_output(_out("executed", "T1")) is None  # fills answer nothing
    assert m.on_output(_out("canceled", "T1", "ioc")) is None  # nor IOC remainders
    assert m.on_output(_out("accepted", "T1")) == "new T1"
    assert m.on_output(_out("rejected", "T1", "cancel_reject")) == "cancel T1"
    assert m.on_output(_out("rejected", "T2", "unknown_order")) == "replace T1->T2"
    assert m.on_output(_out("rejected", "T5", "ouch_O")) == "cancel T5"  # the fallback
    assert len(m) == 0 and m.on_output(_out("accepted", "T1")) is None


def test_matcher_is_first_in_first_out_per_token():
    m = Matcher()
    m.add("new", "T1", "first")
    m.add("new", "T1", "second")
    assert m.on_output(_out("accepted", "T1")) == "first"
    assert m.remove_if(lambda h: True) == ["second"] and len(m) == 0
