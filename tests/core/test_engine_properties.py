"""Invariants of the engine over random streams (hypothesis).

A ``RuleBasedStateMachine`` sends new orders, cancels, replaces and control
messages drawn from small pools (so tokens collide, prices cross and rejects
happen) and, after every step, checks what must always hold:

* every client request gets at least one output, addressed to its sender, and
  the first one is its Accepted / Replaced / Rejected; Executed come in
  ("A", "R") pairs of equal qty, price and consecutive match_id, at the
  resting order's limit price; a Canceled for an immediate remainder is last;
* no book is ever crossed; levels are in price order, orders in time order;
* for every order: filled + open + canceled == qty, where the ledger is built
  from the outputs alone (a replaced order's remainder counts as canceled)
  and must agree with the engine's own order records;
* a snapshot taken at any step restores to the same hash and, continued, gives
  the same outputs as an engine that was never snapshotted.

The fast validation path is checked against ``rules`` directly (it must name
the same reject or accept exactly when ``rules`` finds nothing).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from reference_impl.core.engine import Engine
from reference_impl.core.messages import (
    Accepted,
    Cancel,
    Canceled,
    CancelReason,
    Executed,
    Heartbeat,
    LeaderChange,
    NewOrder,
    OrdType,
    Rejected,
    Replace,
    Replaced,
    Sequenced,
    Side,
    Tif,
)
from reference_impl.core.rules import Instruments, check_new_order, check_replace_fields

P = 1_000_000
ACCOUNTS = st.sampled_from(["A", "B", "C"])
TOKENS = st.sampled_from([f"t{i}" for i in range(12)] + ["bad tok", ""])
SYMBOLS = st.sampled_from(["ACME", "ACME", "XYZ", "bad"])
PRICES = st.integers(-4, 4).map(lambda d: P + 100 * d) | st.sampled_from([P + 50, 0])
QTYS = st.sampled_from([1, 3, 5, 10, 20, 50, 0])


class EngineInvariants(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = Engine()
        self.shadow = Engine()  # never snapshotted: the restored engine must track it
        self.seq = 0
        self.match_id = 0
        self.ledger: dict[tuple[str, str], dict] = {}  # (account, token) of accepted orders
        self.prices: dict[tuple[str, str], tuple[int, bool]] = {}  # limit price, is_buy

    # ---------------------------------------------------------------- driving

    def send(self, account: str, body) -> list:
        self.seq += 1
        m = Sequenced(self.seq, self.seq, 1, 1, self.seq, account, body)
        out = self.engine.apply(m)
        assert out == self.shadow.apply(m)
        if isinstance(body, (NewOrder, Cancel, Replace)):
            self.check_client_outputs(account, body, out)
        else:
            assert out == []
        return out

    def check_client_outputs(self, account, body, out) -> None:
        assert out, "every client request yields an output"
        head = out[0]
        assert head.account == account
        own = body.new_token if isinstance(body, Replace) else body.token
        assert head.token == own
        if isinstance(head, Rejected):
            assert len(out) == 1
            return
        if isinstance(body, Cancel):
            assert len(out) == 1 and isinstance(head, Canceled)
            assert head.reason is CancelReason.USER
            entry = self.ledger[(account, body.token)]
            entry["canceled"] += head.qty
            return
        if isinstance(body, Replace):
            assert isinstance(head, Replaced) and head.old_token == body.token
            old = self.ledger[(account, body.token)]
            old["canceled"] += old["qty"] - old["filled"] - old["canceled"]
            old["dead"] = True
            is_buy = self.prices[(account, body.token)][1]
            self.prices[(account, own)] = (head.price, is_buy)
            immediate = False
        else:
            assert isinstance(head, Accepted)
            is_buy = body.side is Side.BUY
            market = body.ord_type is OrdType.MARKET
            assert head.price == (0 if market else body.price)
            self.prices[(account, own)] = (body.price, is_buy)
            immediate = market or body.tif == Tif.IOC
        assert (account, own) not in self.ledger
        entry = self.ledger[(account, own)] = {
            "qty": head.qty, "filled": 0, "canceled": 0, "dead": False}
        rest = out[1:]
        if rest and isinstance(rest[-1], Canceled):
            assert immediate and rest[-1].reason is CancelReason.IOC
            entry["canceled"] += rest[-1].qty
            entry["dead"] = True
            rest = rest[:-1]
        assert len(rest) % 2 == 0
        for a, r in zip(rest[::2], rest[1::2]):
            assert isinstance(a, Executed) and isinstance(r, Executed)
            assert (a.liquidity, r.liquidity) == ("A", "R")
            assert (r.account, r.token) == (account, own)
            assert a.qty == r.qty > 0 and a.price == r.price and a.match_id == r.match_id
            self.match_id += 1
            assert a.match_id == self.match_id
            resting_price, resting_buy = self.prices[(a.account, a.token)]
            assert a.price == resting_price and resting_buy != is_buy
            self.ledger[(a.account, a.token)]["filled"] += a.qty
            entry["filled"] += a.qty
        if immediate:
            entry["dead"] = True
            assert entry["filled"] + entry["canceled"] == entry["qty"]

    # ------------------------------------------------------------------ rules

    @rule(account=ACCOUNTS, token=TOKENS, symbol=SYMBOLS, side=st.sampled_from([Side.BUY, Side.SELL]),
          qty=QTYS, price=PRICES)
    def limit_day(self, account, token, symbol, side, qty, price):
        self.send(account, NewOrder(token, symbol, side, qty, price))

    @rule(account=ACCOUNTS, token=TOKENS, side=st.sampled_from([Side.BUY, Side.SELL]), qty=QTYS,
          price=PRICES, market=st.booleans(), min_qty=st.sampled_from([0, 0, 1, 5, 10, 20, 60]),
          tif=st.sampled_from([Tif.IOC, Tif.IOC, Tif.DAY]))
    def immediate(self, account, token, side, qty, price, market, min_qty, tif):
        if market:
            body = NewOrder(token, "ACME", side, qty, 0, OrdType.MARKET, tif, min_qty)
        else:
            body = NewOrder(token, "ACME", side, qty, price, OrdType.LIMIT, tif, min_qty)
        self.send(account, body)

    @rule(account=ACCOUNTS, token=TOKENS, size=st.sampled_from([0, 0, 1, 5, 15, 30, 100]))
    def cancel(self, account, token, size):
        self.send(account, Cancel(token, size))

    @rule(account=ACCOUNTS, token=TOKENS, new_token=TOKENS, qty=QTYS, price=PRICES)
    def replace(self, account, token, new_token, qty, price):
        self.send(account, Replace(token, new_token, qty, price))

    @rule(control=st.sampled_from(["leader", "heartbeat"]))
    def control(self, control):
        body = LeaderChange(self.engine.epoch + 1, 2) if control == "leader" else Heartbeat()
        self.send("", body)

    @rule()
    def snapshot_and_restore(self):
        restored = Engine.restore(self.engine.snapshot())
        assert restored.state_hash() == self.engine.state_hash() == self.shadow.state_hash()
        assert restored.snapshot() == self.engine.snapshot()
        self.engine = restored

    # ------------------------------------------------------------- invariants

    @invariant()
    def books_uncrossed_and_ordered(self):
        for symbol in self.engine.symbols():
            book = self.engine.book(symbol)
            bid, ask = book.best_bid(), book.best_ask()
            assert bid is None or ask is None or bid < ask
            bids, asks = book.levels(True), book.levels(False)
            assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
            assert [p for p, _ in asks] == sorted(p for p, _ in asks)
            for _, orders in bids + asks:
                assert orders, "no empty level is kept"
                refs = [o.order_ref for o in orders]
                assert refs == sorted(refs)

    @invariant()
    def quantities_conserved(self):
        for (account, token), entry in self.ledger.items():
            live = self.engine.live_order(account, token)
            open_ = live.open if live is not None else 0
            assert entry["filled"] + open_ + entry["canceled"] == entry["qty"]
            if live is not None:
                assert not entry["dead"]
                assert (live.filled, live.canceled, live.qty) == (
                    entry["filled"], entry["canceled"], entry["qty"])
            elif not entry["dead"]:
                assert entry["filled"] + entry["canceled"] == entry["qty"]

    @invariant()
    def counters(self):
        assert self.engine.last_applied_seq == self.seq
        assert self.engine.last_match_id == self.match_id
        assert self.engine.last_order_ref == len(self.ledger)


EngineInvariants.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestEngineInvariants = EngineInvariants.TestCase


# --------------------------------------------------- fast path == rules


def _values(*extra):
    return st.sampled_from(list(extra))


@settings(max_examples=600, deadline=None)
@given(
    token=_values("t1", "", " ", "a b", "x" * 14, "x" * 15, "\x7f", "~!", "caf\u00e9", 5, None),
    symbol=_values("ACME", "NEW1", "acme", "", "TOOLONGSY", 7),
    side=_values(Side.BUY, Side.SELL),
    qty=_values(1, 0, -1, 1_000_000, 1_000_001, True, 5.0, "5", None),
    price=_values(P, P + 1, 0, 100, 1_999_999_900, 1_999_999_999, 2_000_000_000, -100, True,
                  float(P), None),
    ord_type=_values(OrdType.LIMIT, OrdType.MARKET),
    tif=_values(Tif.DAY, Tif.IOC, 0, 1, 2, -1, True, None),
    min_qty=_values(0, 1, 5, 2_000_000, -1, True, 1.5),
)
def test_new_order_fast_path_agrees_with_rules(token, symbol, side, qty, price, ord_type, tif,
                                                min_qty):
    body = NewOrder(token, symbol, side, qty, price, ord_type, tif, min_qty)
    instruments = Instruments()
    try:
        expected = check_new_order(body, instruments)
    except TypeError:
        return  # values no codec can produce and rules itself cannot judge
    engine = Engine(instruments)
    engine.apply(Sequenced(1, 1, 1, 1, 1, "Z", NewOrder("w", "ACME", Side.BUY, 1, P - 100)))
    out = engine.apply(Sequenced(2, 2, 1, 1, 2, "A", body))
    if expected is None:
        assert isinstance(out[0], Accepted)
    else:
        assert out == [Rejected(2, "A", token, expected)]


@settings(max_examples=400, deadline=None)
@given(
    new_token=_values("t2", "", "a b", "x" * 14, "x" * 15, "caf\u00e9", 5),
    qty=_values(1, 0, 1_000_000, 1_000_001, True, 5.0),
    price=_values(P, P + 100, P + 1, 0, 1_999_999_900, 2_000_000_000, True, float(P)),
)
def test_replace_fast_path_agrees_with_rules(new_token, qty, price):
    expected = check_replace_fields(new_token, qty, price, 100)
    engine = Engine()
    engine.apply(Sequenced(1, 1, 1, 1, 1, "A", NewOrder("t1", "ACME", Side.BUY, 10, P - 500)))
    out = engine.apply(Sequenced(2, 2, 1, 1, 2, "A", Replace("t1", new_token, qty, price)))
    if expected is None:
        assert isinstance(out[0], Replaced)
    else:
        assert out == [Rejected(2, "A", new_token, expected)]
