"""The matching engine: sequenced messages in, execution reports out.

Theory of operation
-------------------
``Engine.apply(msg)`` is the whole interface of the replicated state machine.
It takes the sequencer's messages strictly in order: a seq at or below
``last_applied_seq`` is a duplicate and returns ``[]`` without touching
anything; a seq beyond ``last_applied_seq + 1`` raises ``SequenceGapError``
(closing gaps is the receiver's job). The outputs depend on nothing but the
state and the message: no clock (the message's ``ts`` is not even needed), no
randomness, no floats, no hash-order iteration.

State: one ``Book`` per symbol (created on the first accepted order), the
tokens each account used in an accepted order this session (``_used``:
``account -> set``), the open orders (``_live``: ``account -> {token:
Order}``, exactly the orders on the books), the counters ``last_order_ref``
and ``last_match_id`` (both start at 0, so the first assigned value is 1),
``epoch`` and ``last_applied_seq``. The used tokens only grow, so they are
kept apart from the open orders: cancels and fills look up only the small,
cache-resident ``_live``; new orders and replaces check (and add) their new
token in the session-long set.

Rules (any two correct engines agree fill for fill):

* New order: the stateless checks of ``rules.check_new_order`` (unknown_symbol,
  bad_price, bad_qty, min_qty_not_ioc, bad_qty, bad_tif, bad_token), then
  ``duplicate_token`` (the account already used the token in an accepted
  order; a rejected order does not use its token up; tokens are per account).
  Accepted: ``Accepted`` (price 0 for a market order), a fresh ``order_ref``,
  then matching at the resting orders' prices in price-time priority. A DAY
  limit remainder rests; a market or IOC remainder is canceled (reason IOC).
  With ``min_qty`` (IOC only; FOK is ``min_qty = qty``) the order executes
  only if at least ``min_qty`` can fill at once, otherwise its whole qty is
  canceled at once.
* Cancel(token, qty = new intended size): checks bad_token, bad_qty
  (``rules.check_cancel_fields``), then unknown_order. The open quantity
  becomes ``min(open, max(0, qty - executed))``; the output's qty is the
  decrement (0 if nothing changed); a reduce keeps time priority.
* Replace(token, new_token, qty, price): checks unknown_order, then
  ``rules.check_replace_fields`` against the original order's symbol tick
  (bad_price, bad_qty, bad_token), then duplicate_token (the old token
  counts as used). The old order goes without a Canceled; a new DAY limit
  order (same account, symbol, side; open = qty) gets a fresh ``order_ref``,
  loses priority and may match at once. Rejects name the new token.
* Output order for one input: Accepted / Replaced / Rejected; per match the
  resting side's Executed ("A") then the aggressor's ("R"); then a Canceled
  for an unfilled IOC, FOK or market remainder. Every client request yields
  at least one output addressed to its sender.
* No self-trade prevention: an account's orders trade with each other like
  any others.
* Control bodies: LeaderChange sets ``epoch``; SnapshotRequest and Heartbeat
  only advance ``last_applied_seq``. None of them produces outputs.

Speed: the common valid order takes a fast path whose checks are a sound
subset of ``rules.check_new_order`` / ``check_replace_fields`` (a test keeps
them in step); anything the fast path does not clear goes to ``rules`` itself,
which names the reject. Outputs are built with ``tuple.__new__`` (the
NamedTuple constructors are Python functions). Installed with a C compiler,
this file and book.py are also compiled with Cython, typed by ``engine.pxd``
and ``book.pxd`` (reference_impl/core_build.py); the source stays the
reference and both builds give the same bytes.

``state_hash()`` is sha256 over the canonical encoding of the state and
``snapshot()`` is that encoding behind a magic and a version (see
``engine_snapshot``); ``Engine.restore(engine.snapshot())`` has the same hash
and gives the same outputs for the same continuation.
"""

from __future__ import annotations

from . import engine_snapshot
from .book import COMPACT_SLACK, MARKET_KEY, Book, Order, remove
from .errors import SequenceGapError
from .messages import (
    MAX_PRICE,
    MAX_QTY,
    MIN_PRICE,
    TOKEN_LEN,
    U32_MAX,
    Accepted,
    Cancel,
    Canceled,
    CancelReason,
    Heartbeat,
    LeaderChange,
    NewOrder,
    OrdType,
    Output,
    Rejected,
    RejectReason,
    Replace,
    Replaced,
    Sequenced,
    Side,
    SnapshotRequest,
    Tif,
)
from .rules import Instruments, check_cancel_fields, check_new_order, check_replace_fields

