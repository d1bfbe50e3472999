"""Literal scenarios for the naive matching model (harness/model.py).

Each test spells out the exact outputs the issue's rules demand, so the model
is checked by reading, before it is used to judge the engine. Every scenario
runs twice: on the model alone, and with the reference engine in lockstep
(same input, identical outputs required).
"""

from __future__ import annotations

import functools

import pytest

from harness.model import Model, ModelGapError
from reference_impl.core.engine import Engine
from reference_impl.core.errors import SequenceGapError
from reference_impl.core.messages import (
    Accepted,
    Cancel,
    CancelReason,
    Canceled,
    Executed,
    Heartbeat,
    LeaderChange,
    NewOrder,
    OrdType,
    Rejected,
    RejectReason,
    Replace,
    Replaced,
    Sequenced,
    Side,
    SnapshotRequest,
    Tif,
)
from reference_impl.core.rules import Instruments  # only to configure the engine

B, S = Side.BUY, Side.SELL


@pytest.fixture(params=["model", "model+engine"])
def mk(request):
    """Driver factory: the model alone, or the model with the engine in lockstep."""
    return functools.partial(Driver, request.param == "model+engine")
USER, IOC = CancelReason.USER, CancelReason.IOC


class Driver:
    """Feeds a model (and, shadowing it, the engine) with consecutive seqs.

    With ``with_engine`` every literal scenario below also runs against the
    reference engine, which must give exactly the model's outputs.
    """

    def __init__(self, with_engine=False, tick_by_symbol=None):
        self.m = Model(tick_by_symbol)
        self.engine = None
        if with_engine:
            instruments = Instruments(tick_by_symbol) if tick_by_symbol is not None else None
            self.engine = Engine(instruments)
        self.seq = 0

    def send(self, account, body):
        self.seq += 1
        return self.apply(Sequenced(self.seq, 1000 + self.seq, 1, 0, self.seq, account, body))

    def apply(self, msg):
        out = self.m.apply(msg)
        if self.engine is not None:
            assert self.engine.apply(msg) == out
        return out

    def new(self, account, token, side, qty, price, symbol="AAPL", **kw):
        return self.send(account, NewOrder(token, symbol, side, qty, price, **kw))

    def market(self, account, token, side, qty, symbol="AAPL", **kw):
        return self.new(account, token, side, qty, 0, symbol, ord_type=OrdType.MARKET, **kw)

    def cancel(self, account, token, qty=0):
        return self.send(account, Cancel(token, qty))

    def replace(self, account, token, new_token, qty, price):
        return self.send(account, Replace(token, new_token, qty, price))


def test_rest_then_full_cross_at_resting_price(mk):
    d = mk()
    assert d.new("A", "s1", S, 100, 10_000) == [Accepted(1, "A", "s1", "AAPL", S, 100, 10_000, 1)]
    out = d.new("B", "b1", B, 100, 10_100)
    assert out == [
        Accepted(2, "B", "b1", "AAPL", B, 100, 10_100, 2),
        Executed(2, "A", "s1", 100, 10_000, 1, "A"),
        Executed(2, "B", "b1", 100, 10_000, 1, "R"),
    ]
    assert d.m.resting("AAPL") == []
    assert d.m.orders() == {("A", "s1"): (100, 100, 0, 0), ("B", "b1"): (100, 100, 0, 0)}


def test_price_then_time_priority_and_partial_rest(mk):
    d = mk()
    d.new("A", "a1", S, 10, 10_100)
    d.new("A", "a2", S, 10, 10_000)
    d.new("C", "c1", S, 10, 10_000)
    out = d.new("B", "b1", B, 25, 10_100)
    assert out[1:] == [
        Executed(4, "A", "a2", 10, 10_000, 1, "A"),
        Executed(4, "B", "b1", 10, 10_000, 1, "R"),
        Executed(4, "C", "c1", 10, 10_000, 2, "A"),
        Executed(4, "B", "b1", 10, 10_000, 2, "R"),
        Executed(4, "A", "a1", 5, 10_100, 3, "A"),
        Executed(4, "B", "b1", 5, 10_100, 3, "R"),
    ]
    assert d.m.resting("AAPL") == [(S, 10_100, 1, "A", "a1", 5)]
    out = d.new("B", "b2", B, 10, 10_000)
    assert out == [Accepted(5, "B", "b2", "AAPL", B, 10, 10_000, 5)]
    assert d.m.resting("AAPL") == [(B, 10_000, 5, "B", "b2", 10), (S, 10_100, 1, "A", "a1", 5)]


