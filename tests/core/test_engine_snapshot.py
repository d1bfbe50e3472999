"""Snapshot and restore of the engine, and the canonical encoding behind its hash."""

from __future__ import annotations

import hashlib
import struct

import pytest

from reference_impl.core.engine import Engine
from reference_impl.core.errors import DecodeError
from reference_impl.core.messages import Cancel, Canceled, CancelReason, LeaderChange
from reference_impl.core.rules import Instruments
from tests.core.engine_scenarios import (
    SYM,
    P,
    Run,
    apply_all,
    buy,
    msg,
    random_stream,
    sell,
)

USER = CancelReason.USER


@pytest.mark.parametrize("cut", [0, 1, 400, 1234, 2999])
def test_snapshot_restore_continue_matches_uninterrupted_run(cut):
    stream = random_stream(11, 3000)
    whole = Engine()
    expected = apply_all(whole, stream)
    first = Engine()
    got = apply_all(first, stream[:cut])
    restored = Engine.restore(first.snapshot())
    assert restored.state_hash() == first.state_hash()
    assert restored.snapshot() == first.snapshot()
    got += apply_all(restored, stream[cut:])
    assert got == expected
    assert restored.state_hash() == whole.state_hash()
    assert restored.last_applied_seq == 3000


def test_snapshot_is_versioned_and_hash_is_sha256_of_body():
    engine = Engine()
    apply_all(engine, random_stream(3, 300))
    snap = engine.snapshot()
    assert snap[:8] == b"CRUCENGS" and snap[8:10] == b"\x00\x01"
    assert engine.state_hash() == hashlib.sha256(snap[10:]).hexdigest()


def test_restore_rejects_damaged_snapshots():
    engine = Engine()
    apply_all(engine, random_stream(5, 500))
    snap = engine.snapshot()
    bad = [b"", snap[:5], b"XXXXXXXX" + snap[8:], snap[:8] + b"\x00\x02" + snap[10:],
           snap + b"\x00", snap[:-1], snap[:len(snap) // 2]]
    for data in bad:
        with pytest.raises(DecodeError):
            Engine.restore(data)


def test_restore_checks_symbols_against_instruments():
    run = Run()
    run("A", sell("s1", 10, P, symbol="XYZ"))
    with pytest.raises(DecodeError):
        Engine.restore(run.engine.snapshot(), Instruments({"ACME": 100}))
    with pytest.raises(DecodeError):
        Engine.restore(run.engine.snapshot(), Instruments({"XYZ": 300}))  # price off tick
    ok = Engine.restore(run.engine.snapshot(), Instruments({"XYZ": 500}))
    assert ok.state_hash() == run.engine.state_hash()


def test_dead_queue_entries_do_not_reach_the_encoding():
    run = Run()
    for token in ("s1", "s2", "s3"):
        run("A", sell(token, 10, P))
    run("A", Cancel("s2", 0))  # a dead entry stays in the middle of the level's queue
    assert len(run.engine.book(SYM).asks.levels[-P]) == 3
    restored = Engine.restore(run.engine.snapshot())
    assert len(restored.book(SYM).asks.levels[-P]) == 2
    assert restored.snapshot() == run.engine.snapshot()
    assert restored.state_hash() == run.engine.state_hash()


def test_emptied_books_are_not_encoded():
    a, b = Run(), Run()
    a("A", sell("s1", 10, P, symbol="XYZ"))
    a("A", Cancel("s1", 0))
    b("A", sell("s1", 10, P + 100, symbol="XYZ"))  # same counters, tokens and seq
    b("A", Cancel("s1", 0))
    assert a.engine.state_hash() == b.engine.state_hash()
    assert Engine.restore(a.engine.snapshot()).book("XYZ") is None


@pytest.mark.parametrize("sizes", [(10, 0, 0), (10, 11, 0), (10, 5, 6), (0, 1, 0)])
def test_restore_rejects_inconsistent_order_sizes(sizes):
    run = Run()
    run("A", sell("s1", 10, P))
    snap = run.engine.snapshot()
    good = struct.pack(">III", 10, 10, 0)
    assert snap.count(good) == 1
    with pytest.raises(DecodeError):
        Engine.restore(snap.replace(good, struct.pack(">III", *sizes)))


def test_restore_rejects_a_crossed_book():
    run = Run()
    run("A", sell("s1", 10, P + 100))
    run("A", buy("b1", 10, P))
    snap = run.engine.snapshot()
    good = struct.pack(">II", P, 1)
    assert snap.count(good) == 1
    with pytest.raises(DecodeError):
        Engine.restore(snap.replace(good, struct.pack(">II", P + 200, 1)))


def test_restore_keeps_epoch_and_counters():
    run = Run()
    run("A", sell("s1", 10, P))
    run("B", buy("b1", 4, P))
    run("", LeaderChange(5, 2))
    e = Engine.restore(run.engine.snapshot())
    assert (e.epoch, e.last_applied_seq, e.last_order_ref, e.last_match_id) == (5, 3, 2, 1)


def test_token_lists_are_sorted_whatever_the_order_of_use():
    a, b = Run(), Run()
    for first, second in ((a, ("t2", "t1")), (b, ("t1", "t2"))):
        for token in second:
            first("A", sell(token, 10, P))
        for token in second:
            first("A", Cancel(token, 0))
    assert a.engine.state_hash() == b.engine.state_hash()
    assert b"t1 t2" in a.engine.snapshot()


@pytest.mark.parametrize("tamper", [
    (b"t1 t2", b"t2 t1"),  # not ascending
    (b"t1 t2", b"t1 t1"),  # a duplicate
    (b"t1 t2", b"t1\tt2"),  # one token, and not printable
    (b"t1 t2", b"t1 \xe92"),  # not ASCII
    (struct.pack(">II", 2, 5), struct.pack(">II", 3, 5)),  # count mismatch
])
def test_restore_rejects_bad_token_lists(tamper):
    run = Run()
    for token in ("t1", "t2"):
        run("A", sell(token, 10, P))
    run("A", Cancel("t1", 0))
    snap = run.engine.snapshot()
    old, new = tamper
    assert snap.count(old) == 1
    with pytest.raises(DecodeError):
        Engine.restore(snap.replace(old, new))


def test_restore_rejects_an_open_order_whose_token_was_never_used():
    run = Run()
    run("A", sell("t1", 10, P))
    snap = run.engine.snapshot()
    assert snap.endswith(b"t1")
    with pytest.raises(DecodeError):
        Engine.restore(snap[:-2] + b"t9")


def test_restored_order_keeps_its_fills_and_cancels():
    run = Run()
    run("A", sell("s1", 100, P))
    run("B", buy("b1", 30, P))
    run("A", Cancel("s1", 80))  # open 50, canceled 20, executed 30
    restored = Engine.restore(run.engine.snapshot())
    order = restored.live_order("A", "s1")
    assert (order.qty, order.open, order.canceled, order.filled) == (100, 50, 20, 30)
    assert restored.state_hash() == run.engine.state_hash()
    cancel = msg(4, "A", Cancel("s1", 60))
    assert restored.apply(cancel) == run.engine.apply(cancel) == [Canceled(4, "A", "s1", 20, USER)]
