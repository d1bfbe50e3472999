"""ReemitRing: what a promoted engine re-emits, and whether it still holds all of it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reference_impl.core.reemit_ring import Decided, ReemitRing


def decided(seq: int) -> Decided:
    return Decided(seq, 1, seq, 0, 0, 0, ())


def test_after_returns_the_inputs_above_a_seq_in_order() -> None:
    ring = ReemitRing(4)
    for seq in (2, 3, 5, 8):
        ring.keep(decided(seq))
    assert [d.seq for d in ring.after(0)] == [2, 3, 5, 8]
    assert [d.seq for d in ring.after(3)] == [5, 8]
    assert [d.seq for d in ring.after(8)] == []
    assert ring.complete_after(0)


def test_an_evicted_input_makes_an_older_re_emission_incomplete() -> None:
    ring = ReemitRing(2)
    for seq in (1, 4, 6):
        ring.keep(decided(seq))
    assert ring.evicted_seq == 1 and len(ring) == 2
    assert ring.complete_after(1) and not ring.complete_after(0)
    assert [d.seq for d in ring.after(0)] == [4, 6]


@given(st.lists(st.integers(1, 5), max_size=60), st.integers(1, 20), st.integers(0, 200))
def test_after_is_the_kept_suffix_above_the_seq(steps: list[int], capacity: int, emitted: int) -> None:
    ring = ReemitRing(capacity)
    seqs, seq = [], 0
    for step in steps:
        seq += step
        seqs.append(seq)
        ring.keep(decided(seq))
    kept = seqs[-capacity:]
    assert [d.seq for d in ring.after(emitted)] == [s for s in kept if s > emitted]
    evicted = seqs[:-capacity] if len(seqs) > capacity else []
    assert ring.complete_after(emitted) == all(s <= emitted for s in evicted)
