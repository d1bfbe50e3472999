"""Per-account view a gateway keeps from the output stream: orders and outbound messages.

Theory of operation
-------------------
The gateway never asks the engine anything: everything it knows about an
account it learns from *released* outputs (those that passed the ack gate, see
``gateway_desk``), so what it serves can never run ahead of what is safe to
acknowledge. ``Account.apply(outbound)`` appends one message to the account's
outbound journal and folds it into the account's order table.

Outbound journal: each account has one outbound sequence number, from 1,
shared by both doors: it numbers the account's SoupBinTCP Sequenced Data
messages and its SSE event ids, so a client can resume on either door from
the number it last saw. An entry is an ``Outbound``: the engine ``Output``
plus what ``ouch_render`` needs to render it (the business timestamp, the
kind of request it answered when this gateway sent it, the order's side,
symbol and time in force). Gateway-local rejects (a stateless check or
backpressure, on either door: every SoupBinTCP server message must be
sequenced, and both doors share the numbering) are journal entries too, with
an output ``seq`` of 0: they were never sequenced.

Order table, one ``OrderState`` per token:

- ``accepted`` opens an order (``open_qty = qty``);
- ``executed`` moves quantity from open to executed; at zero open it is ``filled``;
- ``canceled`` removes the decrement; at zero open it is ``canceled`` (a
  partly filled order that is then canceled ends ``canceled``);
- ``replaced`` closes the old token (``replaced``) and opens the new one;
- ``rejected`` of a token the account has no order for records a ``rejected``
  order; a rejected cancel, replace or duplicate names an existing token and
  leaves that order as it was.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from .messages import Accepted, Canceled, Executed, Output, Rejected, Replaced, Side

OPEN, FILLED, CANCELED, REPLACED, REJECTED = "open", "filled", "canceled", "replaced", "rejected"
#: Kinds of request an output answered, when this gateway sent it ("" otherwise).
NEW, CANCEL, REPLACE = "new", "cancel", "replace"


class Outbound(NamedTuple):
    """One message of an account's outbound journal."""

    out_seq: int  #: the account's outbound sequence number (from 1)
    output: Output  #: ``output.seq == 0``: a gateway-local reject, never sequenced
    ts: int  #: business timestamp, wall-clock ns (the sequencer's stamp)
    kind: str  #: NEW, CANCEL, REPLACE, or "" when another gateway sent the request
    side: Side | None  #: the order's side when known
    symbol: str  #: the order's symbol when known, else ""
    tif: int  #: core Tif of the order when known, else -1
    min_qty: int


class OrderState:
    """One order of an account, as the released outputs describe it."""

    __slots__ = ("token", "symbol", "side", "price", "qty", "open_qty", "executed_qty",
                 "state", "order_ref", "last_seq", "tif", "min_qty")

    def __init__(self, token: str, symbol: str, side: Side | None, price: int, qty: int,
                 state: str, order_ref: int, last_seq: int, tif: int = -1,
                 min_qty: int = 0) -> None:
        self.token = token
        self.symbol = symbol
        self.side = side
        self.price = price
        self.qty = qty  #: size when accepted (or when it replaced another order)
        self.open_qty = qty if state == OPEN else 0
        self.executed_qty = 0
        self.state = state
        self.order_ref = order_ref
        self.last_seq = last_seq
        self.tif = tif
        self.min_qty = min_qty

    def to_json(self) -> dict:
        return {"token": self.token, "state": self.state, "symbol": self.symbol,
                "side": self.side.value if self.side is not None else None,
                "price": self.price, "qty": self.qty, "open_qty": self.open_qty,
                "executed_qty": self.executed_qty, "order_ref": self.order_ref,
                "last_seq": self.last_seq}

    def canonical(self) -> bytes:
        side = self.side.value if self.side is not None else "-"
        text = "|".join((self.token, self.symbol, side, self.state))
        return text.encode("ascii") + struct.pack(
            ">QQQQQQ", self.price, self.qty, self.open_qty, self.executed_qty, self.order_ref,
            self.last_seq)


