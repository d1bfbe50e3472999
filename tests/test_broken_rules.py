"""The test-only order-type variants really break their rule (else detection tests prove nothing).

Each variant and the real engine take the same literal input; the outputs
must differ exactly where the variant's rule says, and agree elsewhere.
"""

from __future__ import annotations

import pytest

from reference_impl import config
from reference_impl.core.engine import Engine
from reference_impl.core.messages import Cancel, Executed, NewOrder, OrdType, Replace, Sequenced, Side, Tif
from reference_impl.engine import broken_rules

S, B = Side.SELL, Side.BUY


def run(engine: Engine, steps: list[tuple[str, object]]) -> list[tuple]:
    """``(type, account, token, qty)`` of every output, in order."""
    out = []
    for seq, (account, body) in enumerate(steps, start=1):
        for o in engine.apply(Sequenced(seq, 0, 1, 1, seq, account, body)):
            out.append((type(o).__name__, o.account, o.token, getattr(o, "qty", None)))
    return out


def sell(token: str, qty: int, price: int = 200) -> NewOrder:
    return NewOrder(token, "ACME", S, qty, price)


def execs(outputs: list[tuple], account: str) -> list[tuple]:
    return [(o[2], o[3]) for o in outputs if o[0] == Executed.__name__ and o[1] == account]


def test_fok_partial_fill_partly_fills_a_fill_or_kill():
    steps = [("A", sell("a1", 3)), ("B", NewOrder("b1", "ACME", B, 5, 200, tif=Tif.IOC, min_qty=5))]
    assert execs(run(Engine(), steps), "B") == []
    assert execs(run(broken_rules.FokPartialFillEngine(), steps), "B") == [("b1", 3)]


def test_min_qty_ignored_executes_below_the_minimum_but_keeps_fok():
    steps = [("A", sell("a1", 3)), ("B", NewOrder("b1", "ACME", B, 5, 200, tif=Tif.IOC, min_qty=4)),
             ("B", NewOrder("b2", "ACME", B, 5, 200, tif=Tif.IOC, min_qty=5))]
    assert execs(run(Engine(), steps), "B") == []
    assert execs(run(broken_rules.MinQtyIgnoredEngine(), steps), "B") == [("b1", 3)]


def test_market_remainder_rests_at_its_last_price():
    steps = [("A", sell("a1", 2)), ("B", NewOrder("b1", "ACME", B, 5, 0, OrdType.MARKET)),
             ("C", sell("c1", 3, 100))]
    clean, broken = run(Engine(), steps), run(broken_rules.MarketRemainderRestsEngine(), steps)
    assert ("Canceled", "B", "b1", 3) in clean and execs(clean, "C") == []
    assert ("Canceled", "B", "b1", 3) not in broken and execs(broken, "C") == [("c1", 3)]


def test_reduce_loses_priority_goes_to_the_back():
    steps = [("A", sell("a1", 5)), ("B", sell("b1", 5)), ("A", Cancel("a1", 3)),
             ("C", NewOrder("c1", "ACME", B, 3, 200))]
    assert execs(run(Engine(), steps), "A") == [("a1", 3)]
    broken = run(broken_rules.ReduceLosesPriorityEngine(), steps)
    assert execs(broken, "A") == [] and execs(broken, "B") == [("b1", 3)]


def test_replace_keeps_priority_at_the_same_price():
    steps = [("A", sell("a1", 3)), ("B", sell("b1", 3)), ("A", Replace("a1", "a2", 3, 200)),
             ("C", NewOrder("c1", "ACME", B, 3, 200))]
    assert execs(run(Engine(), steps), "B") == [("b1", 3)]
    assert execs(run(broken_rules.ReplaceKeepsPriorityEngine(), steps), "A") == [("a2", 3)]


def test_the_variants_agree_with_the_engine_where_their_rule_is_not_involved():
    steps = [("A", sell("a1", 3)), ("B", sell("b1", 3, 300)),
             ("C", NewOrder("c1", "ACME", B, 4, 300)),
             ("B", Cancel("b1", 0)), ("A", Cancel("zz", 0))]
    clean = run(Engine(), steps)
    assert ("Canceled", "B", "b1", 2) in clean
    for cls in broken_rules.VARIANTS.values():
        assert run(cls(), steps) == clean, cls.__name__


@pytest.mark.parametrize("name", list(broken_rules.VARIANTS))
def test_a_fault_name_picks_its_engine_and_none_picks_the_real_one(name):
    assert name in config.BROKEN_VARIANTS
    cfg = config.load()
    assert broken_rules.engine_class(cfg) is Engine
    assert broken_rules.engine_class(cfg.with_overrides(faults=(name,))) is broken_rules.VARIANTS[name]
