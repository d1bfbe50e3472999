"""Engine ``apply()`` throughput on the standard mix, against a minimal naive book.

Standard mix (per timed message, drawn with a seeded ``random.Random``):

====================  ======  ==============================================
kind                  share   shape
====================  ======  ==============================================
limit DAY             60 %    passive (1..30 ticks behind the mid on its own
                              side) or, with a probability that grows with
                              the book's depth, marketable (0..3 ticks
                              through the mid): this holds each book near
                              ``--depth`` resting orders
IOC limit             10 %    0..3 ticks through the mid
FOK (IOC, min = qty)   2 %    0..3 ticks through the mid
market (IOC)           3 %    price 0
cancel                20 %    of a live order (tracked exactly): 80 % cancel
                              all (size 0), 20 % reduce to a smaller size
replace                5 %    of a live order: new token, new qty, passive
                              price on the order's own side
====================  ======  ==============================================

4 symbols (tick 100, mid 100.0000), 8 accounts, qty 1..500, one new token
per order. Before the timed part the books are warmed up with ``--depth``
passive limit orders per symbol, then 20,000 messages of the mix let the
depth settle; the warm-up is applied untimed to a fresh engine (and a fresh
naive book) before each timed repetition. The stream is generated once by
driving a scratch engine, so cancels and replaces always name a live order,
then pre-built as ``Sequenced`` messages; the timing loop is only
``for m in stream: apply(m)``. Engine and naive runs alternate (so that load
from elsewhere hits both alike); each figure is the best of ``--repeat`` runs,
timed with time.perf_counter. The cyclic GC stays on unless ``--no-gc``.

The engine is whichever build this process imports (printed with the
figures): compiled with Cython when the install could build it, else the
plain source; ``--pure`` (or ``CRUCIBLE_PURE_PYTHON=1``) measures the source
(reference_impl/core_build.py). The naive book is always plain Python.

Run: ``python benchmarks/engine_throughput.py [--pure] [--messages N] [--json FILE]``
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# first, so that the checkout this script sits in is measured, not an installed one
sys.path[:0] = [str(_HERE.parent), str(_HERE)]

from naive_book import NaiveBook  # noqa: E402

from reference_impl import core_build  # noqa: E402
from reference_impl.core.messages import (  # noqa: E402
    Cancel,
    NewOrder,
    OrdType,
    Replace,
    Sequenced,
    Side,
    Tif,
)

SYMBOLS = ("ACME", "GLOBEX", "INITECH", "UMBRELLA")
ACCOUNTS = tuple(f"ACC{i}" for i in range(8))
MIX = (("limit", 60), ("ioc", 10), ("fok", 2), ("market", 3), ("cancel", 20), ("replace", 5))
MID = 1_000_000
TICK = 100
PASSIVE_TICKS = 30
MAX_QTY = 500
SETTLE = 20_000


class StreamBuilder:
    """Generates the mix while applying it to a scratch engine to track live orders."""

    def __init__(self, seed: int, depth: int) -> None:
        self.rng = random.Random(seed)
        self.depth = depth
        self.engine = _engine()
        self.seq = 0
        self.token_no = 0
        self.live: list[tuple[str, str, str]] = []  # (account, token, symbol)
        self.where: dict[tuple[str, str], int] = {}
        self.per_symbol = Counter()
        self.kinds = Counter()
        self._kind_names = [k for k, _ in MIX]
        self._kind_weights = [w for _, w in MIX]

    def _token(self) -> str:
        self.token_no += 1
        return f"T{self.token_no:09d}"

    def _passive(self, is_buy: bool) -> int:
        ticks = self.rng.randint(1, PASSIVE_TICKS)
        return MID - ticks * TICK if is_buy else MID + ticks * TICK

    def _through(self, is_buy: bool) -> int:
        ticks = self.rng.randint(0, 3)
        return MID + ticks * TICK if is_buy else MID - ticks * TICK

    def _track(self, account: str, token: str, symbol: str) -> None:
        key = (account, token)
        alive = self.engine.live_order(account, token) is not None
        i = self.where.get(key)
        if alive and i is None:
            self.where[key] = len(self.live)
            self.live.append((account, token, symbol))
            self.per_symbol[symbol] += 1
        elif not alive and i is not None:
            del self.where[key]
            last = self.live.pop()
            if i < len(self.live):
                self.live[i] = last
                self.where[(last[0], last[1])] = i
            self.per_symbol[symbol] -= 1

    def _emit(self, account: str, body, symbol: str, out: list[Sequenced]) -> None:
        self.seq += 1
        msg = Sequenced(self.seq, 1_700_000_000_000_000_000 + self.seq * 1000, 1, 1, self.seq,
                        account, body)
        out.append(msg)
        touched = {(o.account, o.token) for o in self.engine.apply(msg)}
        if isinstance(body, Replace):
            touched.add((account, body.token))
        owners = {}
        for acc, tok in sorted(touched):
            i = self.where.get((acc, tok))
            owners[(acc, tok)] = self.live[i][2] if i is not None else symbol
        for (acc, tok), sym in owners.items():
            self._track(acc, tok, sym)

    def warm(self, out: list[Sequenced]) -> None:
        r = self.rng
        for _ in range(self.depth):
            for symbol in SYMBOLS:
                is_buy = r.random() < 0.5
                body = NewOrder(self._token(), symbol, Side.BUY if is_buy else Side.SELL,
                                r.randint(1, MAX_QTY), self._passive(is_buy))
                self._emit(r.choice(ACCOUNTS), body, symbol, out)

    def mix(self, count: int, out: list[Sequenced]) -> None:
        r = self.rng
        for _ in range(count):
            kind = r.choices(self._kind_names, self._kind_weights)[0]
            self.kinds[kind] += 1
            if kind in ("cancel", "replace"):
                account, token, symbol = self.live[r.randrange(len(self.live))]
                if kind == "cancel":
                    size = 0 if r.random() < 0.8 else r.randint(1, MAX_QTY)
                    self._emit(account, Cancel(token, size), symbol, out)
                else:
                    order = self.engine.live_order(account, token)
                    is_buy = order.level.half.is_buy
                    body = Replace(token, self._token(), r.randint(1, MAX_QTY),
                                   self._passive(is_buy))
                    self._emit(account, body, symbol, out)
                continue
            symbol = r.choice(SYMBOLS)
            is_buy = r.random() < 0.5
            side = Side.BUY if is_buy else Side.SELL
            qty = r.randint(1, MAX_QTY)
            if kind == "limit":
                cross = min(0.9, 0.66 * self.per_symbol[symbol] / self.depth)
                price = self._through(is_buy) if r.random() < cross else self._passive(is_buy)
                body = NewOrder(self._token(), symbol, side, qty, price)
            elif kind == "market":
                body = NewOrder(self._token(), symbol, side, qty, 0, OrdType.MARKET, Tif.IOC)
            else:
                min_qty = qty if kind == "fok" else 0
                body = NewOrder(self._token(), symbol, side, qty, self._through(is_buy),
                                OrdType.LIMIT, Tif.IOC, min_qty)
            self._emit(r.choice(ACCOUNTS), body, symbol, out)


def build_stream(seed: int = 1, messages: int = 300_000, depth: int = 1000,
                 settle: int = SETTLE) -> tuple[list[Sequenced], list[Sequenced], dict]:
    """``(warm-up, timed, info)``: the warm-up brings fresh books to the timed part's start."""
    b = StreamBuilder(seed, depth)
    warm: list[Sequenced] = []
    b.warm(warm)
    b.mix(settle, warm)
    start_depth = {s: b.per_symbol[s] for s in SYMBOLS}
    b.kinds.clear()
    timed: list[Sequenced] = []
    b.mix(messages, timed)
    info = {
        "seed": seed,
        "messages": messages,
        "warmup_messages": len(warm),
        "resting_per_book_at_start": start_depth,
        "resting_per_book_at_end": {s: b.per_symbol[s] for s in SYMBOLS},
        "mix": {k: b.kinds[k] for k, _ in MIX},
        "matches": b.engine.last_match_id,
    }
    return warm, timed, info


