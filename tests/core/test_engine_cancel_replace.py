"""The matching engine's rules for cancel and replace, one literal scenario each.

Expected outputs are written out in full so that any change of order, qty,
price, id or reason fails a test.
"""

from __future__ import annotations

import pytest

from reference_impl.core.messages import (
    MAX_QTY,
    U32_MAX,
    Accepted,
    Cancel,
    Canceled,
    Executed,
    Rejected,
    Replace,
    Replaced,
)
from reference_impl.core.rules import Instruments
from tests.core.engine_scenarios import (
    SYM,
    USER,
    B,
    P,
    R,
    Run,
    buy,
    ioc,
    sell,
)


@pytest.fixture
def run():
    return Run()


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
