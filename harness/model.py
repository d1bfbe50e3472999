"""A deliberately naive model of the matching rules, for differential tests.

Theory of operation
-------------------
The model is the slow, obvious reading of issue 2's "Matching engine" rules.
It exists so that the reference engine (and any engine a SUT ships) can be
checked fill for fill against something simple enough to trust by reading.
It therefore shares no code with ``reference_impl.core.engine``, ``book`` or
``rules``: only the value types, enums and limits of ``messages`` are
imported, and every check is written out again here.

State is one flat list of order records (every order ever accepted, in
acceptance order) plus, per account, the set of tokens it has used. An order
rests while ``open > 0`` and it is not an immediate (IOC / market) order. To
match, the model scans the whole list for the best opposite order: best price
first (lowest ask for a buyer, highest bid for a seller), then lowest
``order_ref`` (time priority; a reduce keeps its ``order_ref``, a replace gets
a new one). Executions happen at the resting order's price.

One ``apply`` gives, in order: ``accepted`` / ``replaced`` / ``rejected``;
then per match the resting side's ``executed`` ("A") and the aggressor's
("R"); then a ``canceled`` (reason ``ioc``) for an unfilled immediate
remainder. Control messages (LeaderChange, SnapshotRequest, Heartbeat) only
advance ``last_applied_seq``. A seq at or below ``last_applied_seq`` is a
no-op; a gap raises ``ModelGapError``.

Accounting: for every order, ``filled + open + canceled == original_qty``,
where ``canceled`` also counts the open remainder an order had when it was
replaced (the replace emits no ``canceled`` output for it).
"""

from __future__ import annotations

from reference_impl.core.messages import (
    DEFAULT_TICK,
    MAX_PRICE,
    MAX_QTY,
    MIN_PRICE,
    SYMBOL_LEN,
    TOKEN_LEN,
    U32_MAX,
    Accepted,
    Cancel,
    CancelReason,
    Canceled,
    Executed,
    NewOrder,
    OrdType,
    Output,
    Rejected,
    RejectReason,
    Replace,
    Replaced,
    Sequenced,
    Side,
    Tif,
)

__all__ = ["Model", "ModelGapError", "Order"]

_UPPER_AND_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


class ModelGapError(ValueError):
    """The model was given seq N+k (k > 1) after N."""


class Order:
    """One accepted order (or the new order of a replace); mutable, plain."""

    __slots__ = (
        "account", "token", "symbol", "side", "price", "order_ref",
        "original", "filled", "open", "canceled", "immediate",
    )

    def __init__(self, account, token, symbol, side, price, order_ref, qty, immediate):
        self.account = account
        self.token = token
        self.symbol = symbol
        self.side = side
        self.price = price  # 0 for a market order
        self.order_ref = order_ref
        self.original = qty
        self.filled = 0
        self.open = qty
        self.canceled = 0
        self.immediate = immediate  # market or IOC: never rests

    def resting(self) -> bool:
        return self.open > 0 and not self.immediate


def _is_int(value: object) -> bool:
    return type(value) is int or isinstance(value, Tif)


def _token_ok(token: object) -> bool:
    if not isinstance(token, str) or len(token) < 1 or len(token) > TOKEN_LEN:
        return False
    for ch in token:
        if ord(ch) < 0x21 or ord(ch) > 0x7E:
            return False
    return True


def _symbol_format_ok(symbol: object) -> bool:
    if not isinstance(symbol, str) or len(symbol) < 1 or len(symbol) > SYMBOL_LEN:
        return False
    for ch in symbol:
        if ch not in _UPPER_AND_DIGITS:
            return False
    return True


def _price_ok(price: object, tick: int) -> bool:
    return _is_int(price) and MIN_PRICE <= price <= MAX_PRICE and price % tick == 0


def _qty_ok(qty: object) -> bool:
    return _is_int(qty) and 1 <= qty <= MAX_QTY


