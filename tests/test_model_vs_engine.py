"""Differential test: the reference engine against the naive model, step by step.

A hypothesis ``RuleBasedStateMachine`` sends the same sequenced messages to
``reference_impl.core.engine.Engine`` and ``harness.model.Model``: limit,
market, IOC, FOK and min_qty orders on a few symbols with prices on a small
grid around a mid (so crossing is frequent), cancels and replaces of live and
unknown tokens, control messages, re-sent old seqs, and a snapshot/restore of
the engine now and then. A few values are invalid on purpose so every reject
path runs.

After every step: the two output lists are identical; and on the model's
state and the engine's outputs, the book is not crossed, every order's
quantity is conserved, and every execution took the best-priced, earliest
resting order (checked against the model's book *before* the step).

Profiles: ``model-vs-engine`` (default: 200 examples of 50 steps) and
``model-vs-engine-long`` (2,000 examples); pick with the environment variable
``CRUCIBLE_MODEL_PROFILE``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from harness.model import Model
from reference_impl.core.engine import Engine
from reference_impl.core.messages import (
    Cancel,
    Executed,
    Heartbeat,
    LeaderChange,
    NewOrder,
    OrdType,
    Replace,
    Sequenced,
    Side,
    SnapshotRequest,
    Tif,
)
from reference_impl.core.rules import Instruments  # only to configure the engine

settings.register_profile(
    "model-vs-engine",
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "model-vs-engine-long",
    max_examples=2000,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = os.environ.get("CRUCIBLE_MODEL_PROFILE", "model-vs-engine")

TICKS = {"AAA": 100, "BBB": 500}
MIDS = {"AAA": 10_000, "BBB": 50_000}
ACCOUNTS = ("A1", "B2", "C3")
SIDES = (Side.BUY, Side.SELL)

controls = st.one_of(
    st.builds(LeaderChange, st.integers(1, 5), st.integers(1, 2)),
    st.builds(SnapshotRequest, st.integers(1, 9)),
    st.just(Heartbeat()),
)


def fmt(outputs):
    """Outputs as comparable plain values (type name + fields; enums by value)."""
    return [
        (type(o).__name__,) + tuple(getattr(v, "value", v) for v in o) for o in outputs
    ]


class ModelVsEngine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.seq = 0
        self.sent: list[Sequenced] = []
        self.token_counter = 0
        self.used: list[str] = []
        self.tick_by_symbol = None
        self.instruments = None
        self.engine = None
        self.model = None

    @initialize(with_instruments=st.booleans())
    def start(self, with_instruments):
        self.tick_by_symbol = dict(TICKS) if with_instruments else None
        self.instruments = Instruments(TICKS) if with_instruments else None
        self.engine = Engine(self.instruments)
        self.model = Model(self.tick_by_symbol)

    # ------------------------------------------------------------ choosers

    def token(self, data):
        kind = data.draw(st.integers(0, 99), label="token kind")
        if kind < 90 or not self.used:
            self.token_counter += 1
            token = f"t{self.token_counter}"
            self.used.append(token)
            return token
        if kind < 97:
            return data.draw(st.sampled_from(self.used), label="reused token")
        return data.draw(st.sampled_from(["", "a b", "x" * 15, "caf\u00e9"]), label="bad token")

    def symbol(self, data):
        kind = data.draw(st.integers(0, 99), label="symbol kind")
        if kind < 60:
            return "AAA"
        if kind < 95:
            return "BBB"
        return "ZZZ" if kind < 98 else "bad"  # ZZZ: unknown only with instruments

    def qty(self, data):
        kind = data.draw(st.integers(0, 99), label="qty kind")
        if kind < 95:
            return data.draw(st.integers(1, 12), label="qty")
        return data.draw(st.sampled_from([0, -1, 1_000_000, 1_000_001]), label="edge qty")

    def price(self, data, symbol):
        kind = data.draw(st.integers(0, 99), label="price kind")
        tick = TICKS.get(symbol, 100)
        mid = MIDS.get(symbol, 10_000)
        if kind < 95:
            return mid + tick * data.draw(st.integers(-3, 3), label="ticks from mid")
        if kind < 97:
            return mid + 50  # off every tick
        if kind < 98:
            return mid + 100  # off BBB's tick when instruments are set
        return data.draw(st.sampled_from([0, -100, 1_999_999_900, 2_000_000_000]), label="edge")

    def pick_order(self, data):
        """(account, token): mostly a live order of the model's, else something unknown."""
        live = [
            (r[3], r[4]) for sym in self.model.symbols() for r in self.model.resting(sym)
        ]
        kind = data.draw(st.integers(0, 99), label="target kind")
        if live and kind < 85:
            return data.draw(st.sampled_from(live), label="live order")
        account = data.draw(st.sampled_from(ACCOUNTS), label="account")
        if self.used and kind < 95:
            return account, data.draw(st.sampled_from(self.used), label="used token")
        return account, data.draw(st.sampled_from(["nope", "", "a b"]), label="unknown token")

    # ---------------------------------------------------------------- rules

    def new_order(self, data):
        account = data.draw(st.sampled_from(ACCOUNTS), label="account")
        symbol = self.symbol(data)
        side = data.draw(st.sampled_from(SIDES), label="side")
        qty = self.qty(data)
        token = self.token(data)
        kind = data.draw(st.integers(0, 99), label="order kind")
        ord_type, tif, min_qty = OrdType.LIMIT, Tif.DAY, 0
        if kind < 60:
            pass  # limit DAY
        elif kind < 70:
            tif = Tif.IOC
        elif kind < 78:
            ord_type = data.draw(st.sampled_from([OrdType.LIMIT, OrdType.MARKET]), label="ot")
            tif, min_qty = Tif.IOC, qty  # FOK
        elif kind < 85:
            ord_type = data.draw(st.sampled_from([OrdType.LIMIT, OrdType.MARKET]), label="ot")
            tif = Tif.IOC
            min_qty = data.draw(st.integers(1, max(1, qty)), label="min_qty")
        elif kind < 94:
            ord_type = OrdType.MARKET
            tif = data.draw(st.sampled_from([Tif.IOC, Tif.DAY]), label="market tif")
        elif kind < 96:
            tif = data.draw(st.sampled_from([Tif.DAY, Tif.IOC]), label="tif")
            min_qty = data.draw(st.sampled_from([qty + 1, -1, 3]), label="odd min_qty")
        else:
            tif = data.draw(st.sampled_from([2, -1, 99]), label="bad tif")
            min_qty = data.draw(st.sampled_from([0, 0, 1]), label="min_qty with bad tif")
        price = 0 if ord_type is OrdType.MARKET else self.price(data, symbol)
        self.step(account, NewOrder(token, symbol, side, qty, price, ord_type, tif, min_qty))

    # Three rules with one body: hypothesis picks rules uniformly, and new orders
    # should be about half of all steps so that books fill up and cross.
    @rule(data=st.data())
    def new_order_1(self, data):
        self.new_order(data)

    @rule(data=st.data())
    def new_order_2(self, data):
        self.new_order(data)

    @rule(data=st.data())
    def new_order_3(self, data):
        self.new_order(data)

    @rule(data=st.data())
    def cancel(self, data):
        account, token = self.pick_order(data)
        kind = data.draw(st.integers(0, 99), label="size kind")
        if kind < 95:
            size = data.draw(st.integers(0, 15), label="size")
        else:
            size = data.draw(st.sampled_from([-1, 2**32 - 1, 2**32]), label="edge size")
        self.step(account, Cancel(token, size))

    @rule(data=st.data())
    def replace(self, data):
        account, token = self.pick_order(data)
        order = self.model.find_live(account, token)
        symbol = order.symbol if order is not None else "AAA"
        qty = self.qty(data)
        price = self.price(data, symbol)
        self.step(account, Replace(token, self.token(data), qty, price))

    @rule(data=st.data())
    def other(self, data):
        """A control message, a re-sent old seq, or an engine snapshot/restore."""
        kind = data.draw(st.integers(0, 2), label="other kind")
        if kind == 0:
            self.step("", data.draw(controls, label="control"))
        elif kind == 1 and self.sent:
            old = data.draw(st.sampled_from(self.sent), label="old message")
            assert self.engine.apply(old) == []
            assert self.model.apply(old) == []
        else:
            self.snapshot_restore()

    def snapshot_restore(self):
        before = self.engine.state_hash()
        blob = self.engine.snapshot()
        self.engine = Engine.restore(blob, self.instruments)
        assert self.engine.state_hash() == before
        assert self.engine.snapshot() == blob

    # ------------------------------------------------------------ one step

    def step(self, account, body):
        self.seq += 1
        msg = Sequenced(self.seq, 1_700_000_000_000_000_000 + self.seq, 1, 0, self.seq,
                        account, body)
        self.sent.append(msg)
        books_before = {sym: self.model.resting(sym) for sym in self.model.symbols()}
        aggressor = self.aggressor_of(account, body)
        got = self.engine.apply(msg)
        want = self.model.apply(msg)
        assert fmt(got) == fmt(want), f"seq {self.seq} {body!r}"
        if not isinstance(body, (NewOrder, Cancel, Replace)):
            assert got == []
        else:
            assert got and got[0].account == account
        assert self.engine.last_applied_seq == self.model.last_applied_seq == self.seq
        if aggressor is not None:
            check_priority(got, books_before, *aggressor)

    def aggressor_of(self, account, body):
        """(symbol, side, limit price or 0, account, token) of a possible aggressor."""
        if isinstance(body, NewOrder):
            limit = 0 if body.ord_type is OrdType.MARKET else body.price
            return body.symbol, body.side, limit, account, body.token
        if isinstance(body, Replace):
            old = self.model.find_live(account, body.token)
            if old is not None:
                return old.symbol, old.side, body.price, account, body.new_token
        return None

    # ----------------------------------------------------------- invariants

    @invariant()
    def book_not_crossed(self):
        if self.model is None:
            return
        for sym in self.model.symbols():
            rows = self.model.resting(sym)
            bids = [r[1] for r in rows if r[0] is Side.BUY]
            asks = [r[1] for r in rows if r[0] is Side.SELL]
            if bids and asks:
                assert max(bids) < min(asks), f"{sym} crossed: {max(bids)} >= {min(asks)}"

    @invariant()
    def quantity_conserved(self):
        if self.model is None:
            return
        for key, (original, filled, open_, canceled) in self.model.orders().items():
            assert min(filled, open_, canceled) >= 0, key
            assert filled + open_ + canceled == original, key


