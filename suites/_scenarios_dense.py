"""The dense randomized matching workload: where the order-type rules differ, often.

Theory of operation
-------------------
``generate(rng, n)`` draws ``n`` requests by the scenario accounts (``A``,
``B``, ``C``) on one symbol, at ``LEVELS`` adjacent price levels, so most
orders cross. The mix is weighted toward the rare types (FOK, minimum
quantity, market, reduce, replace), and quantities are small, so a FOK or a
minimum quantity often meets some liquidity but not enough, and a market
order often has a remainder. Cancels, reduces and replaces name one of the
account's open orders (the generator follows its own model of the book).

``replay(machine, steps, ...)`` applies the requests, in order, to anything
with the engine's ``apply`` (``harness.model.Model``, or an engine) and
returns each account's events in a door's words, as the conformance
scenarios' are. A closed-loop client (each request after the last one's
answer) makes the SUT sequence them in that order, so the model's events are
what every account must see. It also counts the **situations** in which a
correct engine and one with a broken order-type rule differ
(``SITUATIONS``): the evidence that the run could have failed such an engine.

``shrink(steps, fails)`` cuts a failing request list down (chunks, then
single requests: a ddmin) while ``fails`` still says it fails; the suite
asks the SUT (``run_dense`` once per candidate, each on a band of its own,
cancelling afterwards what the SUT says still rests), the tests ask a broken
engine.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from _scenarios import ACCOUNTS, MKT, Step, cancel, new, replace
from _scenarios_run import STREAM_WAIT_S, Layout, door_accounts, events_of, open_door, play

from harness.checkers.rule_conformance import DENSE, normalize, parting
from harness.coverage import NEEDS
from harness.history import History
from harness.model import Model
from harness.sut.base import Sut
from reference_impl.core.messages import (
    Cancel,
    Canceled,
    Executed,
    NewOrder,
    OrdType,
    Replace,
    Replaced,
    Sequenced,
    Side,
    Tif,
)
from reference_impl.core.replay_format import output_to_json

LEVELS = 4
SHRINK_WAIT_S = 0.5  #: a shrinking try waits this long for events the model expects
MAX_QTY = 6
#: request kind -> weight
MIX = {"limit": 30, "ioc": 6, "fok": 12, "min_qty": 10, "market": 7, "reduce": 15, "cancel": 4,
       "replace": 16}
#: the situations where a correct engine and a broken order-type rule differ (their one home and
#: minimums: harness.coverage NEEDS)
SITUATIONS = tuple(n.situation for n in NEEDS[DENSE])


class _Plain:
    """The generator's own layout: tokens as they are, one symbol, a level as its price."""

    def prefix(self, i: int) -> str:
        return ""

    def symbol(self, i: int) -> str:
        return "X"

    def price(self, i: int, level: int | None) -> int | None:
        return level


