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
            per order (time priority): order_ref u64 | qty u32 | open u32
                                       | canceled u32 | account str | token str
    n_accounts u32, per account (ascending):
        account str | n_tokens u32 | tokens_len u32 | tokens_len bytes: every
        token the account used in an accepted order, ascending, joined by " "

The open orders by account and token are the books' orders read by
(account, token), so the books encode them; the token list is every account's
set of used tokens. Tokens are printable ASCII without spaces, hence the space joiner:
encoding and decoding the list (which grows with the session) stay in C.

The decoder bounds-checks every read, checks every invariant the engine keeps
(order, ranges, tick, uncrossed books, every open order's token registered
once) and raises only ``DecodeError`` naming the field.
"""

from __future__ import annotations

import hashlib
import struct
from itertools import pairwise
from typing import TYPE_CHECKING

from .book import Book, Order
from .errors import DecodeError
from .messages import MAX_QTY, TOKEN_LEN
from .rules import check_price

if TYPE_CHECKING:
    from .engine import Engine

MAGIC = b"CRUCENGS"
VERSION = 1
PROTOCOL = "engine_snapshot"

_HEAD = struct.Struct(">8sH")
_COUNTERS = struct.Struct(">QQQQ")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_LEVEL = struct.Struct(">II")
_ORDER = struct.Struct(">QIII")
_TOKENS = struct.Struct(">II")


def _str(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    return _U16.pack(len(raw)) + raw


def encode_body(engine: Engine) -> bytes:
    """The canonical encoding of ``engine``'s state (version 1 body)."""
    parts = [_COUNTERS.pack(engine.last_applied_seq, engine.epoch,
                            engine.last_order_ref, engine.last_match_id)]
    append = parts.append
    pack_order = _ORDER.pack
    names: dict[str, bytes] = {}  # account -> encoded, per call
    books = [book for _, book in sorted(engine._books.items()) if not book.is_empty()]
    append(_U32.pack(len(books)))
    for book in books:
        append(_str(book.symbol))
        for is_buy in (True, False):
            levels = book.levels(is_buy)
            append(_U32.pack(len(levels)))
            for price, orders in levels:
                append(_LEVEL.pack(price, len(orders)))
                for o in orders:
                    name = names.get(o.account)
                    if name is None:
                        name = names[o.account] = _str(o.account)
                    append(pack_order(o.order_ref, o.qty, o.open, o.canceled))
                    append(name)
                    append(_str(o.token))
    accounts = sorted(engine._used.items())
    append(_U32.pack(len(accounts)))
    for account, tokens in accounts:
        joined = " ".join(sorted(tokens)).encode("ascii")
        append(_str(account))
        append(_TOKENS.pack(len(tokens), len(joined)))
        append(joined)
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
    open_orders: dict[tuple[str, str], Order] = {}
    seen_refs: set[int] = set()
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
        book = books[symbol] = Book(symbol, tick, engine._live)
        for is_buy in (True, False):
            _decode_half(r, book, is_buy, tick, last_ref, seen_refs, open_orders)
        if book.is_empty():
            raise _fail("n_levels", 0, f"book {symbol} has no order (empty books are not encoded)")
        bid, ask = book.best_bid(), book.best_ask()
        if bid is not None and ask is not None and bid >= ask:
            raise _fail("price", ask, f"book {symbol} is crossed (best bid {bid})")
    used: dict[str, set[str]] = {}
    previous_account = None
    for _ in range(r.u32("n_accounts")):
        account = r.text("account")
        if previous_account is not None and account <= previous_account:
            raise _fail("account", account, "accounts not in ascending order")
        previous_account = account
        n_tokens, size = r.unpack(_TOKENS, "tokens")
        tokens = _decode_tokens(r.take(size, "tokens"), n_tokens, account)
        used[account] = set(tokens)
    live: dict[str, dict[str, Order]] = {account: {} for account in used}
    for (account, token), order in open_orders.items():
        tokens = used.get(account)
        if tokens is None or token not in tokens:
            raise _fail("token", token, f"open order of {account!r} with a token it never used")
        live[account][token] = order
    if r.pos != len(r.data):
        raise _fail("body", len(r.data) - r.pos, "trailing bytes")
    engine._used.update(used)
    engine._live.update(live)
    engine._books.update(books)
    engine.last_applied_seq = seq
    engine.epoch = epoch
    engine.last_order_ref = last_ref
    engine.last_match_id = last_match


def _decode_tokens(raw: bytes, count: int, account: str) -> list[str]:
    if not count:
        raise _fail("n_tokens", 0, f"account {account!r} has no token")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise _fail("tokens", raw[:32], "not ASCII") from None
    tokens = text.split(" ")
    if len(tokens) != count:
        raise _fail("n_tokens", count, f"{len(tokens)} tokens in the list")
    if not text.isprintable() or min(map(len, tokens)) < 1 or max(map(len, tokens)) > TOKEN_LEN:
        raise _fail("tokens", raw[:32], "a token is not 1-14 printable ASCII without spaces")
    if any(a >= b for a, b in pairwise(tokens)):
        raise _fail("tokens", raw[:32], "tokens not in strictly ascending order")
    return tokens


def _decode_half(r: _Reader, book: Book, is_buy: bool, tick: int, last_ref: int,
                 seen_refs: set[int], open_orders: dict[tuple[str, str], Order]) -> None:
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
            ref, qty, open_, canceled = r.unpack(_ORDER, "order")
            account = r.text("order_account")
            token = r.text("order_token")
            if not previous_ref < ref <= last_ref:
                raise _fail("order_ref", ref, "not ascending in the level or beyond last_order_ref")
            if ref in seen_refs:
                raise _fail("order_ref", ref, "used twice")
            previous_ref = ref
            seen_refs.add(ref)
            if not (1 <= qty <= MAX_QTY and 0 < open_ and open_ + canceled <= qty):
                raise _fail("order", (qty, open_, canceled), "inconsistent quantities")
            if (account, token) in open_orders:
                raise _fail("order_token", token, f"two open orders of {account!r} with it")
            order = book.rest(account, token, is_buy, price, qty, open_, ref)
            order.canceled = canceled
            open_orders[(account, token)] = order