def check_priority(outputs, books_before, symbol, side, limit, account, token):
    """Every fill took the best-priced, earliest resting order of the opposite side."""
    fills = [o for o in outputs if type(o) is Executed]
    if not fills:
        return
    assert len(fills) % 2 == 0
    opposite = Side.SELL if side is Side.BUY else Side.BUY
    queue = [[r[3], r[4], r[1], r[5]] for r in books_before.get(symbol, []) if r[0] is opposite]
    head = 0
    for i in range(0, len(fills), 2):
        a, r = fills[i], fills[i + 1]
        assert a.liquidity == "A" and r.liquidity == "R"
        assert (r.account, r.token) == (account, token)
        assert (a.qty, a.price, a.match_id) == (r.qty, r.price, r.match_id)
        while head < len(queue) and queue[head][3] == 0:
            head += 1
        assert head < len(queue), "fill against an order that was not resting"
        best = queue[head]
        assert (a.account, a.token, a.price) == (best[0], best[1], best[2]), (a, best)
        assert 0 < a.qty <= best[3]
        if limit:
            assert a.price <= limit if side is Side.BUY else a.price >= limit
        best[3] -= a.qty
        if best[3] > 0:
            assert i + 2 == len(fills), "a partial fill of the best order must be the last"


ModelVsEngine.TestCase.settings = settings.get_profile(PROFILE)
TestModelVsEngine = ModelVsEngine.TestCase
