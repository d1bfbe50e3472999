"""One symbol's book on its own: levels, priority keys, matching, lazy removal."""

from __future__ import annotations

from reference_impl.core.book import MARKET_KEY, Book, remove
from reference_impl.core.messages import Executed

P = 1_000_000


def make():
    live: dict = {}
    return Book("ACME", 100, live), live


def rest(book, live, account, token, is_buy, price, qty, ref):
    order = book.rest(account, token, is_buy, price, qty, qty, ref)
    live.setdefault(account, {})[token] = order
    return order


def shape(book, is_buy):
    return [(p, [(o.token, o.open) for o in orders]) for p, orders in book.levels(is_buy)]


def test_levels_are_best_first_and_orders_in_time_priority():
    book, reg = make()
    rest(book, reg, "A", "b1", True, P - 200, 5, 1)
    rest(book, reg, "A", "b2", True, P, 5, 2)
    rest(book, reg, "A", "b3", True, P, 6, 3)
    rest(book, reg, "A", "s1", False, P + 300, 7, 4)
    rest(book, reg, "A", "s2", False, P + 100, 8, 5)
    assert shape(book, True) == [(P, [("b2", 5), ("b3", 6)]), (P - 200, [("b1", 5)])]
    assert shape(book, False) == [(P + 100, [("s2", 8)]), (P + 300, [("s1", 7)])]
    assert (book.best_bid(), book.best_ask()) == (P, P + 100)
    assert book.bids.keys == [P - 200, P] and book.asks.keys == [-(P + 300), -(P + 100)]


def test_match_pairs_resting_then_aggressor_and_drops_filled_orders_from_the_open_ones():
    book, reg = make()
    rest(book, reg, "A", "s1", False, P, 5, 1)
    rest(book, reg, "C", "s2", False, P + 100, 5, 2)
    out: list = []
    remaining, last = book.match(True, -(P + 100), 7, "B", "b1", 9, out, 40)
    assert (remaining, last) == (0, 42)
    assert out == [
        Executed(9, "A", "s1", 5, P, 41, "A"),
        Executed(9, "B", "b1", 5, P, 41, "R"),
        Executed(9, "C", "s2", 2, P + 100, 42, "A"),
        Executed(9, "B", "b1", 2, P + 100, 42, "R"),
    ]
    assert "s1" not in reg["A"] and reg["C"]["s2"].open == 3
    assert shape(book, False) == [(P + 100, [("s2", 3)])]


def test_match_stops_at_the_limit_and_market_key_crosses_everything():
    book, reg = make()
    rest(book, reg, "A", "b1", True, P, 5, 1)
    rest(book, reg, "A", "b2", True, 100, 5, 2)
    out: list = []
    assert book.match(False, P + 100, 20, "B", "s1", 1, out, 0) == (20, 0)
    assert out == []
    assert book.match(False, P, 20, "B", "s1", 1, out, 0) == (15, 1)
    assert book.match(False, MARKET_KEY, 20, "B", "s2", 2, out, 1) == (15, 2)
    assert book.is_empty()


def test_remove_is_lazy_and_drops_an_emptied_level():
    book, reg = make()
    a = rest(book, reg, "A", "a", False, P, 5, 1)
    b = rest(book, reg, "A", "b", False, P, 5, 2)
    remove(a)
    level = book.asks.levels[-P]
    assert len(level) == 2 and level.live == 1  # dead entry kept until it reaches the front
    assert shape(book, False) == [(P, [("b", 5)])]
    out: list = []
    assert book.match(True, -P, 5, "B", "x", 1, out, 0) == (0, 1)
    assert out[0].token == "b"
    assert book.is_empty() and book.asks.levels == {}
    c = rest(book, reg, "A", "c", False, P + 100, 5, 3)
    remove(c)
    assert book.is_empty() and book.asks.keys == []
    assert b.open == 0


def test_dead_entries_are_compacted():
    book, reg = make()
    orders = [rest(book, reg, "A", f"o{i}", True, P, 1, i + 1) for i in range(200)]
    for o in orders[:-1]:
        remove(o)
    level = book.bids.levels[P]
    assert level.live == 1 and len(level) <= 2 * 1 + 16 + 1
    assert shape(book, True) == [(P, [("o199", 1)])]


def test_can_fill_counts_only_crossing_open_quantity():
    book, reg = make()
    dead = rest(book, reg, "A", "s0", False, P, 50, 1)
    rest(book, reg, "A", "s1", False, P, 5, 2)
    rest(book, reg, "A", "s2", False, P + 100, 5, 3)
    remove(dead)
    assert book.can_fill(True, -P, 5)
    assert not book.can_fill(True, -P, 6)
    assert book.can_fill(True, -(P + 100), 10)
    assert not book.can_fill(True, MARKET_KEY, 11)
    assert not book.can_fill(False, MARKET_KEY, 1)  # no bids
