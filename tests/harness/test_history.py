from __future__ import annotations

import itertools

import pytest

from harness import history
from harness.history import History, Op


def manual_clock():
    ticks = itertools.count(1000, 10)
    return lambda: next(ticks)


def test_invoke_complete_pairs_and_round_trip(tmp_path):
    h = History(clock=manual_clock())
    a = h.invoke(1, "new", {"token": "A"})
    b = h.invoke(2, "new", {"token": "B"})
    h.complete(a, history.OK, {"token": "A", "outputs": [{"type": "accepted"}]})
    fault = h.invoke(history.NEMESIS, "fault", {"name": "kill engine-2"})
    h.complete(fault, history.OK)
    path = tmp_path / "history.jsonl"
    h.write(path)
    ops = history.read(path)
    assert ops == h.ops
    got = {inv.value.get("token", inv.value.get("name")): (done.type if done else None)
           for inv, done in history.pairs(ops)}
    assert got == {"A": "ok", "B": None, "kill engine-2": "ok"}  # B stays open
    assert history.fault_windows(ops) == [("kill engine-2", 1030, 1040)]
    assert b.time_ns == 1010


def test_bad_completion_type_and_bad_line_are_rejected():
    h = History(clock=manual_clock())
    op = h.invoke(1, "new", {})
    with pytest.raises(ValueError):
        h.complete(op, "maybe")
    with pytest.raises(ValueError):
        Op.from_json('{"index":0,"process":1,"type":"weird","f":"new"}')