def test_sell_aggressor_takes_highest_bid_first(mk):
    d = mk()
    d.new("A", "b1", B, 5, 9_900)
    d.new("A", "b2", B, 5, 10_000)
    out = d.new("C", "s1", S, 7, 9_900)
    assert out[1:] == [
        Executed(3, "A", "b2", 5, 10_000, 1, "A"),
        Executed(3, "C", "s1", 5, 10_000, 1, "R"),
        Executed(3, "A", "b1", 2, 9_900, 2, "A"),
        Executed(3, "C", "s1", 2, 9_900, 2, "R"),
    ]


def test_market_and_ioc_remainders_are_canceled(mk):
    d = mk()
    d.new("A", "s1", S, 5, 10_000)
    out = d.market("B", "m1", B, 8)
    assert out == [
        Accepted(2, "B", "m1", "AAPL", B, 8, 0, 2),
        Executed(2, "A", "s1", 5, 10_000, 1, "A"),
        Executed(2, "B", "m1", 5, 10_000, 1, "R"),
        Canceled(2, "B", "m1", 3, IOC),
    ]
    out = d.new("B", "i1", B, 4, 10_000, tif=Tif.IOC)
    assert out == [Accepted(3, "B", "i1", "AAPL", B, 4, 10_000, 3), Canceled(3, "B", "i1", 4, IOC)]
    assert d.m.resting("AAPL") == []
    assert d.m.orders()[("B", "m1")] == (8, 5, 0, 3)


def test_market_day_order_never_rests(mk):
    d = mk()
    out = d.market("B", "m1", B, 8, tif=Tif.DAY)
    assert out == [Accepted(1, "B", "m1", "AAPL", B, 8, 0, 1), Canceled(1, "B", "m1", 8, IOC)]


def test_min_qty_all_or_nothing(mk):
    d = mk()
    d.new("A", "s1", S, 5, 10_000)
    d.new("A", "s2", S, 5, 10_200)  # beyond the limit below
    out = d.new("B", "i1", B, 10, 10_100, tif=Tif.IOC, min_qty=6)
    assert out == [Accepted(3, "B", "i1", "AAPL", B, 10, 10_100, 3), Canceled(3, "B", "i1", 10, IOC)]
    out = d.new("B", "i2", B, 10, 10_100, tif=Tif.IOC, min_qty=5)
    assert out == [
        Accepted(4, "B", "i2", "AAPL", B, 10, 10_100, 4),
        Executed(4, "A", "s1", 5, 10_000, 1, "A"),
        Executed(4, "B", "i2", 5, 10_000, 1, "R"),
        Canceled(4, "B", "i2", 5, IOC),
    ]


def test_fok_is_ioc_with_min_qty_equal_qty(mk):
    d = mk()
    d.new("A", "s1", S, 5, 10_000)
    out = d.new("B", "f1", B, 6, 10_000, tif=Tif.IOC, min_qty=6)
    assert out[-1] == Canceled(2, "B", "f1", 6, IOC)
    out = d.new("B", "f2", B, 5, 10_000, tif=Tif.IOC, min_qty=5)
    assert out[1:] == [Executed(3, "A", "s1", 5, 10_000, 1, "A"), Executed(3, "B", "f2", 5, 10_000, 1, "R")]


def test_self_trade_is_allowed(mk):
    d = mk()
    d.new("A", "s1", S, 5, 10_000)
    out = d.new("A", "b1", B, 5, 10_000)
    assert out[1:] == [Executed(2, "A", "s1", 5, 10_000, 1, "A"), Executed(2, "A", "b1", 5, 10_000, 1, "R")]


