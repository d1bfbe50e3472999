"""The matching engine's rules, one literal scenario each, plus determinism and snapshots.

Expected outputs are written out in full so that any change of order, qty,
price, id or reason fails a test. Invariants over random streams are in
``test_engine_properties.py``, snapshot and restore in ``test_engine_snapshot.py``.
"""

from __future__ import annotations

import random

import pytest

from reference_impl.core.engine import Engine
from reference_impl.core.errors import SequenceGapError
from reference_impl.core.messages import (
    MAX_PRICE,
    MAX_QTY,
    U32_MAX,
    Accepted,
    Cancel,
    Canceled,
    CancelReason,
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
from reference_impl.core.rules import Instruments

B, S = Side.BUY, Side.SELL
IOC, USER = CancelReason.IOC, CancelReason.USER
R = RejectReason
SYM = "ACME"
P = 1_000_000  # 100.0000


def buy(token, qty, price, **kw):
    return NewOrder(token, kw.pop("symbol", SYM), B, qty, price, **kw)


def sell(token, qty, price, **kw):
    return NewOrder(token, kw.pop("symbol", SYM), S, qty, price, **kw)


def market(token, side, qty, **kw):
    return NewOrder(token, SYM, side, qty, 0, OrdType.MARKET, Tif.IOC, **kw)


def ioc(token, side, qty, price, min_qty=0):
    return NewOrder(token, SYM, side, qty, price, OrdType.LIMIT, Tif.IOC, min_qty)


def msg(seq, account, body):
    return Sequenced(seq, 1_700_000_000_000_000_000 + seq, 1, 1, seq, account, body)


class Run:
    """Feeds bodies with consecutive seqs; ``run(account, body)`` returns that message's outputs."""

    def __init__(self, instruments=None):
        self.engine = Engine(instruments)
        self.seq = 0

    def __call__(self, account, body):
        self.seq += 1
        return self.engine.apply(msg(self.seq, account, body))


@pytest.fixture
def run():
    return Run()


# ------------------------------------------------------------- new orders


def test_limit_order_rests_and_is_accepted(run):
    assert run("A", buy("b1", 100, P)) == [Accepted(1, "A", "b1", SYM, B, 100, P, 1)]
    assert run.engine.book(SYM).levels(True) == [(P, [run.engine.live_order("A", "b1")])]
    assert run.engine.live_order("A", "b1").open == 100


def test_price_time_priority_and_execution_at_resting_price(run):
    run("A", sell("s1", 10, P + 200))
    run("A", sell("s2", 10, P + 100))
    run("C", sell("s3", 10, P + 100))
    run("A", sell("s4", 10, P))
    out = run("B", buy("b1", 35, P + 300))
    assert out == [
        Accepted(5, "B", "b1", SYM, B, 35, P + 300, 5),
        Executed(5, "A", "s4", 10, P, 1, "A"),
        Executed(5, "B", "b1", 10, P, 1, "R"),
        Executed(5, "A", "s2", 10, P + 100, 2, "A"),
        Executed(5, "B", "b1", 10, P + 100, 2, "R"),
        Executed(5, "C", "s3", 10, P + 100, 3, "A"),
        Executed(5, "B", "b1", 10, P + 100, 3, "R"),
        Executed(5, "A", "s1", 5, P + 200, 4, "A"),
        Executed(5, "B", "b1", 5, P + 200, 4, "R"),
    ]
    assert run.engine.live_order("A", "s1").open == 5
    assert run.engine.live_order("B", "b1") is None


def test_sell_aggressor_takes_highest_bid_first(run):
    run("A", buy("b1", 10, P - 100))
    run("A", buy("b2", 10, P))
    assert run("B", sell("s1", 15, P - 100)) == [
        Accepted(3, "B", "s1", SYM, S, 15, P - 100, 3),
        Executed(3, "A", "b2", 10, P, 1, "A"),
        Executed(3, "B", "s1", 10, P, 1, "R"),
        Executed(3, "A", "b1", 5, P - 100, 2, "A"),
        Executed(3, "B", "s1", 5, P - 100, 2, "R"),
    ]


def test_partial_fill_of_aggressor_rests_remainder(run):
    run("A", sell("s1", 30, P))
    assert run("B", buy("b1", 100, P + 100)) == [
        Accepted(2, "B", "b1", SYM, B, 100, P + 100, 2),
        Executed(2, "A", "s1", 30, P, 1, "A"),
        Executed(2, "B", "b1", 30, P, 1, "R"),
    ]
    book = run.engine.book(SYM)
    assert book.best_bid() == P + 100 and book.best_ask() is None
    assert run.engine.live_order("B", "b1").open == 70


def test_partially_filled_resting_order_keeps_its_place(run):
    run("A", sell("s1", 50, P))
    run("A", sell("s2", 50, P))
    run("B", buy("b1", 20, P))
    assert run("B", buy("b2", 40, P)) == [
        Accepted(4, "B", "b2", SYM, B, 40, P, 4),
        Executed(4, "A", "s1", 30, P, 2, "A"),
        Executed(4, "B", "b2", 30, P, 2, "R"),
        Executed(4, "A", "s2", 10, P, 3, "A"),
        Executed(4, "B", "b2", 10, P, 3, "R"),
    ]


def test_non_crossing_limit_does_not_trade(run):
    run("A", sell("s1", 10, P + 100))
    assert run("B", buy("b1", 10, P)) == [Accepted(2, "B", "b1", SYM, B, 10, P, 2)]
    book = run.engine.book(SYM)
    assert (book.best_bid(), book.best_ask()) == (P, P + 100)


def test_market_order_sweeps_levels_and_cancels_remainder(run):
    run("A", sell("s1", 10, P))
    run("A", sell("s2", 10, P + 100))
    run("A", sell("s3", 10, P + 5000))
    assert run("B", market("m1", B, 40)) == [
        Accepted(4, "B", "m1", SYM, B, 40, 0, 4),
        Executed(4, "A", "s1", 10, P, 1, "A"),
        Executed(4, "B", "m1", 10, P, 1, "R"),
        Executed(4, "A", "s2", 10, P + 100, 2, "A"),
        Executed(4, "B", "m1", 10, P + 100, 2, "R"),
        Executed(4, "A", "s3", 10, P + 5000, 3, "A"),
        Executed(4, "B", "m1", 10, P + 5000, 3, "R"),
        Canceled(4, "B", "m1", 10, IOC),
    ]
    assert run.engine.book(SYM).is_empty()
    assert run.engine.live_order("B", "m1") is None


def test_market_order_on_empty_book_and_market_day_never_rests(run):
    assert run("B", market("m1", S, 5)) == [
        Accepted(1, "B", "m1", SYM, S, 5, 0, 1), Canceled(1, "B", "m1", 5, IOC)]
    day_market = NewOrder("m2", SYM, B, 7, 0, OrdType.MARKET, Tif.DAY)
    assert run("B", day_market) == [
        Accepted(2, "B", "m2", SYM, B, 7, 0, 2), Canceled(2, "B", "m2", 7, IOC)]
    assert run.engine.book(SYM).is_empty()


def test_ioc_fills_what_it_can_and_never_rests(run):
    run("A", sell("s1", 10, P))
    run("A", sell("s2", 10, P + 200))
    assert run("B", ioc("i1", B, 25, P + 100)) == [
        Accepted(3, "B", "i1", SYM, B, 25, P + 100, 3),
        Executed(3, "A", "s1", 10, P, 1, "A"),
        Executed(3, "B", "i1", 10, P, 1, "R"),
        Canceled(3, "B", "i1", 15, IOC),
    ]
    assert run("B", ioc("i2", S, 5, P + 300)) == [
        Accepted(4, "B", "i2", SYM, S, 5, P + 300, 4), Canceled(4, "B", "i2", 5, IOC)]
    assert run.engine.book(SYM).best_bid() is None


def test_fok_fills_all_or_nothing(run):
    run("A", sell("s1", 10, P))
    run("A", sell("s2", 10, P + 100))
    run("A", sell("s3", 10, P + 200))
    # only 20 within the limit: nothing fills, the book is untouched
    assert run("B", ioc("f1", B, 25, P + 100, min_qty=25)) == [
        Accepted(4, "B", "f1", SYM, B, 25, P + 100, 4), Canceled(4, "B", "f1", 25, IOC)]
    assert [(p, [o.open for o in os]) for p, os in run.engine.book(SYM).levels(False)] == [
        (P, [10]), (P + 100, [10]), (P + 200, [10])]
    assert run("B", ioc("f2", B, 25, P + 200, min_qty=25)) == [
        Accepted(5, "B", "f2", SYM, B, 25, P + 200, 5),
        Executed(5, "A", "s1", 10, P, 1, "A"),
        Executed(5, "B", "f2", 10, P, 1, "R"),
        Executed(5, "A", "s2", 10, P + 100, 2, "A"),
        Executed(5, "B", "f2", 10, P + 100, 2, "R"),
        Executed(5, "A", "s3", 5, P + 200, 3, "A"),
        Executed(5, "B", "f2", 5, P + 200, 3, "R"),
    ]


def test_fok_market_and_exact_fit(run):
    run("A", sell("s1", 10, P))
    assert run("B", market("f1", B, 11, min_qty=11)) == [
        Accepted(2, "B", "f1", SYM, B, 11, 0, 2), Canceled(2, "B", "f1", 11, IOC)]
    assert run("B", market("f2", B, 10, min_qty=10)) == [
        Accepted(3, "B", "f2", SYM, B, 10, 0, 3),
        Executed(3, "A", "s1", 10, P, 1, "A"),
        Executed(3, "B", "f2", 10, P, 1, "R"),
    ]


def test_min_qty_below_qty_fills_more_than_min_and_cancels_rest(run):
    run("A", sell("s1", 30, P))
    assert run("B", ioc("i1", B, 50, P, min_qty=20)) == [
        Accepted(2, "B", "i1", SYM, B, 50, P, 2),
        Executed(2, "A", "s1", 30, P, 1, "A"),
        Executed(2, "B", "i1", 30, P, 1, "R"),
        Canceled(2, "B", "i1", 20, IOC),
    ]


def test_min_qty_skips_canceled_quantity(run):
    run("A", sell("s1", 30, P))
    run("A", sell("s2", 30, P))
    run("A", Cancel("s1", 0))
    assert run("B", ioc("i1", B, 50, P, min_qty=40)) == [
        Accepted(4, "B", "i1", SYM, B, 50, P, 3), Canceled(4, "B", "i1", 50, IOC)]


def test_no_self_trade_prevention(run):
    run("A", sell("s1", 10, P))
    assert run("A", buy("b1", 10, P)) == [
        Accepted(2, "A", "b1", SYM, B, 10, P, 2),
        Executed(2, "A", "s1", 10, P, 1, "A"),
        Executed(2, "A", "b1", 10, P, 1, "R"),
    ]


def test_symbols_have_separate_books(run):
    run("A", sell("s1", 10, P, symbol="XYZ"))
    assert run("B", buy("b1", 10, P)) == [Accepted(2, "B", "b1", SYM, B, 10, P, 2)]
    assert run.engine.symbols() == ["ACME", "XYZ"]


# ------------------------------------------------------------------ rejects


@pytest.mark.parametrize(
    "body, reason",
    [
        (NewOrder("t1", "acme", B, 10, P), R.UNKNOWN_SYMBOL),
        (NewOrder("t1", "TOOLONGSYM", B, 10, P), R.UNKNOWN_SYMBOL),
        (NewOrder("t1", SYM, B, 10, P + 1), R.BAD_PRICE),
        (NewOrder("t1", SYM, B, 10, 0), R.BAD_PRICE),
        (NewOrder("t1", SYM, B, 10, MAX_PRICE + 100), R.BAD_PRICE),
        (NewOrder("t1", SYM, B, 0, P), R.BAD_QTY),
        (NewOrder("t1", SYM, B, MAX_QTY + 1, P), R.BAD_QTY),
        (NewOrder("t1", SYM, B, 10, P, OrdType.LIMIT, Tif.DAY, 5), R.MIN_QTY_NOT_IOC),
        (NewOrder("t1", SYM, B, 10, P, OrdType.LIMIT, Tif.IOC, 11), R.BAD_QTY),
        (NewOrder("t1", SYM, B, 10, P, OrdType.LIMIT, Tif.IOC, -1), R.BAD_QTY),
        (NewOrder("t1", SYM, B, 10, P, OrdType.LIMIT, 2), R.BAD_TIF),
        (NewOrder("", SYM, B, 10, P), R.BAD_TOKEN),
        (NewOrder("has space", SYM, B, 10, P), R.BAD_TOKEN),
        (NewOrder("x" * 15, SYM, B, 10, P), R.BAD_TOKEN),
        (NewOrder("caf\u00e9", SYM, B, 10, P), R.BAD_TOKEN),
        # the first failing check names the reason
        (NewOrder("", "acme", B, 0, 1), R.UNKNOWN_SYMBOL),
        (NewOrder("", SYM, B, 0, 1), R.BAD_PRICE),
        (NewOrder("", SYM, B, 0, P, OrdType.LIMIT, 7, 3), R.BAD_QTY),
        (NewOrder("", SYM, B, 10, P, OrdType.LIMIT, 7, 3), R.MIN_QTY_NOT_IOC),
        (NewOrder("", SYM, B, 10, P, OrdType.LIMIT, 7), R.BAD_TIF),
        (NewOrder("", SYM, B, 0, 0, OrdType.MARKET, Tif.IOC), R.BAD_QTY),
    ],
)
def test_new_order_rejects_in_documented_order(run, body, reason):
    run("A", buy("warm", 1, P - 100))  # the symbol's book exists: the fast path is taken
    assert run("A", body) == [Rejected(2, "A", body.token, reason)]
    assert run.engine.last_order_ref == 1


def test_unknown_symbol_under_instruments_and_its_tick():
    run = Run(Instruments({"ACME": 500}))
    assert run("A", NewOrder("t1", "OTHER", B, 10, P)) == [Rejected(1, "A", "t1", R.UNKNOWN_SYMBOL)]
    assert run("A", buy("t1", 10, P + 100)) == [Rejected(2, "A", "t1", R.BAD_PRICE)]
    assert run("A", buy("t1", 10, P + 500)) == [Accepted(3, "A", "t1", SYM, B, 10, P + 500, 1)]


def test_duplicate_token_even_after_the_order_is_gone(run):
    run("A", sell("s1", 10, P))
    assert run("A", sell("s1", 10, P)) == [Rejected(2, "A", "s1", R.DUPLICATE_TOKEN)]
    run("B", buy("b1", 10, P))  # fills s1
    assert run("A", sell("s1", 10, P)) == [Rejected(4, "A", "s1", R.DUPLICATE_TOKEN)]
    run("B", market("m1", B, 1))
    assert run("B", market("m1", B, 1)) == [Rejected(6, "B", "m1", R.DUPLICATE_TOKEN)]


def test_rejected_order_does_not_use_up_its_token(run):
    assert run("A", buy("t1", 0, P)) == [Rejected(1, "A", "t1", R.BAD_QTY)]
    assert run("A", buy("t1", 5, P)) == [Accepted(2, "A", "t1", SYM, B, 5, P, 1)]


def test_tokens_are_scoped_per_account(run):
    run("A", sell("t1", 10, P))
    assert run("B", sell("t1", 10, P)) == [Accepted(2, "B", "t1", SYM, S, 10, P, 2)]
    assert run("C", Cancel("t1", 0)) == [Rejected(3, "C", "t1", R.UNKNOWN_ORDER)]
    assert run("C", Replace("t1", "t2", 5, P)) == [Rejected(4, "C", "t2", R.UNKNOWN_ORDER)]
    assert run("B", Cancel("t1", 0)) == [Canceled(5, "B", "t1", 10, USER)]
    assert run.engine.live_order("A", "t1").open == 10


def test_malformed_side_is_an_exception_not_a_reject(run):
    with pytest.raises(ValueError):
        run("A", NewOrder("t1", SYM, "X", 10, P))
    assert run.engine.last_applied_seq == 0


# ------------------------------------------------------------------ cancel


def test_cancel_all(run):
    run("A", sell("s1", 10, P))
    assert run("A", Cancel("s1", 0)) == [Canceled(2, "A", "s1", 10, USER)]
    assert run.engine.book(SYM).is_empty()
    assert run("A", Cancel("s1", 0)) == [Rejected(3, "A", "s1", R.UNKNOWN_ORDER)]


def test_reduce_keeps_time_priority(run):
    run("A", sell("s1", 100, P))
    run("A", sell("s2", 100, P))
    assert run("A", Cancel("s1", 40)) == [Canceled(3, "A", "s1", 60, USER)]
    assert run("B", buy("b1", 50, P)) == [
        Accepted(4, "B", "b1", SYM, B, 50, P, 3),
        Executed(4, "A", "s1", 40, P, 1, "A"),
        Executed(4, "B", "b1", 40, P, 1, "R"),
        Executed(4, "A", "s2", 10, P, 2, "A"),
        Executed(4, "B", "b1", 10, P, 2, "R"),
    ]


def test_cancel_size_counts_what_was_executed(run):
    run("A", sell("s1", 100, P))
    run("B", buy("b1", 30, P))  # s1: executed 30, open 70
    assert run("A", Cancel("s1", 50)) == [Canceled(3, "A", "s1", 50, USER)]  # open 20
    order = run.engine.live_order("A", "s1")
    assert (order.open, order.canceled, order.filled) == (20, 50, 30)
    assert run("A", Cancel("s1", 10)) == [Canceled(4, "A", "s1", 20, USER)]  # below executed
    assert run.engine.live_order("A", "s1") is None


def test_cancel_that_reduces_nothing_reports_zero(run):
    run("A", sell("s1", 100, P))
    run("B", buy("b1", 30, P))
    assert run("A", Cancel("s1", 100)) == [Canceled(3, "A", "s1", 0, USER)]
    assert run("A", Cancel("s1", U32_MAX)) == [Canceled(4, "A", "s1", 0, USER)]
    assert run.engine.live_order("A", "s1").open == 70


def test_cancel_of_filled_or_replaced_order_is_unknown(run):
    run("A", sell("s1", 10, P))
    run("A", sell("s2", 10, P + 100))
    run("B", buy("b1", 10, P))
    assert run("A", Cancel("s1", 0)) == [Rejected(4, "A", "s1", R.UNKNOWN_ORDER)]
    run("A", Replace("s2", "s3", 10, P + 200))
    assert run("A", Cancel("s2", 0)) == [Rejected(6, "A", "s2", R.UNKNOWN_ORDER)]
    assert run("A", Cancel("nope", 0)) == [Rejected(7, "A", "nope", R.UNKNOWN_ORDER)]


def test_cancel_check_order(run):
    run("A", sell("s1", 10, P))
    assert run("A", Cancel("bad token", -1)) == [Rejected(2, "A", "bad token", R.BAD_TOKEN)]
    assert run("A", Cancel("nope", -1)) == [Rejected(3, "A", "nope", R.BAD_QTY)]
    assert run("A", Cancel("s1", U32_MAX + 1)) == [Rejected(4, "A", "s1", R.BAD_QTY)]
    assert run("A", Cancel("s1", True)) == [Rejected(5, "A", "s1", R.BAD_QTY)]
    assert run.engine.live_order("A", "s1").open == 10


# ----------------------------------------------------------------- replace


def test_replace_loses_priority(run):
    run("A", sell("s1", 10, P))
    run("A", sell("s2", 10, P))
    assert run("A", Replace("s1", "s1b", 10, P)) == [Replaced(3, "A", "s1b", "s1", 10, P, 3)]
    assert run("B", buy("b1", 15, P)) == [
        Accepted(4, "B", "b1", SYM, B, 15, P, 4),
        Executed(4, "A", "s2", 10, P, 1, "A"),
        Executed(4, "B", "b1", 10, P, 1, "R"),
        Executed(4, "A", "s1b", 5, P, 2, "A"),
        Executed(4, "B", "b1", 5, P, 2, "R"),
    ]


def test_replace_qty_is_new_open_qty_and_old_order_goes_silently(run):
    run("A", sell("s1", 100, P))
    run("B", buy("b1", 60, P))
    assert run("A", Replace("s1", "s2", 80, P + 100)) == [Replaced(3, "A", "s2", "s1", 80, P + 100, 3)]
    assert run.engine.live_order("A", "s1") is None
    new = run.engine.live_order("A", "s2")
    assert (new.qty, new.open, new.filled) == (80, 80, 0)
    assert run.engine.book(SYM).levels(False) == [(P + 100, [new])]


def test_replace_may_match_at_once_and_rests_as_day_limit(run):
    run("A", buy("b1", 10, P - 100))
    run("B", sell("s1", 30, P + 100))
    assert run("B", Replace("s1", "s2", 30, P - 100)) == [
        Replaced(3, "B", "s2", "s1", 30, P - 100, 3),
        Executed(3, "A", "b1", 10, P - 100, 1, "A"),
        Executed(3, "B", "s2", 10, P - 100, 1, "R"),
    ]
    assert run.engine.live_order("B", "s2").open == 20
    assert run.engine.book(SYM).best_ask() == P - 100


def test_replace_of_partially_filled_ioc_origin_is_unknown(run):
    run("A", sell("s1", 5, P))
    run("B", ioc("i1", B, 10, P))
    assert run("B", Replace("i1", "i2", 10, P)) == [Rejected(3, "B", "i2", R.UNKNOWN_ORDER)]


def test_replace_check_order():
    run = Run(Instruments({"ACME": 100, "WIDE": 500}))
    run("A", sell("s1", 10, P))
    run("A", sell("w1", 10, P + 500, symbol="WIDE"))
    rep = Replace
    assert run("A", rep("nope", "bad tok", 0, 1)) == [Rejected(3, "A", "bad tok", R.UNKNOWN_ORDER)]
    assert run("A", rep("w1", "bad tok", 0, P + 100)) == [Rejected(4, "A", "bad tok", R.BAD_PRICE)]
    assert run("A", rep("s1", "bad tok", 0, 0)) == [Rejected(5, "A", "bad tok", R.BAD_PRICE)]
    assert run("A", rep("s1", "bad tok", 0, P)) == [Rejected(6, "A", "bad tok", R.BAD_QTY)]
    assert run("A", rep("s1", "bad tok", MAX_QTY + 1, P)) == [Rejected(7, "A", "bad tok", R.BAD_QTY)]
    assert run("A", rep("s1", "bad tok", 5, P)) == [Rejected(8, "A", "bad tok", R.BAD_TOKEN)]
    assert run("A", rep("s1", "s1", 5, P)) == [Rejected(9, "A", "s1", R.DUPLICATE_TOKEN)]
    assert run("A", rep("s1", "w1", 5, P)) == [Rejected(10, "A", "w1", R.DUPLICATE_TOKEN)]
    assert run.engine.live_order("A", "s1").open == 10
    assert run("A", rep("w1", "w2", 5, P + 1000)) == [Replaced(11, "A", "w2", "w1", 5, P + 1000, 3)]


def test_rejected_replace_does_not_use_up_new_token(run):
    run("A", sell("s1", 10, P))
    assert run("A", Replace("s1", "s2", 0, P)) == [Rejected(2, "A", "s2", R.BAD_QTY)]
    assert run("A", Replace("s1", "s2", 5, P)) == [Replaced(3, "A", "s2", "s1", 5, P, 2)]


# ----------------------------------------------------------- control, seqs


def test_control_messages_produce_nothing_but_advance_seq(run):
    assert run("", LeaderChange(3, 2)) == []
    assert run("", SnapshotRequest(7)) == []
    assert run("", Heartbeat()) == []
    assert (run.engine.epoch, run.engine.last_applied_seq) == (3, 3)


def test_reapplied_seq_is_a_no_op(run):
    first = msg(1, "A", sell("s1", 10, P))
    run.engine.apply(first)
    before = run.engine.state_hash()
    assert run.engine.apply(first) == []
    assert run.engine.apply(msg(1, "A", buy("b1", 10, P))) == []
    assert run.engine.apply(msg(0, "A", buy("b1", 10, P))) == []
    assert run.engine.state_hash() == before
    assert run.engine.last_applied_seq == 1


def test_gap_raises_and_changes_nothing(run):
    run("A", sell("s1", 10, P))
    before = run.engine.state_hash()
    with pytest.raises(SequenceGapError) as err:
        run.engine.apply(msg(3, "A", buy("b1", 10, P)))
    assert (err.value.expected, err.value.got) == (2, 3)
    assert run.engine.state_hash() == before


def test_not_a_body_is_a_type_error(run):
    with pytest.raises(TypeError):
        run.engine.apply(msg(1, "A", object()))


def test_counters_start_at_one_and_replace_takes_an_order_ref(run):
    run("A", sell("s1", 10, P))
    run("A", Replace("s1", "s2", 10, P))
    run("A", buy("x", 0, P))  # rejected: no order_ref
    out = run("B", buy("b1", 10, P))
    assert out[0].order_ref == 3 and out[1].match_id == 1
    assert (run.engine.last_order_ref, run.engine.last_match_id) == (3, 1)


# ------------------------------------------------------------- determinism


def random_stream(seed: int, count: int) -> list[Sequenced]:
    """A mixed stream with collisions, rejects and every body type."""
    rng = random.Random(seed)
    accounts = ["A", "B", "C"]
    symbols = ["ACME", "XYZ", "acme"]
    msgs = []
    for seq in range(1, count + 1):
        account = rng.choice(accounts)
        token = f"t{rng.randrange(60)}"
        kind = rng.random()
        side = rng.choice([B, S])
        price = P + 100 * rng.randint(-5, 5) + (1 if rng.random() < 0.03 else 0)
        qty = rng.choice([0, 1, 5, 10, 25, 50, 100])
        if kind < 0.45:
            body = NewOrder(token, rng.choice(symbols), side, qty, price)
        elif kind < 0.55:
            body = NewOrder(token, "ACME", side, qty, price, OrdType.LIMIT, Tif.IOC,
                            rng.choice([0, 0, qty, 1, qty + 1]))
        elif kind < 0.6:
            body = NewOrder(token, "ACME", side, qty, 0, OrdType.MARKET, Tif.IOC)
        elif kind < 0.8:
            body = Cancel(token, rng.choice([0, 0, 5, 30, 200]))
        elif kind < 0.95:
            body = Replace(token, f"t{rng.randrange(60)}", qty, price)
        elif kind < 0.97:
            body = LeaderChange(seq, 1)
        else:
            body = Heartbeat()
        msgs.append(msg(seq, account, body))
    return msgs


def apply_all(engine, msgs):
    return [engine.apply(m) for m in msgs]


def test_same_input_twice_gives_identical_outputs_and_hashes():
    stream = random_stream(7, 3000)
    a, b = Engine(), Engine()
    out_a, out_b = apply_all(a, stream), apply_all(b, stream)
    assert out_a == out_b
    assert repr(out_a) == repr(out_b)
    assert a.state_hash() == b.state_hash()
    assert a.snapshot() == b.snapshot()
    assert sum(1 for outs in out_a for o in outs if isinstance(o, Executed)) > 100


def test_different_input_gives_different_hash():
    a, b = Engine(), Engine()
    apply_all(a, random_stream(7, 500))
    apply_all(b, random_stream(8, 500))
    assert a.state_hash() != b.state_hash()


def test_hash_covers_counters_epoch_and_tokens(run):
    hashes = {run.engine.state_hash()}
    run("A", buy("b1", 0, P))  # rejected: only last_applied_seq moves
    hashes.add(run.engine.state_hash())
    run("A", market("m1", B, 5))  # accepted then canceled: order_ref and a used token
    hashes.add(run.engine.state_hash())
    run("", LeaderChange(2, 1))
    hashes.add(run.engine.state_hash())
    assert len(hashes) == 4
    other = Run()
    for m in [("A", buy("b1", 0, P)), ("A", market("m1", B, 5)), ("", LeaderChange(3, 1))]:
        other(*m)
    assert other.engine.state_hash() != run.engine.state_hash()  # the epoch alone differs