class Account:
    """One account's outbound journal and order table."""

    __slots__ = ("name", "journal", "orders", "open_count")

    def __init__(self, name: str) -> None:
        self.name = name
        self.journal: list[Outbound] = []
        self.orders: dict[str, OrderState] = {}
        self.open_count = 0

    @property
    def next_out_seq(self) -> int:
        return len(self.journal) + 1

    def since(self, from_seq: int) -> list[Outbound]:
        """Journal entries with ``out_seq >= from_seq`` (from 1)."""
        return self.journal[max(from_seq, 1) - 1:]

    def order(self, token: str) -> OrderState | None:
        return self.orders.get(token)

    def open_orders(self) -> list[OrderState]:
        return [o for o in self.orders.values() if o.state == OPEN]

    def describe(self, output: Output) -> tuple[Side | None, str, int, int]:
        """(side, symbol, tif, min_qty) of the order ``output`` is about, as known now."""
        if type(output) is Accepted:
            return output.side, output.symbol, -1, 0
        token = output.old_token if type(output) is Replaced else output.token
        order = self.orders.get(token)
        if order is None:
            return None, "", -1, 0
        return order.side, order.symbol, order.tif, order.min_qty

    def apply(self, output: Output, ts: int, kind: str, tif: int = -1,
              min_qty: int = 0) -> Outbound:
        """Journal ``output`` under the next outbound seq and fold it into the orders."""
        side, symbol, known_tif, known_min = self.describe(output)
        if tif < 0:
            tif, min_qty = known_tif, known_min
        entry = Outbound(len(self.journal) + 1, output, ts, kind, side, symbol, tif, min_qty)
        self.journal.append(entry)
        if output.seq:  # gateway-local rejects change no order
            self._fold(output, tif, min_qty)
        return entry

    def _set_state(self, order: OrderState, state: str) -> None:
        if order.state == OPEN and state != OPEN:
            self.open_count -= 1
        elif order.state != OPEN and state == OPEN:
            self.open_count += 1
        order.state = state

    def _fold(self, out: Output, tif: int, min_qty: int) -> None:
        kind = type(out)
        orders = self.orders
        if kind is Accepted:
            orders[out.token] = OrderState(out.token, out.symbol, out.side, out.price, out.qty,
                                           OPEN, out.order_ref, out.seq, tif, min_qty)
            self.open_count += 1
            return
        if kind is Replaced:
            old = orders.get(out.old_token)
            side = symbol = None
            if old is not None:
                old.open_qty = 0
                old.last_seq = out.seq
                self._set_state(old, REPLACED)
                side, symbol, tif = old.side, old.symbol, old.tif
            orders[out.token] = OrderState(out.token, symbol or "", side, out.price, out.qty,
                                           OPEN, out.order_ref, out.seq, tif)
            self.open_count += 1
            return
        order = orders.get(out.token)
        if kind is Rejected:
            if order is None:
                orders[out.token] = OrderState(out.token, "", None, 0, 0, REJECTED, 0, out.seq)
            return
        if order is None:  # an execution or cancel of an order this gateway never saw open
            return
        order.last_seq = out.seq
        if kind is Executed:
            order.open_qty = max(order.open_qty - out.qty, 0)
            order.executed_qty += out.qty
            if order.open_qty == 0 and order.state == OPEN:
                self._set_state(order, FILLED)
        elif kind is Canceled:
            order.open_qty = max(order.open_qty - out.qty, 0)
            if order.open_qty == 0 and order.state == OPEN:
                self._set_state(order, CANCELED)

    def canonical(self) -> bytes:
        parts = [self.name.encode("ascii"), struct.pack(">QQ", len(self.journal), self.open_count)]
        parts += [self.orders[t].canonical() for t in sorted(self.orders)]
        return b"\x00".join(parts)
