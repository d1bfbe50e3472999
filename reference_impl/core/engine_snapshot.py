"""Canonical encoding of an ``Engine``'s state: the state hash and the snapshot body.

The body is the one canonical encoding; ``state_hash`` is its sha256 and a
snapshot is ``MAGIC | version u16 | body``. Two engines have equal hashes iff
their observable states are equal: the encoding visits everything in a fixed
order (symbols, accounts and tokens sorted; price levels best first; orders in
time priority) and skips what cannot influence an output (orders no longer
open, lazily kept dead queue entries, books with no live order). It is
therefore the same for an engine and its restored copy, whatever history led
to the state.

Body, version 1 (big-endian; ``str`` = u16 byte length + UTF-8)::

    last_applied_seq u64 | epoch u64 | last_order_ref u64 | last_match_id u64
    n_books u32, per book (symbol ascending):
        symbol str | bids | asks
        (a half) n_levels u32, per level (best first): price u32 | n_orders u32,
            per order (time priority): order_ref u64 | account str | token str
                                       | qty u32 | open u32 | canceled u32
    n_accounts u32, per account (ascending): account str | n_tokens u32,
        per token (ascending): token str | live order_ref u64 (0: no longer open)

The decoder bounds-checks every read, checks every invariant the engine keeps
(order, ranges, tick, uncrossed books, each live order registered exactly
once) and raises only ``DecodeError`` naming the field.
"""

from __future__ import annotations

import hashlib
import struct
from typing import TYPE_CHECKING

from .book import Book, Order
from .errors import DecodeError
from .messages import MAX_QTY
from .rules import check_price, valid_token

if TYPE_CHECKING:
    from .engine import Engine

MAGIC = b"CRUCENGS"
VERSION = 1
PROTOCOL = "engine_snapshot"

_HEAD = struct.Struct(">8sH")
_COUNTERS = struct.Struct(">QQQQ")
_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_LEVEL = struct.Struct(">II")
_SIZES = struct.Struct(">III")


def _str(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    return _U16.pack(len(raw)) + raw


def encode_body(engine: Engine) -> bytes:
    """The canonical encoding of ``engine``'s state (version 1 body)."""
    parts = [_COUNTERS.pack(engine.last_applied_seq, engine.epoch,
                            engine.last_order_ref, engine.last_match_id)]
    books = [book for _, book in sorted(engine._books.items()) if not book.is_empty()]
    parts.append(_U32.pack(len(books)))
    for book in books:
        parts.append(_str(book.symbol))
        for is_buy in (True, False):
            levels = book.levels(is_buy)
            parts.append(_U32.pack(len(levels)))
            for price, orders in levels:
                parts.append(_LEVEL.pack(price, len(orders)))
                for o in orders:
                    parts.append(_U64.pack(o.order_ref))
                    parts.append(_str(o.account))
                    parts.append(_str(o.token))
                    parts.append(_SIZES.pack(o.qty, o.open, o.canceled))
    accounts = sorted(engine._registry.items())
    parts.append(_U32.pack(len(accounts)))
    for account, tokens in accounts:
        parts.append(_str(account))
        parts.append(_U32.pack(len(tokens)))
        for token in sorted(tokens):
            order = tokens[token]
            parts.append(_str(token))
            parts.append(_U64.pack(order.order_ref if order is not None else 0))
    return b"".join(parts)


def state_hash(engine: Engine) -> str:
    return hashlib.sha256(encode_body(engine)).hexdigest()


def encode(engine: Engine) -> bytes:
    return _HEAD.pack(MAGIC, VERSION) + encode_body(engine)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, field: str) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise DecodeError(PROTOCOL, field, len(self.data) - self.pos,
                              f"truncated: needs {n} bytes")
        raw = self.data[self.pos:end]
        self.pos = end
        return raw

    def unpack(self, fmt: struct.Struct, field: str) -> tuple:
        return fmt.unpack(self.take(fmt.size, field))

    def u32(self, field: str) -> int:
        return self.unpack(_U32, field)[0]

    def u64(self, field: str) -> int:
        return self.unpack(_U64, field)[0]

    def text(self, field: str) -> str:
        raw = self.take(self.unpack(_U16, field)[0], field)
        try:
            return raw.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise DecodeError(PROTOCOL, field, raw, "not UTF-8") from None


def _fail(field: str, value: object, reason: str) -> DecodeError:
    return DecodeError(PROTOCOL, field, value, reason)