@pytest.mark.parametrize(
    "body, reason",
    [
        (NewOrder("t", "aapl", B, 1, 100), RejectReason.UNKNOWN_SYMBOL),
        (NewOrder("t", "TOOLONGSY", B, 1, 100), RejectReason.UNKNOWN_SYMBOL),
        (NewOrder("t", "", B, 1, 100), RejectReason.UNKNOWN_SYMBOL),
        (NewOrder("t", "AAPL", B, 1, 150), RejectReason.BAD_PRICE),
        (NewOrder("t", "AAPL", B, 1, 0), RejectReason.BAD_PRICE),
        (NewOrder("t", "AAPL", B, 1, 2_000_000_000), RejectReason.BAD_PRICE),
        (NewOrder("t", "AAPL", B, 0, 150), RejectReason.BAD_PRICE),  # price before qty
        (NewOrder("t", "AAPL", B, 0, 100), RejectReason.BAD_QTY),
        (NewOrder("t", "AAPL", B, 1_000_001, 100), RejectReason.BAD_QTY),
        (NewOrder("t", "AAPL", B, 5, 100, min_qty=2), RejectReason.MIN_QTY_NOT_IOC),
        (NewOrder("t", "AAPL", B, 5, 100, min_qty=9), RejectReason.MIN_QTY_NOT_IOC),
        (NewOrder("t", "AAPL", B, 5, 100, tif=Tif.IOC, min_qty=6), RejectReason.BAD_QTY),
        (NewOrder("t", "AAPL", B, 5, 100, tif=Tif.IOC, min_qty=-1), RejectReason.BAD_QTY),
        (NewOrder("t", "AAPL", B, 5, 100, tif=7), RejectReason.BAD_TIF),
        (NewOrder("t", "AAPL", B, 5, 100, tif=7, min_qty=1), RejectReason.MIN_QTY_NOT_IOC),
        (NewOrder("", "AAPL", B, 5, 100), RejectReason.BAD_TOKEN),
        (NewOrder("a b", "AAPL", B, 5, 100), RejectReason.BAD_TOKEN),
        (NewOrder("x" * 15, "AAPL", B, 5, 100), RejectReason.BAD_TOKEN),
        (NewOrder("é", "AAPL", B, 5, 100), RejectReason.BAD_TOKEN),
        (NewOrder("t", "AAPL", B, 5, 7, ord_type=OrdType.MARKET, tif=5), RejectReason.BAD_TIF),
    ],
)
def test_new_order_rejects(mk, body, reason):
    d = mk()
    assert d.send("A", body) == [Rejected(1, "A", body.token, reason)]
    assert d.m.orders() == {}


def test_instruments_ticks_and_unknown_symbols(mk):
    d = mk(tick_by_symbol={"AAPL": 500, "MSFT": 100})
    assert d.new("A", "t1", B, 1, 100, "GOOG") == [Rejected(1, "A", "t1", RejectReason.UNKNOWN_SYMBOL)]
    assert d.new("A", "t1", B, 1, 100, "AAPL") == [Rejected(2, "A", "t1", RejectReason.BAD_PRICE)]
    assert d.new("A", "t1", B, 1, 500, "AAPL")[0] == Accepted(3, "A", "t1", "AAPL", B, 1, 500, 1)
    assert d.replace("A", "t1", "t2", 1, 700) == [Rejected(4, "A", "t2", RejectReason.BAD_PRICE)]


def test_duplicate_token_scoped_per_account_and_rejects_do_not_use_tokens(mk):
    d = mk()
    assert d.new("A", "t1", B, 1, 150)[0].reason is RejectReason.BAD_PRICE
    assert isinstance(d.new("A", "t1", B, 1, 100)[0], Accepted)
    assert d.new("A", "t1", B, 1, 100) == [Rejected(3, "A", "t1", RejectReason.DUPLICATE_TOKEN)]
    assert isinstance(d.new("C", "t1", S, 1, 200)[0], Accepted)
    # a filled order's token stays used
    d.new("C", "s2", S, 1, 100)
    assert d.new("A", "t1", B, 1, 100)[0].reason is RejectReason.DUPLICATE_TOKEN


def test_cancel_full_reduce_and_zero(mk):
    d = mk()
    d.new("A", "s1", S, 10, 10_000)
    d.new("B", "b1", B, 3, 10_000)  # s1: filled 3, open 7
    assert d.cancel("A", "s1", 8) == [Canceled(3, "A", "s1", 2, USER)]  # open 5
    assert d.cancel("A", "s1", 100) == [Canceled(4, "A", "s1", 0, USER)]  # nothing to reduce
    assert d.cancel("A", "s1", 2) == [Canceled(5, "A", "s1", 5, USER)]  # size < executed
    assert d.cancel("A", "s1", 0) == [Rejected(6, "A", "s1", RejectReason.UNKNOWN_ORDER)]
    assert d.m.orders()[("A", "s1")] == (10, 3, 0, 7)


def test_reduce_keeps_priority(mk):
    d = mk()
    d.new("A", "s1", S, 10, 10_000)
    d.new("A", "s2", S, 10, 10_000)
    d.cancel("A", "s1", 4)
    out = d.new("B", "b1", B, 5, 10_000)
    assert out[1:3] == [Executed(4, "A", "s1", 4, 10_000, 1, "A"), Executed(4, "B", "b1", 4, 10_000, 1, "R")]
    assert out[3] == Executed(4, "A", "s2", 1, 10_000, 2, "A")


