"""Place, cancel and replace through both doors of a real cluster; two accounts trade.

Issue 3, Tests, first bullet, in both transport modes. The HTTP door's
passive side watches its SSE stream; the OUCH door's passive side is a
second SoupBinTCP session. Both doors share one account journal, so the SSE
stream of an OUCH account replays what its SoupBinTCP session received.
"""

from __future__ import annotations

import pytest

from reference_impl.core import soupbin_codec as sb
from reference_impl.core.ouch_messages import (
    CancelOrder,
    CancelReject,
    EnterOrder,
    OrderAccepted,
    OrderCanceled,
    OrderExecuted,
    OrderReplaced,
    ReplaceOrder,
)

TRANSPORTS = ["unicast", "multicast"]


def outputs(result) -> list[dict]:
    assert result.status == 200, (result.status, result.body)
    return result.body["outputs"]


def strip_seq(objs: list[dict]) -> list[dict]:
    return [{k: v for k, v in o.items() if k not in ("seq", "order_ref", "match_id")} for o in objs]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_http_place_cancel_replace_and_sse_passive_fills(cluster, transport):
    p = cluster(transport=transport)
    seller, buyer = p.http("DEMO2"), p.http("DEMO1")
    events = p.sse("DEMO2")
    try:
        # the passive side rests 100 @ 1.0000
        (acc,) = outputs(seller.order("s1", side="S", qty=100, price=10_000))
        assert strip_seq([acc]) == [{"type": "accepted", "account": "DEMO2", "token": "s1",
                                     "symbol": "ACME", "side": "S", "qty": 100, "price": 10_000}]
        assert acc["seq"] >= 1 and acc["order_ref"] >= 1

        # the aggressor takes 30: its own accepted and fill, and nothing of the other account
        got = outputs(buyer.order("b1", side="B", qty=30, price=10_000))
        assert strip_seq(got) == [
            {"type": "accepted", "account": "DEMO1", "token": "b1", "symbol": "ACME", "side": "B",
             "qty": 30, "price": 10_000},
            {"type": "executed", "account": "DEMO1", "token": "b1", "qty": 30, "price": 10_000,
             "liquidity": "R"}]
        match_id = got[1]["match_id"]

        # SSE: the seller's accepted, then its passive fill, same match, same input seq
        first = events.next()
        assert first.event == "accepted" and first.data == acc
        fill = events.next()
        assert (fill.id, fill.event) == (first.id + 1, "executed")
        assert fill.data == {"seq": got[1]["seq"], "type": "executed", "account": "DEMO2", "token": "s1",
                        "qty": 30, "price": 10_000, "match_id": match_id, "liquidity": "A"}

        # reduce: intended size 80 of which 30 executed -> 50 open, decrement 20
        (c,) = outputs(seller.cancel("s1", qty=80))
        assert strip_seq([c]) == [{"type": "canceled", "account": "DEMO2", "token": "s1",
                                   "qty": 20, "reason": "user"}]
        state = seller.request("GET", "/v1/orders/s1").body
        assert (state["state"], state["open_qty"], state["executed_qty"]) == ("open", 50, 30)

        # replace under a new token and price
        (r,) = outputs(seller.replace("s1", "s2", qty=40, price=10_100))
        assert strip_seq([r]) == [{"type": "replaced", "account": "DEMO2", "token": "s2",
                                   "old_token": "s1", "qty": 40, "price": 10_100}]
        assert seller.request("GET", "/v1/orders/s1").body["state"] == "replaced"

        # an IOC buy of 60 @ 1.0100: 40 fill against s2, the remaining 20 are canceled
        got = outputs(buyer.order("b2", side="B", qty=60, price=10_100, tif="IOC"))
        assert strip_seq(got) == [
            {"type": "accepted", "account": "DEMO1", "token": "b2", "symbol": "ACME", "side": "B",
             "qty": 60, "price": 10_100},
            {"type": "executed", "account": "DEMO1", "token": "b2", "qty": 40, "price": 10_100,
             "liquidity": "R"},
            {"type": "canceled", "account": "DEMO1", "token": "b2", "qty": 20, "reason": "ioc"}]
        kinds = [events.next() for _ in range(3)]
        assert [e.event for e in kinds] == ["canceled", "replaced", "executed"]
        assert kinds[2].data["token"] == "s2" and kinds[2].data["qty"] == 40
        assert kinds[2].data["liquidity"] == "A" and kinds[2].data["match_id"] == got[1]["match_id"]

        # the filled order is gone: a cancel is sequenced and rejected by the engine
        (rej,) = outputs(seller.cancel("s2"))
        assert strip_seq([rej]) == [{"type": "rejected", "account": "DEMO2", "token": "s2",
                                     "reason": "unknown_order"}]
        # a plain cancel of a resting order
        outputs(buyer.order("b3", side="B", qty=5, price=9_900))
        (c,) = outputs(buyer.cancel("b3"))
        assert (c["type"], c["qty"], c["reason"]) == ("canceled", 5, "user")

        filled = buyer.request("GET", "/v1/orders?state=filled").body["orders"]
        assert [o["token"] for o in filled] == ["b1"]
        assert seller.request("GET", "/v1/orders/s2").body["state"] == "filled"
        # the secondary applied exactly what the primary did
        head = p.digest("sequencer")["next_seq"] - 1
        ds = p.settled(head)
        assert ds[p.primary]["state_hash"] == ds[p.secondary]["state_hash"]
    finally:
        events.close()
        seller.close()
        buyer.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_ouch_place_cancel_replace_and_passive_fills(cluster, transport):
    p = cluster(transport=transport)
    seller, buyer = p.ouch("DEMO3"), p.ouch("DEMO4")
    try:
        login = seller.logged_in()
        assert login.sequence_number == 1
        buyer.logged_in()

        seller.send_ouch(EnterOrder("o3a", b"S", 100, "GLOBEX", 20_000))
        acc = seller.message()
        assert isinstance(acc, OrderAccepted)
        assert (acc.order_token, acc.side, acc.shares, acc.stock, acc.price, acc.order_state) == \
            ("o3a", b"S", 100, "GLOBEX", 20_000, b"L")

        buyer.send_ouch(EnterOrder("o4a", b"B", 30, "GLOBEX", 20_000))
        b_acc, b_fill = buyer.messages(2)
        assert isinstance(b_acc, OrderAccepted) and b_acc.order_token == "o4a"
        assert isinstance(b_fill, OrderExecuted)
        assert (b_fill.order_token, b_fill.executed_shares, b_fill.execution_price,
                b_fill.liquidity_flag) == ("o4a", 30, 20_000, b"R")
        s_fill = seller.message()  # the passive side's fill, on its own session
        assert isinstance(s_fill, OrderExecuted)
        assert (s_fill.order_token, s_fill.executed_shares, s_fill.liquidity_flag,
                s_fill.match_number) == ("o3a", 30, b"A", b_fill.match_number)

        seller.send_ouch(CancelOrder("o3a", 80))  # intended size 80, 30 executed -> 50 open
        c = seller.message()
        assert isinstance(c, OrderCanceled)
        assert (c.order_token, c.decrement_shares, c.reason) == ("o3a", 20, b"U")

        seller.send_ouch(ReplaceOrder("o3a", "o3b", 40, 20_100))
        r = seller.message()
        assert isinstance(r, OrderReplaced)
        assert (r.replacement_order_token, r.previous_order_token, r.shares, r.price, r.stock,
                r.side) == ("o3b", "o3a", 40, 20_100, "GLOBEX", b"S")

        buyer.send_ouch(EnterOrder("o4b", b"B", 60, "GLOBEX", 20_100, time_in_force=0))
        b_acc, b_fill, b_cxl = buyer.messages(3)
        assert isinstance(b_acc, OrderAccepted) and b_acc.order_state == b"D"
        assert isinstance(b_fill, OrderExecuted) and (b_fill.executed_shares,
                                                      b_fill.execution_price) == (40, 20_100)
        assert isinstance(b_cxl, OrderCanceled) and (b_cxl.decrement_shares, b_cxl.reason) == \
            (20, b"I")
        s_fill = seller.message()
        assert isinstance(s_fill, OrderExecuted)
        assert (s_fill.order_token, s_fill.executed_shares, s_fill.liquidity_flag) == \
            ("o3b", 40, b"A")

        seller.send_ouch(CancelOrder("o3b", 0))  # filled: the engine rejects the cancel
        assert isinstance(seller.message(), CancelReject)

        # across the doors: an HTTP seller fills an OUCH buyer
        http_seller = p.http("DEMO1")
        try:
            (rest,) = http_seller.order("x1", symbol="GLOBEX", side="S", qty=7,
                                        price=19_900).body["outputs"]
            assert rest["type"] == "accepted"
            buyer.send_ouch(EnterOrder("o4c", b"B", 7, "GLOBEX", 20_000))
            b_acc, b_fill = buyer.messages(2)
            assert (b_fill.executed_shares, b_fill.execution_price) == (7, 19_900)
            assert http_seller.request("GET", "/v1/orders/x1").body["state"] == "filled"
            assert http_seller.request("GET", "/v1/orders/o4c").status == 404  # not DEMO1's
        finally:
            http_seller.close()

        # one journal per account: SSE from the start replays the seller's OUCH stream
        events = p.sse("DEMO3", last_event_id=0)
        try:
            got = [(e.id, e.event) for e in (events.next() for _ in range(6))]
        finally:
            events.close()
        assert got == [(1, "accepted"), (2, "executed"), (3, "canceled"), (4, "replaced"),
                       (5, "executed"), (6, "rejected")]
        # and SoupBinTCP resumes by number: message 5 is the second passive fill
        seller.send(sb.LogoutRequest())
        seller.until_closed()
        again = p.ouch("DEMO3", session=login.session, seq=5)
        try:
            assert again.logged_in() == sb.LoginAccepted(login.session, 5)
            replayed = again.message()
            assert isinstance(replayed, OrderExecuted) and replayed.order_token == "o3b"
        finally:
            again.close()
    finally:
        seller.close()
        buyer.close()