def decode_into(data: bytes, engine: Engine) -> None:
    """Fill a fresh ``engine`` from ``encode(...)`` bytes; DecodeError if they are not valid."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _fail("snapshot", type(data).__name__, "not bytes")
    r = _Reader(bytes(data))
    magic, version = r.unpack(_HEAD, "header")
    if magic != MAGIC:
        raise _fail("magic", magic, f"expected {MAGIC!r}")
    if version != VERSION:
        raise _fail("version", version, f"unsupported (this engine reads {VERSION})")
    seq, epoch, last_ref, last_match = r.unpack(_COUNTERS, "counters")
    by_ref: dict[int, Order] = {}
    registry = engine._registry
    books: dict[str, Book] = {}
    previous_symbol = None
    for _ in range(r.u32("n_books")):
        symbol = r.text("symbol")
        if previous_symbol is not None and symbol <= previous_symbol:
            raise _fail("symbol", symbol, "books not in ascending symbol order")
        previous_symbol = symbol
        tick = engine.instruments.tick(symbol)
        if tick is None:
            raise _fail("symbol", symbol, "not tradable under the given instruments")
        book = books[symbol] = Book(symbol, tick, registry)
        for is_buy in (True, False):
            _decode_half(r, book, is_buy, tick, last_ref, by_ref)
        if book.is_empty():
            raise _fail("n_levels", 0, f"book {symbol} has no order (empty books are not encoded)")
        bid, ask = book.best_bid(), book.best_ask()
        if bid is not None and ask is not None and bid >= ask:
            raise _fail("price", ask, f"book {symbol} is crossed (best bid {bid})")
    registered = 0
    previous_account = None
    for _ in range(r.u32("n_accounts")):
        account = r.text("account")
        if previous_account is not None and account <= previous_account:
            raise _fail("account", account, "accounts not in ascending order")
        previous_account = account
        tokens: dict[str, Order | None] = {}
        previous_token = None
        n_tokens = r.u32("n_tokens")
        if not n_tokens:
            raise _fail("n_tokens", 0, f"account {account!r} has no token")
        for _ in range(n_tokens):
            token = r.text("token")
            if not valid_token(token):
                raise _fail("token", token, "not 1-14 printable ASCII characters without spaces")
            if previous_token is not None and token <= previous_token:
                raise _fail("token", token, "tokens not in ascending order")
            previous_token = token
            ref = r.u64("live_order_ref")
            order = None
            if ref:
                order = by_ref.get(ref)
                if order is None or order.account != account or order.token != token:
                    raise _fail("live_order_ref", ref, f"no open order {account}/{token} with it")
                registered += 1
            tokens[token] = order
        registry[account] = tokens
    if registered != len(by_ref):
        raise _fail("n_accounts", len(by_ref) - registered, "open orders missing from the registry")
    if r.pos != len(r.data):
        raise _fail("body", len(r.data) - r.pos, "trailing bytes")
    engine._books.update(books)
    engine.last_applied_seq = seq
    engine.epoch = epoch
    engine.last_order_ref = last_ref
    engine.last_match_id = last_match


def _decode_half(r: _Reader, book: Book, is_buy: bool, tick: int, last_ref: int,
                 by_ref: dict[int, Order]) -> None:
    previous_price = None
    for _ in range(r.u32("n_levels")):
        price, n_orders = r.unpack(_LEVEL, "level")
        if not check_price(price, tick):
            raise _fail("price", price, f"off the range or the tick {tick}")
        if previous_price is not None and (price >= previous_price if is_buy
                                           else price <= previous_price):
            raise _fail("price", price, "levels not best first")
        previous_price = price
        if not n_orders:
            raise _fail("n_orders", 0, f"empty level at {price}")
        previous_ref = 0
        for _ in range(n_orders):
            ref = r.u64("order_ref")
            account = r.text("order_account")
            token = r.text("order_token")
            qty, open_, canceled = r.unpack(_SIZES, "order_sizes")
            if not previous_ref < ref <= last_ref:
                raise _fail("order_ref", ref, "not ascending in the level or beyond last_order_ref")
            if ref in by_ref:
                raise _fail("order_ref", ref, "used twice")
            previous_ref = ref
            if not (1 <= qty <= MAX_QTY and 0 < open_ and open_ + canceled <= qty):
                raise _fail("order_sizes", (qty, open_, canceled), "inconsistent quantities")
            order = book.rest(account, token, is_buy, price, qty, open_, ref)
            order.canceled = canceled
            by_ref[ref] = order
