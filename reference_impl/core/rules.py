"""Stateless order checks, in the one order every door and the engine apply them.

The gateway runs these before sequencing (a failing request is never
sequenced); the engine runs them again on every sequenced message, so a
faulty or foreign gateway cannot put a bad order on a book. The first failing
check names the reason. Stateful checks (``duplicate_token``,
``unknown_order``) need the book and live in the engine.
"""

from __future__ import annotations

from collections.abc import Mapping

from .messages import (
    ACCOUNT_LEN,
    DEFAULT_TICK,
    MAX_PRICE,
    MAX_QTY,
    MIN_PRICE,
    SYMBOL_LEN,
    TOKEN_LEN,
    U32_MAX,
    NewOrder,
    OrdType,
    RejectReason,
    Tif,
)

_TIFS = frozenset(int(t) for t in Tif)
_SYMBOL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_ACCOUNT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def valid_token(token: object) -> bool:
    """1–14 printable ASCII characters without spaces (an OUCH order token)."""
    if type(token) is not str or not 1 <= len(token) <= TOKEN_LEN:
        return False
    return all("!" <= c <= "~" for c in token)


def valid_account(account: object) -> bool:
    """1–6 letters or digits (a SoupBinTCP username)."""
    return (
        type(account) is str
        and 1 <= len(account) <= ACCOUNT_LEN
        and all(c in _ACCOUNT_CHARS for c in account)
    )


def valid_symbol_format(symbol: object) -> bool:
    """1–8 uppercase letters or digits: what an instrument-less engine accepts."""
    return (
        type(symbol) is str
        and 1 <= len(symbol) <= SYMBOL_LEN
        and all(c in _SYMBOL_CHARS for c in symbol)
    )


class Instruments:
    """The tradable symbols and their ticks; ``None`` symbols means "any well-formed symbol"."""

    __slots__ = ("_ticks",)

    def __init__(self, ticks: Mapping[str, int] | None = None) -> None:
        if ticks is not None:
            for symbol, tick in ticks.items():
                if not valid_symbol_format(symbol):
                    raise ValueError(f"instrument {symbol!r}: symbol must be 1-8 of A-Z 0-9")
                if type(tick) is not int or tick < 1:
                    raise ValueError(f"instrument {symbol!r}: tick must be a positive integer")
        self._ticks = dict(sorted(ticks.items())) if ticks is not None else None

    def tick(self, symbol: str) -> int | None:
        """The symbol's tick, or None when the symbol is not tradable."""
        if self._ticks is None:
            return DEFAULT_TICK if valid_symbol_format(symbol) else None
        return self._ticks.get(symbol)

    def items(self) -> list[tuple[str, int]]:
        return list(self._ticks.items()) if self._ticks is not None else []


def check_price(price: object, tick: int) -> bool:
    return type(price) is int and MIN_PRICE <= price <= MAX_PRICE and price % tick == 0


def check_qty(qty: object) -> bool:
    return type(qty) is int and 1 <= qty <= MAX_QTY


def check_new_order(order: NewOrder, instruments: Instruments) -> RejectReason | None:
    """The first stateless rule ``order`` breaks, or None."""
    tick = instruments.tick(order.symbol)
    if tick is None:
        return RejectReason.UNKNOWN_SYMBOL
    if order.ord_type is OrdType.LIMIT and not check_price(order.price, tick):
        return RejectReason.BAD_PRICE
    if not check_qty(order.qty):
        return RejectReason.BAD_QTY
    min_qty = order.min_qty
    if min_qty:
        if order.tif != Tif.IOC:
            return RejectReason.MIN_QTY_NOT_IOC
        if type(min_qty) is not int or not 1 <= min_qty <= order.qty:
            return RejectReason.BAD_QTY
    if type(order.tif) is bool or order.tif not in _TIFS:
        return RejectReason.BAD_TIF
    if not valid_token(order.token):
        return RejectReason.BAD_TOKEN
    return None


def check_cancel_fields(token: object, qty: object) -> RejectReason | None:
    """Stateless part of a cancel: the token's format and the intended size's range."""
    if not valid_token(token):
        return RejectReason.BAD_TOKEN
    if type(qty) is not int or not 0 <= qty <= U32_MAX:
        return RejectReason.BAD_QTY
    return None


def check_replace_fields(
    new_token: object, qty: object, price: object, tick: int
) -> RejectReason | None:
    """Stateless part of a replace, after ``unknown_order`` (which needs the book)."""
    if not check_price(price, tick):
        return RejectReason.BAD_PRICE
    if not check_qty(qty):
        return RejectReason.BAD_QTY
    if not valid_token(new_token):
        return RejectReason.BAD_TOKEN
    return None
