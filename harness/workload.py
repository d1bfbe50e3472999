"""Seeded order-flow generators: the same seed gives the same stream, always.

A workload is a pure function of its parameters and a ``random.Random``
passed in: the load generator, the suites, the benchmarks and the shipped
sample file all draw from it, so a failing run can be replayed exactly from
its seed. Prices sit on a grid around a mid; ``cross_rate`` is the share of
limit orders priced through the opposite side, which sets how much trades.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from reference_impl.core.messages import (
    Body,
    Cancel,
    NewOrder,
    OrdType,
    Replace,
    Sequenced,
    Side,
    Tif,
)

#: The documented standard mix (weights in percent).
STANDARD_MIX = {"limit": 60, "ioc": 10, "fok": 2, "market": 3, "cancel": 20, "replace": 5}


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    symbols: Sequence[str] = ("ACME", "GLOBEX", "INITECH", "UMBRELLA")
    accounts: Sequence[str] = ("DEMO1", "DEMO2", "DEMO3", "DEMO4")
    mix: dict[str, int] | None = None  #: weights by kind; None means STANDARD_MIX
    mid: int = 1_000_000  #: 100.0000
    tick: int = 100
    depth_ticks: int = 50  #: resting orders spread over this many ticks each side
    cross_rate: float = 0.15
    max_qty: int = 500
    live_window: int = 2000  #: how many recent tokens per account cancels/replaces pick from


class OrderFlow:
    """An endless, seeded stream of (account, body) client requests."""

    def __init__(self, spec: WorkloadSpec, rng: random.Random) -> None:
        self.spec = spec
        self._rng = rng
        mix = spec.mix or STANDARD_MIX
        self._kinds = list(mix)
        self._weights = [mix[k] for k in self._kinds]
        self._next_token = 0
        self._live: dict[str, list[tuple[str, str]]] = {a: [] for a in spec.accounts}

    def _token(self) -> str:
        self._next_token += 1
        return f"T{self._next_token:013d}"

    def _price(self, side: Side) -> int:
        s, r = self.spec, self._rng
        if r.random() < s.cross_rate:
            offset = -r.randint(0, 3)  # through the touch
        else:
            offset = r.randint(1, s.depth_ticks)
        ticks = -offset if side is Side.BUY else offset
        return max(s.tick, s.mid + ticks * s.tick)

    def _new(self, account: str, kind: str) -> NewOrder:
        r, s = self._rng, self.spec
        side = Side.BUY if r.random() < 0.5 else Side.SELL
        symbol = r.choice(s.symbols)
        qty = r.randint(1, s.max_qty)
        token = self._token()
        live = self._live[account]
        live.append((token, symbol))
        if len(live) > s.live_window:
            del live[: len(live) - s.live_window]
        if kind == "market":
            return NewOrder(token, symbol, side, qty, 0, OrdType.MARKET, Tif.IOC)
        tif = Tif.DAY if kind == "limit" else Tif.IOC
        min_qty = qty if kind == "fok" else 0
        return NewOrder(token, symbol, side, qty, self._price(side), OrdType.LIMIT, tif, min_qty)

    def next(self) -> tuple[str, Body]:
        r = self._rng
        account = r.choice(self.spec.accounts)
        kind = r.choices(self._kinds, self._weights)[0]
        live = self._live[account]
        if kind in ("cancel", "replace") and live:
            i = r.randrange(len(live))
            token, symbol = live[i]
            if kind == "cancel":
                live[i] = live[-1]
                live.pop()
                return account, Cancel(token, 0 if r.random() < 0.8 else r.randint(1, self.spec.max_qty))
            new_token = self._token()
            live[i] = (new_token, symbol)
            side = Side.BUY if r.random() < 0.5 else Side.SELL
            return account, Replace(token, new_token, r.randint(1, self.spec.max_qty), self._price(side))
        if kind in ("cancel", "replace"):
            kind = "limit"
        return account, self._new(account, kind)

    def sequenced(self, count: int, first_seq: int = 1, ts0: int = 1_700_000_000_000_000_000,
                  ts_step: int = 1000) -> Iterator[Sequenced]:
        """``count`` requests stamped as a sequencer would (for replay files and benchmarks)."""
        for i in range(count):
            account, body = self.next()
            seq = first_seq + i
            yield Sequenced(seq, ts0 + i * ts_step, 0, 0, seq, account, body)
