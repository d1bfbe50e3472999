"""The matching engine's rules for new orders and their rejects, one literal scenario each.

Expected outputs are written out in full so that any change of order, qty,
price, id or reason fails a test. Cancel and replace are in
``test_engine_cancel_replace.py``, control messages, seqs and determinism in
``test_engine_stream.py``, invariants over random streams in
``test_engine_properties.py``, snapshot and restore in ``test_engine_snapshot.py``.
"""

from __future__ import annotations

import pytest

from reference_impl.core.messages import (
    MAX_PRICE,
    MAX_QTY,
    Accepted,
    Cancel,
    Canceled,
    Executed,
    NewOrder,
    OrdType,
    Rejected,
    Replace,
    Tif,
)
from reference_impl.core.rules import Instruments
from tests.core.engine_scenarios import (
    IOC,
    SYM,
    USER,
    B,
    P,
    R,
    Run,
    S,
    buy,
    ioc,
    market,
    sell,
)


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