def time_apply(apply: Callable[[Sequenced], object], warm: list[Sequenced],
               timed: list[Sequenced]) -> float:
    """Seconds ``apply`` takes over ``timed``, after it has seen ``warm``."""
    for m in warm:
        apply(m)
    t0 = time.perf_counter()
    for m in timed:
        apply(m)
    return time.perf_counter() - t0


def _engine():  # type: ignore[no-untyped-def]
    """A fresh engine of the build this process runs (imported late, so ``--pure`` can choose)."""
    from reference_impl.core.engine import Engine

    return Engine()


def time_engine(warm: list[Sequenced], timed: list[Sequenced]) -> float:
    return time_apply(_engine().apply, warm, timed)


def time_naive(warm: list[Sequenced], timed: list[Sequenced]) -> float:
    return time_apply(NaiveBook().apply, warm, timed)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--messages", type=int, default=300_000)
    p.add_argument("--depth", type=int, default=1000, help="resting orders per book")
    p.add_argument("--repeat", type=int, default=5, help="runs of each; the best counts")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-gc", action="store_true", help="disable the cyclic GC while timing")
    p.add_argument("--pure", action="store_true",
                   help="measure the engine's plain-Python source even where a compiled build exists")
    p.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    args = p.parse_args(argv)
    if args.pure:
        core_build.prefer_source()
    build = core_build.core_build()

    warm, timed, info = build_stream(args.seed, args.messages, args.depth)
    if args.no_gc:
        gc.disable()
    engine_runs, naive_runs = [], []
    for _ in range(args.repeat):  # interleaved, so that a burst of load hits both alike
        engine_runs.append(time_engine(warm, timed))
        naive_runs.append(time_naive(warm, timed))
    gc.enable()
    engine_s, naive_s = min(engine_runs), min(naive_runs)
    engine_ops = len(timed) / engine_s
    naive_ops = len(timed) / naive_s
    figures = {
        **info,
        "engine_ops_per_s": round(engine_ops),
        "naive_ops_per_s": round(naive_ops),
        "ratio": round(engine_ops / naive_ops, 3),
        "repeat": args.repeat,
        "engine_runs_s": [round(t, 4) for t in engine_runs],
        "naive_runs_s": [round(t, 4) for t in naive_runs],
        "gc": not args.no_gc,
        "core_build": build,
        "python": platform.python_version(),
    }
    print(f"stream: {len(timed)} timed messages after {len(warm)} warm-up, seed {args.seed}; "
          f"mix {info['mix']}")
    print(f"resting orders per book: start {info['resting_per_book_at_start']}, "
          f"end {info['resting_per_book_at_end']}")
    print(f"engine apply(): {engine_ops:,.0f} ops/s (best of {args.repeat}; "
          f"engine {build['engine']}, book {build['book']})")
    print(f"naive book:     {naive_ops:,.0f} ops/s (best of {args.repeat})")
    print(f"ratio engine/naive: {engine_ops / naive_ops:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
