"""The engine over a stream: control messages, seqs, counters, and determinism with its hash."""

from __future__ import annotations

import pytest

from reference_impl.core.engine import Engine
from reference_impl.core.errors import SequenceGapError
from reference_impl.core.messages import (
    Executed,
    Heartbeat,
    LeaderChange,
    Replace,
    SnapshotRequest,
)
from tests.core.engine_scenarios import (
    B,
    P,
    Run,
    apply_all,
    buy,
    market,
    msg,
    random_stream,
    sell,
)


@pytest.fixture
def run():
    return Run()


# ----------------------------------------------------------- control, seqs


def test_control_messages_produce_nothing_but_advance_seq(run):
    assert run("", LeaderChange(3, 2)) == []
    assert run("", SnapshotRequest(7)) == []
    assert run("", Heartbeat()) == []
    assert (run.engine.epoch, run.engine.last_applied_seq) == (3, 3)


def test_reapplied_seq_is_a_no_op(run):
    first = msg(1, "A", sell("s1", 10, P))
    run.engine.apply(first)
    before = run.engine.state_hash()
    assert run.engine.apply(first) == []
    assert run.engine.apply(msg(1, "A", buy("b1", 10, P))) == []
    assert run.engine.apply(msg(0, "A", buy("b1", 10, P))) == []
    assert run.engine.state_hash() == before
    assert run.engine.last_applied_seq == 1


def test_gap_raises_and_changes_nothing(run):
    run("A", sell("s1", 10, P))
    before = run.engine.state_hash()
    with pytest.raises(SequenceGapError) as err:
        run.engine.apply(msg(3, "A", buy("b1", 10, P)))
    assert (err.value.expected, err.value.got) == (2, 3)
    assert run.engine.state_hash() == before


def test_not_a_body_is_a_type_error(run):
    with pytest.raises(TypeError):
        run.engine.apply(msg(1, "A", object()))


def test_counters_start_at_one_and_replace_takes_an_order_ref(run):
    run("A", sell("s1", 10, P))
    run("A", Replace("s1", "s2", 10, P))
    run("A", buy("x", 0, P))  # rejected: no order_ref
    out = run("B", buy("b1", 10, P))
    assert out[0].order_ref == 3 and out[1].match_id == 1
    assert (run.engine.last_order_ref, run.engine.last_match_id) == (3, 1)


def test_same_input_twice_gives_identical_outputs_and_hashes():
    stream = random_stream(7, 3000)
    a, b = Engine(), Engine()
    out_a, out_b = apply_all(a, stream), apply_all(b, stream)
    assert out_a == out_b
    assert repr(out_a) == repr(out_b)
    assert a.state_hash() == b.state_hash()
    assert a.snapshot() == b.snapshot()
    assert sum(1 for outs in out_a for o in outs if isinstance(o, Executed)) > 100


def test_different_input_gives_different_hash():
    a, b = Engine(), Engine()
    apply_all(a, random_stream(7, 500))
    apply_all(b, random_stream(8, 500))
    assert a.state_hash() != b.state_hash()


def test_hash_covers_counters_epoch_and_tokens(run):
    hashes = {run.engine.state_hash()}
    run("A", buy("b1", 0, P))  # rejected: only last_applied_seq moves
    hashes.add(run.engine.state_hash())
    run("A", market("m1", B, 5))  # accepted then canceled: order_ref and a used token
    hashes.add(run.engine.state_hash())
    run("", LeaderChange(2, 1))
    hashes.add(run.engine.state_hash())
    assert len(hashes) == 4
    other = Run()
    for m in [("A", buy("b1", 0, P)), ("A", market("m1", B, 5)), ("", LeaderChange(3, 1))]:
        other(*m)
    assert other.engine.state_hash() != run.engine.state_hash()  # the epoch alone differs
