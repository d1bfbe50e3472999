"""A minimal naive order book: the speed reference for the engine benchmark.

What a pure-Python book costs when it does only the essentials: per symbol and
side a dict price -> deque of ``[open, account, token]`` entries plus a heap of
prices (lazy deletion), a dict (account, token) -> entry for cancels, and
matching that counts fills. No validation, no outputs, no tokens-used set, no
min_qty (FOK behaves as IOC), a cancel always removes the whole order, and a
replace is a cancel plus a new limit order. The engine does all of that and
more, so the ratio engine/naive says what the engine's rules and reports cost.
"""

from __future__ import annotations

from collections import deque
from heapq import heappop, heappush

from reference_impl.core.messages import Cancel, NewOrder, OrdType, Replace, Sequenced, Side


class NaiveBook:
    def __init__(self) -> None:
        self.books: dict[str, tuple[dict, list, dict, list]] = {}
        self.orders: dict[tuple[str, str], list] = {}
        self.fills = 0

    def apply(self, msg: Sequenced) -> None:
        body = msg.body
        kind = type(body)
        if kind is NewOrder:
            market = body.ord_type is OrdType.MARKET
            self._add(msg.account, body.token, body.symbol, body.side is Side.BUY,
                      body.price, body.qty, market or body.tif != 0, market)
        elif kind is Cancel:
            entry = self.orders.pop((msg.account, body.token), None)
            if entry is not None:
                entry[0] = 0
        elif kind is Replace:
            entry = self.orders.pop((msg.account, body.token), None)
            if entry is not None:
                entry[0] = 0
                self._add(msg.account, body.new_token, entry[3], entry[4], body.price, body.qty,
                          False, False)

    def _add(self, account: str, token: str, symbol: str, is_buy: bool, price: int, qty: int,
             ioc: bool, market: bool) -> None:
        book = self.books.get(symbol)
        if book is None:
            book = self.books[symbol] = ({}, [], {}, [])
        bids, bid_heap, asks, ask_heap = book
        if is_buy:
            levels, heap, sign = asks, ask_heap, 1
        else:
            levels, heap, sign = bids, bid_heap, -1
        while qty and heap:
            best = heap[0] * sign
            if not market and (best > price if is_buy else best < price):
                break
            level = levels[best]
            if not level:
                heappop(heap)
                del levels[best]
                continue
            entry = level[0]
            if not entry[0]:
                level.popleft()
                continue
            fill = entry[0] if entry[0] < qty else qty
            entry[0] -= fill
            qty -= fill
            self.fills += 1
            if not entry[0]:
                level.popleft()
        if qty and not ioc:
            levels, heap, sign = (bids, bid_heap, -1) if is_buy else (asks, ask_heap, 1)
            level = levels.get(price)
            if level is None:
                level = levels[price] = deque()
                heappush(heap, price * sign)
            entry = [qty, account, token, symbol, is_buy]
            level.append(entry)
            self.orders[(account, token)] = entry