class Model:
    """Naive matching model; same ``apply`` shape as the engine."""

    def __init__(self, tick_by_symbol: dict | None = None) -> None:
        self.tick_by_symbol = dict(tick_by_symbol) if tick_by_symbol is not None else None
        self.last_applied_seq = 0
        self.all_orders: list[Order] = []  # acceptance order
        self.used_tokens: dict[str, set[str]] = {}
        self.next_order_ref = 1
        self.next_match_id = 1

    # ------------------------------------------------------------ inspection

    def resting(self, symbol: str) -> list[tuple]:
        """Resting orders of ``symbol``: (side, price, time_order, account, token, open_qty).

        Sorted by side (B first), then priority: best price first, then time.
        ``time_order`` is the order's ``order_ref``.
        """
        rows = []
        for o in self.all_orders:
            if o.symbol == symbol and o.resting():
                rows.append((o.side, o.price, o.order_ref, o.account, o.token, o.open))
        bids = [r for r in rows if r[0] == Side.BUY]
        asks = [r for r in rows if r[0] == Side.SELL]
        bids.sort(key=lambda r: (-r[1], r[2]))
        asks.sort(key=lambda r: (r[1], r[2]))
        return bids + asks

    def symbols(self) -> list[str]:
        """Every symbol that has ever had an accepted order, sorted."""
        return sorted({o.symbol for o in self.all_orders})

    def orders(self) -> dict[tuple[str, str], tuple[int, int, int, int]]:
        """(account, token) -> (original_qty, filled, open, canceled) for every accepted order.

        ``canceled`` includes the open remainder an order had when it was replaced.
        """
        return {
            (o.account, o.token): (o.original, o.filled, o.open, o.canceled)
            for o in self.all_orders
        }

    def find_live(self, account: str, token: str) -> Order | None:
        for o in self.all_orders:
            if o.account == account and o.token == token and o.open > 0 and not o.immediate:
                return o
        return None

    # ----------------------------------------------------------------- apply

    def apply(self, msg: Sequenced) -> list[Output]:
        if msg.seq <= self.last_applied_seq:
            return []
        if msg.seq != self.last_applied_seq + 1:
            raise ModelGapError(
                f"sequence gap: expected seq {self.last_applied_seq + 1}, got {msg.seq}"
            )
        self.last_applied_seq = msg.seq
        body = msg.body
        if isinstance(body, NewOrder):
            return self._new(msg.seq, msg.account, body)
        if isinstance(body, Cancel):
            return self._cancel(msg.seq, msg.account, body)
        if isinstance(body, Replace):
            return self._replace(msg.seq, msg.account, body)
        return []  # LeaderChange, SnapshotRequest, Heartbeat

    def _tick(self, symbol: object) -> int | None:
        if self.tick_by_symbol is None:
            return DEFAULT_TICK if _symbol_format_ok(symbol) else None
        if isinstance(symbol, str) and symbol in self.tick_by_symbol:
            return self.tick_by_symbol[symbol]
        return None

    def _token_used(self, account: str, token: str) -> bool:
        return token in self.used_tokens.get(account, set())

    def _new(self, seq: int, account: str, b: NewOrder) -> list[Output]:
        reason = None
        tick = self._tick(b.symbol)
        is_market = b.ord_type == OrdType.MARKET
        if tick is None:
            reason = RejectReason.UNKNOWN_SYMBOL
        elif not is_market and not _price_ok(b.price, tick):
            reason = RejectReason.BAD_PRICE
        elif not _qty_ok(b.qty):
            reason = RejectReason.BAD_QTY
        elif b.min_qty != 0 and b.tif != Tif.IOC:
            reason = RejectReason.MIN_QTY_NOT_IOC
        elif b.min_qty != 0 and not (_is_int(b.min_qty) and 1 <= b.min_qty <= b.qty):
            reason = RejectReason.BAD_QTY
        elif not (_is_int(b.tif) and b.tif in (0, 1)):
            reason = RejectReason.BAD_TIF
        elif not _token_ok(b.token):
            reason = RejectReason.BAD_TOKEN
        elif self._token_used(account, b.token):
            reason = RejectReason.DUPLICATE_TOKEN
        if reason is not None:
            return [Rejected(seq, account, b.token, reason)]

        price = 0 if is_market else b.price
        immediate = is_market or b.tif == Tif.IOC
        order = self._add(account, b.token, b.symbol, b.side, price, b.qty, immediate)
        out: list[Output] = [
            Accepted(seq, account, b.token, b.symbol, b.side, b.qty, price, order.order_ref)
        ]
        min_qty = b.min_qty if b.min_qty else 0
        if min_qty and self._available(order) < min_qty:
            pass  # all or nothing: nothing fills
        else:
            self._match(seq, order, out)
        if order.immediate and order.open > 0:
            left = order.open
            order.open = 0
            order.canceled += left
            out.append(Canceled(seq, account, b.token, left, CancelReason.IOC))
        return out

    def _cancel(self, seq: int, account: str, b: Cancel) -> list[Output]:
        if not _token_ok(b.token):
            return [Rejected(seq, account, b.token, RejectReason.BAD_TOKEN)]
        if not (_is_int(b.qty) and 0 <= b.qty <= U32_MAX):
            return [Rejected(seq, account, b.token, RejectReason.BAD_QTY)]
        order = self.find_live(account, b.token)
        if order is None:
            return [Rejected(seq, account, b.token, RejectReason.UNKNOWN_ORDER)]
        allowed = b.qty - order.filled
        if allowed < 0:
            allowed = 0
        new_open = order.open if order.open < allowed else allowed
        dec = order.open - new_open
        order.open = new_open
        order.canceled += dec
        return [Canceled(seq, account, b.token, dec, CancelReason.USER)]

    def _replace(self, seq: int, account: str, b: Replace) -> list[Output]:
        old = self.find_live(account, b.token) if isinstance(b.token, str) else None
        reason = None
        if old is None:
            reason = RejectReason.UNKNOWN_ORDER
        elif not _price_ok(b.price, self._tick(old.symbol)):
            reason = RejectReason.BAD_PRICE
        elif not _qty_ok(b.qty):
            reason = RejectReason.BAD_QTY
        elif not _token_ok(b.new_token):
            reason = RejectReason.BAD_TOKEN
        elif self._token_used(account, b.new_token):
            reason = RejectReason.DUPLICATE_TOKEN
        if reason is not None:
            return [Rejected(seq, account, b.new_token, reason)]

        left = old.open
        old.open = 0
        old.canceled += left  # replaced remainder; no canceled output
        order = self._add(account, b.new_token, old.symbol, old.side, b.price, b.qty, False)
        out: list[Output] = [
            Replaced(seq, account, b.new_token, b.token, b.qty, b.price, order.order_ref)
        ]
        self._match(seq, order, out)
        return out

    # -------------------------------------------------------------- matching

    def _add(self, account, token, symbol, side, price, qty, immediate) -> Order:
        order = Order(account, token, symbol, side, price, self.next_order_ref, qty, immediate)
        self.next_order_ref += 1
        self.all_orders.append(order)
        self.used_tokens.setdefault(account, set()).add(token)
        return order

    def _crosses(self, aggressor: Order, resting: Order) -> bool:
        if resting.symbol != aggressor.symbol or resting.side == aggressor.side:
            return False
        if not resting.resting() or resting is aggressor:
            return False
        if aggressor.price == 0:  # market
            return True
        if aggressor.side == Side.BUY:
            return resting.price <= aggressor.price
        return resting.price >= aggressor.price

    def _available(self, aggressor: Order) -> int:
        total = 0
        for o in self.all_orders:
            if self._crosses(aggressor, o):
                total += o.open
        return total

    def _best(self, aggressor: Order) -> Order | None:
        best = None
        for o in self.all_orders:
            if not self._crosses(aggressor, o):
                continue
            if best is None:
                best = o
                continue
            if aggressor.side == Side.BUY:
                better = o.price < best.price
            else:
                better = o.price > best.price
            if better or (o.price == best.price and o.order_ref < best.order_ref):
                best = o
        return best

    def _match(self, seq: int, aggressor: Order, out: list[Output]) -> None:
        while aggressor.open > 0:
            resting = self._best(aggressor)
            if resting is None:
                return
            qty = aggressor.open if aggressor.open < resting.open else resting.open
            match_id = self.next_match_id
            self.next_match_id += 1
            resting.open -= qty
            resting.filled += qty
            aggressor.open -= qty
            aggressor.filled += qty
            price = resting.price
            out.append(Executed(seq, resting.account, resting.token, qty, price, match_id, "A"))
            out.append(Executed(seq, aggressor.account, aggressor.token, qty, price, match_id, "R"))