def generate(rng: random.Random, n: int) -> list[Step]:
    """``n`` requests of the dense mix (module doc).

    DAY limits mostly rest on their own side of the middle (buys at the low
    levels, sells at the high ones), so the book keeps depth at few prices;
    the immediate types cross it. The generator keeps a model of its own
    book, so that most cancels, reduces and replaces name an open order (a
    reduce leaving some of it open) and a replace keeps its price half the time.
    """
    kinds, weights = list(MIX), list(MIX.values())
    model, plain = Model({"X": 1}), _Plain()
    low, high = range(1, LEVELS // 2 + 1), range(LEVELS // 2 + 1, LEVELS + 1)
    steps: list[Step] = []
    for k in range(n):
        account, kind, token = rng.choice(ACCOUNTS), rng.choices(kinds, weights)[0], f"t{k}"
        qty, side = rng.randint(1, MAX_QTY), rng.choice("BS")
        passive = rng.choice(low if side == "B" else high)
        aggressive = rng.choice(high if side == "B" else low)
        mine = [r for r in model.resting("X") if r[3] == account]
        if kind in ("reduce", "cancel", "replace") and mine:
            old_side, old_price, _ref, _acct, old, open_ = rng.choice(mine)
            if kind == "replace":
                level = old_price if rng.random() < 0.5 else rng.choice(
                    low if old_side == "B" else high)
                step = replace(account, old, token, qty, level)
            else:
                filled = model.orders()[(account, old)][1]
                step = cancel(account, old, filled + rng.randint(1, open_ - 1)
                              if kind == "reduce" and open_ > 1 else 0)
        elif kind in ("limit", "reduce", "cancel", "replace"):
            step = new(account, token, side, qty, aggressive if rng.random() < 0.2 else passive)
        elif kind == "min_qty":  # large and near its qty: a minimum the book often misses
            qty = rng.randint(3, 2 * MAX_QTY)
            step = new(account, token, side, qty, aggressive, "IOC", rng.randint(qty // 2, qty - 1))
        elif kind == "market":
            step = new(account, token, side, rng.randint(MAX_QTY // 2, 2 * MAX_QTY), MKT)
        else:
            step = new(account, token, side, qty, aggressive, "FOK" if kind == "fok" else "IOC")
        model.apply(Sequenced(k + 1, 0, 0, 0, k + 1, account, body(step, plain, 0)))
        steps.append(step)
    return steps


def body(step: Step, lay: Layout | _Plain, i: int) -> Any:
    """The engine's message body for one request, as the door would sequence it."""
    f, pre = step.fields, lay.prefix(i)
    if step.kind == "cancel":
        return Cancel(pre + f["token"], f["qty"])
    if step.kind == "replace":
        return Replace(pre + f["token"], pre + f["new_token"], f["qty"], lay.price(i, f["price"]))
    price = lay.price(i, f["price"])
    min_qty = f["qty"] if f["tif"] == "FOK" else (f["min_qty"] or 0)
    return NewOrder(pre + f["token"], lay.symbol(i), Side(f["side"]), f["qty"], price or 0,
                    OrdType.MARKET if price is None else OrdType.LIMIT,
                    Tif.DAY if f["tif"] == "DAY" else Tif.IOC, min_qty)


def replay(machine: Any, steps: Sequence[Step], lay: Layout, i: int, names: dict[str, str],
           origin: dict[str, list[int]] | None = None) -> tuple[dict[str, list[list]], Counter]:
    """Each account's events for ``steps`` applied to ``machine``, and the situations seen.

    ``names`` maps a scenario account to the SUT's account name; ``origin``, if
    given, gets the index of the step behind each event.
    """
    by_name = {n: a for a, n in names.items()}
    events: dict[str, list[list]] = {a: [] for a in names}
    origin = {a: [] for a in names} if origin is None else origin
    origin.update({a: [] for a in names})
    situations: Counter = Counter()
    for seq, step in enumerate(steps, start=1):
        msg = body(step, lay, i)
        before = {(o.account, o.token): o for o in _resting(machine, lay.symbol(i))}
        outs = machine.apply(Sequenced(seq, 0, 0, 0, seq, names[step.account], msg))
        if isinstance(machine, Model):
            _count(situations, msg, outs, before, names[step.account])
        for o in outs:
            ev = normalize(output_to_json(o), lay.prefix(i))
            if ev[0] == "rejected":
                ev[2] = lay.reject_reads(ev[2], "cancel_rejected" if step.kind == "cancel"
                                         else "rejected")
            events[by_name[o.account]].append(ev)
            origin[by_name[o.account]].append(seq - 1)
    return events, situations


class _Resting:
    __slots__ = ("account", "open", "price", "ref", "side", "token")

    def __init__(self, row: tuple) -> None:
        self.side, self.price, self.ref, self.account, self.token, self.open = row


def _resting(machine: Any, symbol: str) -> list[_Resting]:
    """The symbol's resting orders where the machine shows them (the model), else none."""
    return [_Resting(r) for r in machine.resting(symbol)] if isinstance(machine, Model) else []


def _count(situations: Counter, msg: Any, outs: list, before: dict, account: str) -> None:
    """Count the situations of one step (module doc) from the model's book before it."""
    rest = list(before.values())
    if type(msg) is NewOrder:
        crossing = sum(o.open for o in rest if o.side != msg.side and (
            msg.ord_type == OrdType.MARKET
            or (o.price <= msg.price if msg.side == Side.BUY else o.price >= msg.price)))
        need = msg.min_qty or msg.qty
        if msg.min_qty and 0 < crossing < need:
            situations["fok_meets_too_little" if msg.min_qty == msg.qty
                       else "min_qty_meets_too_little"] += 1
        if msg.ord_type == OrdType.MARKET and any(type(o) is Executed for o in outs) \
                and type(outs[-1]) is Canceled:
            situations["market_remainder"] += 1
    elif type(msg) is Cancel:
        me = before.get((account, msg.token))
        if me is not None and type(outs[0]) is Canceled and 0 < outs[0].qty < me.open and any(
                o.side == me.side and o.price == me.price and o.ref > me.ref for o in rest):
            situations["reduce_ahead_of_others"] += 1
    elif type(msg) is Replace and type(outs[0]) is Replaced:
        me = before.get((account, msg.token))
        if me is not None and any(o.side == me.side and o.price == msg.price and o is not me
                                  for o in rest):
            situations["replace_behind_others"] += 1


def shrink(steps: list[Step], fails: Callable[[list[Step]], bool], budget: int = 200) -> list[Step]:
    """A shorter list that still ``fails`` (ddmin over chunks; at most ``budget`` tries)."""
    parts, tries = 2, 0
    while len(steps) > 1 and tries < budget:
        size = -(-len(steps) // parts)
        for start in range(0, len(steps), size):
            candidate = steps[:start] + steps[start + size:]
            tries += 1
            if candidate and fails(candidate):
                steps, parts = candidate, max(parts - 1, 2)
                break
            if tries >= budget:
                break
        else:
            if parts >= len(steps):
                break
            parts = min(len(steps), parts * 2)
    return steps


def run_dense(sut: Sut, door: str, history: History, nonce: str, steps: Sequence[Step],
              i: int, wait_s: float = STREAM_WAIT_S) -> dict[str, Any]:
    """``steps`` through ``door`` as run ``i``: ``expected`` (the model's), ``seen``,
    ``situations``, ``unknown``; then the orders the SUT still shows open are canceled."""
    lay, accounts = Layout(sut, door, nonce), door_accounts(sut)
    names = {a: name for a, (name, _pw) in accounts.items()}
    origin: dict[str, list[int]] = {}
    expected, situations = replay(Model(sut.instruments()), steps, lay, i, names, origin)
    with contextlib.ExitStack() as stack:
        clients, read = open_door(sut, door, accounts, history, stack)
        unknown = play(clients, lay, i, steps)
        seen = events_of(read({a: len(v) for a, v in expected.items()}, wait_s), lay.prefix(i))
        play(clients, lay, i, [cancel(a, t) for a, evs in seen.items() for t in open_tokens(evs)])
    return {"door": door, "requests": len(steps), "expected": expected, "seen": seen,
            "situations": dict(situations), "unknown": unknown,
            "first_bad_step": first_bad_step(expected, seen, origin, len(steps))}


def first_bad_step(expected: dict[str, list[list]], seen: dict[str, list[list]],
                   origin: dict[str, list[int]], n: int) -> int | None:
    """The earliest step whose events the SUT got wrong (None: none): what a reproduction
    needs at most is the steps up to it."""
    bad = []
    for a in set(expected) | set(seen):
        at = parting(expected.get(a, []), seen.get(a, []))
        if at is not None:
            bad.append(origin[a][at] if at < len(origin.get(a, [])) else n - 1)
    return min(bad) if bad else None


def open_tokens(events: Sequence[list]) -> list[str]:
    """The tokens an account's own events leave open (accepted or replaced, not all done)."""
    open_: dict[str, int] = {}
    for kind, token, *rest in events:
        if kind == "accepted":
            open_[token] = rest[1]
        elif kind == "replaced":
            open_.pop(rest[0], None)
            open_[token] = rest[1]
        elif kind in ("executed", "canceled") and token in open_:
            open_[token] -= rest[0]
    return [t for t, q in open_.items() if q > 0]


def describe(step: Step) -> str:
    """One request as a line of a reproduction."""
    f = step.fields
    if step.kind == "cancel":
        return f"{step.account} cancel {f['token']} to {f['qty']}"
    if step.kind == "replace":
        return f"{step.account} replace {f['token']} by {f['new_token']} {f['qty']}@{f['price']}"
    price = "market" if f["price"] is None else f"@{f['price']}"
    extra = f" min {f['min_qty']}" if f["min_qty"] else ""
    return f"{step.account} new {f['token']} {f['side']} {f['qty']}{price} {f['tif']}{extra}"


def shrink_on_sut(sut: Sut, run: dict[str, Any], steps: list[Step], history: History,
                  nonce: str, first_run: int, deadline_s: float) -> list[Step]:
    """``shrink`` a failing run's requests, asking the SUT, until ``deadline_s`` from now;
    the steps after the first one the SUT got wrong go first."""
    deadline, runs = time.monotonic() + deadline_s, iter(range(first_run, 1000))
    steps = steps[:run["first_bad_step"] + 1] if run.get("first_bad_step") is not None else steps
    door = "ouch" if sut.offers("ouch") else run["door"]  # its sessions keep no stream to reopen

    def fails(candidate: list[Step]) -> bool:
        if time.monotonic() > deadline:
            return False
        return differs(run_dense(sut, door, history, nonce, candidate, next(runs, 999),
                                 SHRINK_WAIT_S))

    return shrink(steps, fails)


def differs(run: dict[str, Any]) -> bool:
    """Whether a run that got every answer shows some account events other than the model's."""
    return not run["unknown"] and any(
        parting(run["expected"].get(a, []), run["seen"].get(a, [])) is not None
        for a in set(run["expected"]) | set(run["seen"]))
