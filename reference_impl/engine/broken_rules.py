"""TEST-ONLY broken variants of the engine: an implementer's mistakes in the order-type rules.

Each is switched on only by its config fault (see docs/config.md) and breaks
one rule of docs/matching-rules.md the way a small source edit would:

- ``fok_partial_fill``: a fill-or-kill (min_qty = qty) is run as a plain IOC,
  so it partly fills (R6);
- ``min_qty_ignored``: a minimum quantity below the order's qty is dropped (R7);
- ``market_remainder_rests``: a market order's unfilled remainder rests at its
  last execution price instead of being canceled (R8);
- ``reduce_loses_priority``: a reduced order goes to the back of its level (R9);
- ``replace_keeps_priority``: a replace at the same price takes the old
  order's place in the queue (R11).

The matching-rules conformance suite must fail each. They live outside
``core/`` so that the real engine carries no hook; ``engine_class`` is what
the engine node asks.
"""

from __future__ import annotations

import dataclasses

from reference_impl.config import ClusterConfig
from reference_impl.core.book import Level, Order
from reference_impl.core.engine import Engine
from reference_impl.core.messages import (
    Cancel,
    Canceled,
    CancelReason,
    Executed,
    NewOrder,
    OrdType,
    Output,
    Replace,
    Replaced,
    Side,
)


class FokPartialFillEngine(Engine):
    """Reads a fill-or-kill as a plain IOC."""

    def _on_new_order(self, seq: int, account: str, body: NewOrder) -> list[Output]:
        if body.min_qty and body.min_qty == body.qty:
            body = dataclasses.replace(body, min_qty=0)
        return super()._on_new_order(seq, account, body)


class MinQtyIgnoredEngine(Engine):
    """Drops a minimum quantity that is not the whole order."""

    def _on_new_order(self, seq: int, account: str, body: NewOrder) -> list[Output]:
        if body.min_qty and body.min_qty != body.qty:
            body = dataclasses.replace(body, min_qty=0)
        return super()._on_new_order(seq, account, body)


class MarketRemainderRestsEngine(Engine):
    """Rests a market order's remainder at its last execution price (market-to-limit)."""

    def _on_new_order(self, seq: int, account: str, body: NewOrder) -> list[Output]:
        out = super()._on_new_order(seq, account, body)
        last = out[-1]
        fills = [o for o in out if type(o) is Executed and o.liquidity == "R"]
        if (body.ord_type == OrdType.MARKET and fills and type(last) is Canceled
                and last.reason == CancelReason.IOC):
            out.pop()
            book = self._books[body.symbol]
            self._live[account][body.token] = book.rest(
                account, body.token, body.side == Side.BUY,
                fills[-1].price, body.qty, last.qty, out[0].order_ref)
        return out


def _move(order: Order, ahead: int) -> None:
    """Put ``order`` behind exactly ``ahead`` of the other live orders of its level."""
    level: Level = order.level
    level.remove(order)
    live = 0
    for i, o in enumerate(level):
        if live == ahead:
            level.insert(i, order)
            return
        live += 1 if o.open else 0
    level.append(order)


class ReduceLosesPriorityEngine(Engine):
    """Sends a reduced order to the back of its level."""

    def _on_cancel(self, seq: int, account: str, body: Cancel) -> list[Output]:
        out = super()._on_cancel(seq, account, body)
        order = self.live_order(account, body.token)
        if order is not None and type(out[0]) is Canceled and out[0].qty:
            _move(order, sum(1 for o in order.level if o.open) - 1)
        return out


class ReplaceKeepsPriorityEngine(Engine):
    """Gives a replace at the same price the old order's place in the queue."""

    def _on_replace(self, seq: int, account: str, body: Replace) -> list[Output]:
        old = self.live_order(account, body.token)
        ahead = None
        if old is not None and old.level.price == body.price:
            ahead = 0
            for o in old.level:
                if o is old:
                    break
                ahead += 1 if o.open else 0
        out = super()._on_replace(seq, account, body)
        new = self.live_order(account, body.new_token)
        if ahead is not None and type(out[0]) is Replaced and new is not None:
            _move(new, ahead)
        return out


#: config fault -> the engine class it runs
VARIANTS: dict[str, type[Engine]] = {
    "fok_partial_fill": FokPartialFillEngine,
    "min_qty_ignored": MinQtyIgnoredEngine,
    "market_remainder_rests": MarketRemainderRestsEngine,
    "reduce_loses_priority": ReduceLosesPriorityEngine,
    "replace_keeps_priority": ReplaceKeepsPriorityEngine,
}


def engine_class(cfg: ClusterConfig) -> type[Engine]:
    """The broken engine the config's faults ask for, else the real one."""
    for name, cls in VARIANTS.items():
        if cfg.broken(name):
            return cls
    return Engine