def test_cancel_rejects_in_order(mk):
    d = mk()
    assert d.cancel("A", "a b", -1) == [Rejected(1, "A", "a b", RejectReason.BAD_TOKEN)]
    assert d.cancel("A", "t", -1) == [Rejected(2, "A", "t", RejectReason.BAD_QTY)]
    assert d.cancel("A", "t", 2**32) == [Rejected(3, "A", "t", RejectReason.BAD_QTY)]
    assert d.cancel("A", "t", 2**32 - 1) == [Rejected(4, "A", "t", RejectReason.UNKNOWN_ORDER)]
    d.new("C", "t", B, 1, 100)
    assert d.cancel("A", "t") == [Rejected(6, "A", "t", RejectReason.UNKNOWN_ORDER)]  # other account


def test_replace_loses_priority_and_may_match(mk):
    d = mk()
    d.new("A", "s1", S, 10, 10_100)
    d.new("A", "s2", S, 10, 10_100)
    d.new("B", "b1", B, 5, 10_000)
    assert d.replace("A", "s1", "s1b", 10, 10_100) == [Replaced(4, "A", "s1b", "s1", 10, 10_100, 4)]
    assert [r[4] for r in d.m.resting("AAPL") if r[0] is S] == ["s2", "s1b"]
    out = d.replace("A", "s2", "s2b", 7, 10_000)
    assert out == [
        Replaced(5, "A", "s2b", "s2", 7, 10_000, 5),
        Executed(5, "B", "b1", 5, 10_000, 1, "A"),
        Executed(5, "A", "s2b", 5, 10_000, 1, "R"),
    ]
    assert d.m.orders()[("A", "s2")] == (10, 0, 0, 10)
    assert d.m.orders()[("A", "s2b")] == (7, 5, 2, 0)
    assert d.cancel("A", "s2") == [Rejected(6, "A", "s2", RejectReason.UNKNOWN_ORDER)]


def test_replace_of_partly_filled_order_accounts_for_remainder(mk):
    d = mk()
    d.new("A", "s1", S, 10, 10_000)
    d.new("B", "b1", B, 4, 10_000)
    out = d.replace("A", "s1", "s1b", 3, 10_100)
    assert out == [Replaced(3, "A", "s1b", "s1", 3, 10_100, 3)]
    assert d.m.orders()[("A", "s1")] == (10, 4, 0, 6)


def test_replace_rejects_in_order(mk):
    d = mk()
    d.new("A", "s1", S, 10, 10_000)
    assert d.replace("A", "nope", "n", 0, 1) == [Rejected(2, "A", "n", RejectReason.UNKNOWN_ORDER)]
    assert d.replace("A", "s1", "n", 0, 150) == [Rejected(3, "A", "n", RejectReason.BAD_PRICE)]
    assert d.replace("A", "s1", "a b", 0, 100) == [Rejected(4, "A", "a b", RejectReason.BAD_QTY)]
    assert d.replace("A", "s1", "a b", 1, 100) == [Rejected(5, "A", "a b", RejectReason.BAD_TOKEN)]
    assert d.replace("A", "s1", "s1", 1, 100) == [Rejected(6, "A", "s1", RejectReason.DUPLICATE_TOKEN)]
    assert d.m.orders()[("A", "s1")] == (10, 0, 10, 0)
    assert d.replace("C", "s1", "x", 1, 100) == [Rejected(7, "C", "x", RejectReason.UNKNOWN_ORDER)]


def test_filled_order_is_unknown_to_replace(mk):
    d = mk()
    d.new("A", "s1", S, 1, 10_000)
    d.new("B", "b1", B, 1, 10_000)
    assert d.replace("A", "s1", "s2", 1, 100) == [Rejected(3, "A", "s2", RejectReason.UNKNOWN_ORDER)]


def test_control_messages_and_idempotence(mk):
    d = mk()
    assert d.send("", LeaderChange(2, 1)) == []
    assert d.send("", SnapshotRequest(7)) == []
    assert d.send("", Heartbeat()) == []
    out = d.new("A", "s1", S, 1, 10_000)
    assert d.m.last_applied_seq == 4
    again = Sequenced(4, 0, 1, 0, 4, "A", NewOrder("s1", "AAPL", S, 1, 10_000))
    assert d.apply(again) == []
    assert out[0].order_ref == 1
    gap = Sequenced(6, 0, 1, 0, 6, "A", Heartbeat())
    with pytest.raises(ModelGapError):
        d.m.apply(gap)
    if d.engine is not None:
        with pytest.raises(SequenceGapError):
            d.engine.apply(gap)