_new = tuple.__new__
_alloc = Order.__new__  # object.__new__ refuses the compiled (extension) Order
_BUY = Side.BUY
_SELL = Side.SELL
_LIMIT = OrdType.LIMIT
_MARKET = OrdType.MARKET
_TIFS = frozenset(int(t) for t in Tif)  # as rules.check_new_order tests a tif
_IOC = CancelReason.IOC
_USER = CancelReason.USER
_DUPLICATE = RejectReason.DUPLICATE_TOKEN
_UNKNOWN_ORDER = RejectReason.UNKNOWN_ORDER


class Engine:
    """Deterministic price-time priority matching for many symbols."""

    __slots__ = ("instruments", "last_applied_seq", "epoch", "last_order_ref", "last_match_id",
                 "_books", "_used", "_live", "_dispatch")

    def __init__(self, instruments: Instruments | None = None) -> None:
        self.instruments = instruments if instruments is not None else Instruments()
        self.last_applied_seq = 0
        self.epoch = 1  # the sequencer's first epoch; LeaderChange(2) is the first promotion
        self.last_order_ref = 0
        self.last_match_id = 0
        self._books: dict[str, Book] = {}
        self._used: dict[str, set[str]] = {}
        self._live: dict[str, dict[str, Order]] = {}
        self._dispatch = {
            NewOrder: self._on_new_order,
            Cancel: self._on_cancel,
            Replace: self._on_replace,
            LeaderChange: self._on_leader_change,
            SnapshotRequest: self._on_quiet,
            Heartbeat: self._on_quiet,
        }

    # ----------------------------------------------------------------- apply

    def apply(self, msg: Sequenced) -> list[Output]:
        """Apply the next sequenced message; return its outputs in emission order."""
        seq = msg.seq
        if seq != self.last_applied_seq + 1:
            if seq <= self.last_applied_seq:
                return []
            raise SequenceGapError(self.last_applied_seq + 1, seq)
        body = msg.body
        if type(body) is NewOrder:  # the commonest body skips the dispatch table
            out = self._on_new_order(seq, msg.account, body)
        else:
            try:
                handler = self._dispatch[type(body)]
            except KeyError:
                raise TypeError(f"seq {seq}: not a message body: {type(body).__name__}") from None
            out = handler(seq, msg.account, body)
        self.last_applied_seq = seq
        return out

    # ------------------------------------------------------------- handlers

    def _on_new_order(self, seq: int, account: str, body: NewOrder) -> list[Output]:
        token = body.token
        qty = body.qty
        price = body.price
        side = body.side
        ord_type = body.ord_type
        tif = body.tif
        min_qty = body.min_qty
        book = self._books.get(body.symbol)
        if (book is None or tif not in _TIFS or type(tif) is bool
                or (side is not _BUY and side is not _SELL)
                or type(qty) is not int or not 0 < qty <= MAX_QTY
                or (min_qty and (tif != 1 or type(min_qty) is not int or not 0 < min_qty <= qty))
                or (ord_type is not _LIMIT and ord_type is not _MARKET)
                or (ord_type is _LIMIT
                    and (type(price) is not int or not MIN_PRICE <= price <= MAX_PRICE
                         or price % book.tick))
                or type(token) is not str or not 0 < len(token) <= TOKEN_LEN
                or not token.isascii() or not token.isprintable() or " " in token):
            Side(side)  # a malformed peer, not a business reject: ValueError
            OrdType(ord_type)
            reason = check_new_order(body, self.instruments)
            if reason is not None:
                return [_new(Rejected, (seq, account, token, reason))]
            if book is None:
                symbol = body.symbol
                book = self._books[symbol] = Book(symbol, self.instruments.tick(symbol),
                                                  self._live)
            side = _BUY if side == _BUY else _SELL
            ord_type = _LIMIT if ord_type == _LIMIT else _MARKET
        used = self._used.get(account)
        if used is None:
            used = self._used[account] = set()
            self._live[account] = {}
        elif token in used:
            return [_new(Rejected, (seq, account, token, _DUPLICATE))]
        used.add(token)
        ref = self.last_order_ref = self.last_order_ref + 1
        is_buy = side is _BUY
        if ord_type is _LIMIT:
            out = [_new(Accepted, (seq, account, token, book.symbol, side, qty, price, ref))]
            limit_key = -price if is_buy else price
        else:
            out = [_new(Accepted, (seq, account, token, book.symbol, side, qty, 0, ref))]
            limit_key = MARKET_KEY
        if min_qty and not book.can_fill(is_buy, limit_key, min_qty):
            out.append(_new(Canceled, (seq, account, token, qty, _IOC)))
            return out
        keys = book.asks.keys if is_buy else book.bids.keys
        if keys and keys[-1] >= limit_key:
            remaining, self.last_match_id = book.match(
                is_buy, limit_key, qty, account, token, seq, out, self.last_match_id)
            if not remaining:
                return out
        else:
            remaining = qty
        if tif or ord_type is not _LIMIT:
            out.append(_new(Canceled, (seq, account, token, remaining, _IOC)))
            return out
        # rest the remainder (Book.rest, inlined: this is the commonest path);
        # the resting key of a limit order is minus its limit_key
        half = book.bids if is_buy else book.asks
        level = half.levels.get(-limit_key)
        if level is None:
            level = half.add_level(price)
        order = self._live[account][token] = _alloc(Order)  # Order(...) inlined: a class call is slow
        order.account = account
        order.token = token
        order.qty = qty
        order.open = remaining
        order.canceled = 0
        order.order_ref = ref
        order.level = level
        level.append(order)
        level.live += 1
        return out

    def _on_cancel(self, seq: int, account: str, body: Cancel) -> list[Output]:
        token = body.token
        size = body.qty
        mine = self._live.get(account)
        order = mine.get(token) if mine is not None else None
        if order is None or type(size) is not int or not 0 <= size <= U32_MAX:
            # an open order's token passed valid_token when the order was accepted
            reason = check_cancel_fields(token, size) or _UNKNOWN_ORDER
            return [_new(Rejected, (seq, account, token, reason))]
        open_ = order.open
        keep = size - (order.qty - open_ - order.canceled)  # size - executed
        if keep >= open_:
            return [_new(Canceled, (seq, account, token, 0, _USER))]
        if keep > 0:
            order.open = keep
        else:
            keep = 0
            del mine[token]
            level = order.level
            live = level.live - 1
            if live and len(level) <= (live << 1) + COMPACT_SLACK:
                order.open = 0  # book.remove, inlined for its commonest case
                level.live = live
            else:
                remove(order)
        order.canceled += open_ - keep
        return [_new(Canceled, (seq, account, token, open_ - keep, _USER))]

    def _on_replace(self, seq: int, account: str, body: Replace) -> list[Output]:
        token = body.token
        new_token = body.new_token
        mine = self._live.get(account)
        old = mine.get(token) if mine is not None else None
        if old is None:
            return [_new(Rejected, (seq, account, new_token, _UNKNOWN_ORDER))]
        half = old.level.half
        book = half.book
        qty = body.qty
        price = body.price
        if (type(price) is not int or not MIN_PRICE <= price <= MAX_PRICE or price % book.tick
                or type(qty) is not int or not 0 < qty <= MAX_QTY
                or type(new_token) is not str or not 0 < len(new_token) <= TOKEN_LEN
                or not new_token.isascii() or not new_token.isprintable() or " " in new_token):
            reason = check_replace_fields(new_token, qty, price, book.tick)
            if reason is not None:
                return [_new(Rejected, (seq, account, new_token, reason))]
        used = self._used[account]
        if new_token in used:
            return [_new(Rejected, (seq, account, new_token, _DUPLICATE))]
        used.add(new_token)
        remove(old)
        del mine[token]
        ref = self.last_order_ref = self.last_order_ref + 1
        out = [_new(Replaced, (seq, account, new_token, token, qty, price, ref))]
        is_buy = half.is_buy
        limit_key = -price if is_buy else price
        keys = book.asks.keys if is_buy else book.bids.keys
        if keys and keys[-1] >= limit_key:
            remaining, self.last_match_id = book.match(
                is_buy, limit_key, qty, account, new_token, seq, out, self.last_match_id)
            if not remaining:
                return out
        else:
            remaining = qty
        mine[new_token] = book.rest(account, new_token, is_buy, price, qty, remaining, ref)
        return out

    def _on_leader_change(self, seq: int, account: str, body: LeaderChange) -> list[Output]:
        self.epoch = body.epoch
        return []

    def _on_quiet(self, seq: int, account: str, body: object) -> list[Output]:
        return []

    # --------------------------------------------------------------- queries

    def book(self, symbol: str) -> Book | None:
        """The symbol's book (None before its first accepted order). Read-only use."""
        return self._books.get(symbol)

    def symbols(self) -> list[str]:
        return sorted(self._books)

    def live_order(self, account: str, token: str) -> Order | None:
        """The account's open order with this token, if any. Read-only use."""
        mine = self._live.get(account)
        return mine.get(token) if mine is not None else None

    def state_hash(self) -> str:
        """sha256 (hex) of the canonical encoding of the whole state."""
        return engine_snapshot.state_hash(self)

    def snapshot(self) -> bytes:
        """The state as versioned bytes (magic, version, canonical body)."""
        return engine_snapshot.encode(self)

    @classmethod
    def restore(cls, data: bytes, instruments: Instruments | None = None) -> Engine:
        """An engine in exactly the state ``data`` (from ``snapshot()``) records."""
        engine = cls(instruments)
        engine_snapshot.decode_into(data, engine)
        return engine
