"""The dense matching workload, in process: the model and the engine agree on it, it meets every
situation where the order-type rules differ, and each broken rule fails and shrinks to a few orders."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from harness.model import Model
from reference_impl.core.engine import Engine
from reference_impl.engine import broken_rules

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "suites"))
import _scenarios_dense as dense
from _scenarios_run import Layout

NAMES = {"A": "DEMO1", "B": "DEMO2", "C": "DEMO3"}


class Instruments:
    """What ``Layout`` asks of a SUT."""

    def instruments(self) -> dict[str, int]:
        return {"ACME": 100}


LAY = Layout(Instruments(), "http", "test")  # type: ignore[arg-type]


def events(machine, steps):
    return dense.replay(machine, steps, LAY, 1, NAMES)


def test_the_model_and_the_engine_agree_on_a_dense_run_that_meets_every_situation():
    steps = dense.generate(random.Random(5), 400)
    expected, situations = events(Model({"ACME": 100}), steps)
    assert events(Engine(), steps)[0] == expected
    assert all(situations[s] >= 1 for s in dense.SITUATIONS), situations
    assert sum(len(v) for v in expected.values()) > 600


@pytest.mark.parametrize("fault", list(broken_rules.VARIANTS))
def test_a_broken_rule_fails_the_dense_run_and_shrinks_to_ten_orders_or_fewer(fault):
    steps = dense.generate(random.Random(5), 400)

    def fails(candidate):
        want = events(Model({"ACME": 100}), candidate)[0]
        return events(broken_rules.VARIANTS[fault](), candidate)[0] != want

    assert fails(steps)
    small = dense.shrink(steps, fails)
    assert fails(small) and len(small) <= 10, (fault, len(small))


def test_shrink_keeps_a_failing_list_and_stops_at_its_budget():
    assert dense.shrink(list(range(50)), lambda c: 17 in c and 33 in c) == [17, 33]
    calls = []
    dense.shrink(list(range(50)), lambda c: calls.append(1) or True, budget=5)
    assert len(calls) <= 5
