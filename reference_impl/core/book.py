"""One symbol's limit order book: price levels, time priority and matching.

Theory of operation
-------------------
A ``Book`` has two halves, bids and asks. Each half keys its price levels by a
*priority key* chosen so that the best level always has the largest key: a bid
at price p has key p, an ask at price p has key -p. ``Half.keys`` is the sorted
list of the keys of the non-empty levels (best last, so reading and dropping
the best level is ``keys[-1]`` / ``keys.pop()``) and ``Half.levels`` maps a key
to its ``Level``. ``keys`` and ``levels`` are exact at every step: a level is
dropped from both the moment its last live order goes.

An aggressor crosses a level of the opposite half when ``key >= limit_key``,
where ``limit_key`` is ``-price`` for a buy (against asks), ``price`` for a sell
(against bids) and ``MARKET_KEY`` (below every key) for a market order. Every
execution is at the resting level's price.

A ``Level`` is a deque of ``Order`` in time priority plus ``live``, the number
of its orders still open. Removal is lazy: a canceled or replaced order gets
``open = 0`` and stays in the deque until it reaches the front (matching pops
it) or the level is compacted (when dead entries outnumber live ones). Dead
entries never reach an output or the canonical encoding, which both look only
at orders with ``open > 0``; so the lazy part of the structure cannot make two
replicas differ. Reducing an order's size changes ``open`` in place and keeps
its place in the queue.

An order enters a level only when it is created (accepted or replaced), with a
fresh ``order_ref`` larger than every earlier one, so within a level time
priority is also ascending ``order_ref``; the snapshot decoder checks it.

The book updates the engine's open orders (account -> token -> Order) when
matching fills a resting order completely, so that they are exactly the
orders on the books. Nothing here iterates a hash-ordered container: levels
are visited through the sorted key list, orders through their deque.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque

from .messages import Executed

#: ``limit_key`` of a market order: below the key of any level.
MARKET_KEY = -(1 << 62)

_new = tuple.__new__
#: a level is compacted when its dead entries outnumber its live ones by this much
COMPACT_SLACK = 16


class Order:
    """A resting order. Engine-internal and mutable; filled = qty - open - canceled."""

    __slots__ = ("account", "token", "qty", "open", "canceled", "order_ref", "level")

    def __init__(self, account: str, token: str, qty: int, open_: int, order_ref: int,
                 level: Level) -> None:
        self.account = account
        self.token = token
        self.qty = qty  #: the quantity the order was created with
        self.open = open_  #: what can still execute; 0 once the order is gone
        self.canceled = 0  #: total removed by cancels and reduces
        self.order_ref = order_ref
        self.level = level  #: the level the order rests in (append it there)

    @property
    def filled(self) -> int:
        return self.qty - self.open - self.canceled

    def __repr__(self) -> str:
        return (f"Order({self.account!r}, {self.token!r}, qty={self.qty}, open={self.open}, "
                f"canceled={self.canceled}, ref={self.order_ref})")


class Level(deque):
    """Orders at one price in time priority (dead entries included, see module doc)."""

    __slots__ = ("live", "price", "key", "half")


class Half:
    """One side of a book: levels by priority key, keys sorted with the best last."""

    __slots__ = ("is_buy", "keys", "levels", "book")

    def __init__(self, is_buy: bool, book: Book) -> None:
        self.is_buy = is_buy
        self.keys: list[int] = []
        self.levels: dict[int, Level] = {}
        self.book = book

    def add_level(self, price: int) -> Level:
        """A new, empty level at ``price`` (which must not have one yet)."""
        key = price if self.is_buy else -price
        level = Level()
        level.live = 0
        level.price = price
        level.key = key
        level.half = self
        self.levels[key] = level
        insort(self.keys, key)
        return level

    def level_for(self, price: int) -> Level:
        """The level at ``price``, created if needed; append a new order there."""
        level = self.levels.get(price if self.is_buy else -price)
        return level if level is not None else self.add_level(price)


class Book:
    """Price-time priority book of one symbol."""

    __slots__ = ("symbol", "tick", "bids", "asks", "_live")

    def __init__(self, symbol: str, tick: int, live: dict[str, dict[str, Order]]) -> None:
        self.symbol = symbol
        self.tick = tick
        self.bids = Half(True, self)
        self.asks = Half(False, self)
        self._live = live

    # ------------------------------------------------------------ mutation

    def rest(self, account: str, token: str, is_buy: bool, price: int, qty: int, open_: int,
             order_ref: int) -> Order:
        """A new order with ``open_ > 0`` at the back of its price level."""
        level = (self.bids if is_buy else self.asks).level_for(price)
        order = Order(account, token, qty, open_, order_ref, level)
        level.append(order)
        level.live += 1
        return order

    def match(self, is_buy: bool, limit_key: int, remaining: int, account: str, token: str,
              seq: int, out: list, match_id: int) -> tuple[int, int]:
        """Match an aggressor against the opposite half; append Executed pairs to ``out``.

        Returns ``(unfilled quantity, last match_id used)``. Per match the
        resting side's Executed ("A") comes before the aggressor's ("R").
        """
        half = self.asks if is_buy else self.bids
        keys = half.keys
        if not keys or keys[-1] < limit_key:
            return remaining, match_id
        levels = half.levels
        open_orders = self._live
        append = out.append
        while True:
            key = keys[-1]
            level = levels[key]
            price = level.price
            while True:
                o = level[0]
                avail = o.open
                if not avail:  # a canceled or replaced order: drop it now
                    level.popleft()
                    continue
                match_id += 1
                if avail > remaining:
                    o.open = avail - remaining
                    append(_new(Executed, (seq, o.account, o.token, remaining, price, match_id, "A")))
                    append(_new(Executed, (seq, account, token, remaining, price, match_id, "R")))
                    return 0, match_id
                o.open = 0
                level.popleft()
                del open_orders[o.account][o.token]
                append(_new(Executed, (seq, o.account, o.token, avail, price, match_id, "A")))
                append(_new(Executed, (seq, account, token, avail, price, match_id, "R")))
                remaining -= avail
                live = level.live - 1
                if not live:
                    del levels[key]
                    keys.pop()
                    break
                level.live = live
                if not remaining:
                    return 0, match_id
            if not remaining or not keys or keys[-1] < limit_key:
                return remaining, match_id

    def can_fill(self, is_buy: bool, limit_key: int, need: int) -> bool:
        """Whether at least ``need`` can execute at once against the opposite half."""
        half = self.asks if is_buy else self.bids
        levels = half.levels
        for key in reversed(half.keys):
            if key < limit_key:
                return False
            for o in levels[key]:
                need -= o.open
                if need <= 0:
                    return True
        return False

    # ------------------------------------------------------------- queries

    def levels(self, is_buy: bool) -> list[tuple[int, list[Order]]]:
        """``[(price, live orders in time priority)]``, best level first."""
        half = self.bids if is_buy else self.asks
        levels = half.levels
        return [(levels[k].price, [o for o in levels[k] if o.open]) for k in reversed(half.keys)]

    def best_bid(self) -> int | None:
        keys = self.bids.keys
        return keys[-1] if keys else None

    def best_ask(self) -> int | None:
        keys = self.asks.keys
        return -keys[-1] if keys else None

    def is_empty(self) -> bool:
        return not self.bids.keys and not self.asks.keys


def remove(order: Order) -> None:
    """Take a live order off its book (lazily); the caller accounts for its quantity."""
    order.open = 0
    level = order.level
    live = level.live - 1
    if live:
        level.live = live
        if len(level) > (live << 1) + COMPACT_SLACK:
            alive = [o for o in level if o.open]
            level.clear()
            level.extend(alive)
        return
    half = level.half
    key = level.key
    del half.levels[key]
    keys = half.keys
    del keys[bisect_left(keys, key)]


def side_of(order: Order) -> bool:
    """True for a buy: the half of the order's level (meaningful for a live order)."""
    return order.level.half.is_buy
