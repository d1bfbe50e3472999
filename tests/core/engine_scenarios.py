"""Building blocks for the engine's scenario tests: bodies, a seq-numbering runner, random streams.

``Run`` feeds bodies to one ``Engine`` with consecutive seqs and returns each
message's outputs; ``buy`` / ``sell`` / ``market`` / ``ioc`` build the usual
bodies on ``SYM`` at prices around ``P``; ``random_stream`` is a seeded
mixed stream with collisions, rejects and every body type.
"""

from __future__ import annotations

import random

from reference_impl.core.engine import Engine
from reference_impl.core.messages import (
    Cancel,
    CancelReason,
    Heartbeat,
    LeaderChange,
    NewOrder,
    OrdType,
    RejectReason,
    Replace,
    Sequenced,
    Side,
    Tif,
)

B, S = Side.BUY, Side.SELL
IOC, USER = CancelReason.IOC, CancelReason.USER
R = RejectReason
SYM = "ACME"
P = 1_000_000  # 100.0000


def buy(token, qty, price, **kw):
    return NewOrder(token, kw.pop("symbol", SYM), B, qty, price, **kw)


def sell(token, qty, price, **kw):
    return NewOrder(token, kw.pop("symbol", SYM), S, qty, price, **kw)


def market(token, side, qty, **kw):
    return NewOrder(token, SYM, side, qty, 0, OrdType.MARKET, Tif.IOC, **kw)


def ioc(token, side, qty, price, min_qty=0):
    return NewOrder(token, SYM, side, qty, price, OrdType.LIMIT, Tif.IOC, min_qty)


def msg(seq, account, body):
    return Sequenced(seq, 1_700_000_000_000_000_000 + seq, 1, 1, seq, account, body)


class Run:
    """Feeds bodies with consecutive seqs; ``run(account, body)`` returns that message's outputs."""

    def __init__(self, instruments=None):
        self.engine = Engine(instruments)
        self.seq = 0

    def __call__(self, account, body):
        self.seq += 1
        return self.engine.apply(msg(self.seq, account, body))


def random_stream(seed: int, count: int) -> list[Sequenced]:
    """A mixed stream with collisions, rejects and every body type."""
    rng = random.Random(seed)
    accounts = ["A", "B", "C"]
    symbols = ["ACME", "XYZ", "acme"]
    msgs = []
    for seq in range(1, count + 1):
        account = rng.choice(accounts)
        token = f"t{rng.randrange(60)}"
        kind = rng.random()
        side = rng.choice([B, S])
        price = P + 100 * rng.randint(-5, 5) + (1 if rng.random() < 0.03 else 0)
        qty = rng.choice([0, 1, 5, 10, 25, 50, 100])
        if kind < 0.45:
            body = NewOrder(token, rng.choice(symbols), side, qty, price)
        elif kind < 0.55:
            body = NewOrder(token, "ACME", side, qty, price, OrdType.LIMIT, Tif.IOC,
                            rng.choice([0, 0, qty, 1, qty + 1]))
        elif kind < 0.6:
            body = NewOrder(token, "ACME", side, qty, 0, OrdType.MARKET, Tif.IOC)
        elif kind < 0.8:
            body = Cancel(token, rng.choice([0, 0, 5, 30, 200]))
        elif kind < 0.95:
            body = Replace(token, f"t{rng.randrange(60)}", qty, price)
        elif kind < 0.97:
            body = LeaderChange(seq, 1)
        else:
            body = Heartbeat()
        msgs.append(msg(seq, account, body))
    return msgs


def apply_all(engine, msgs):
    return [engine.apply(m) for m in msgs]
