"""AckGate alone: thresholds per policy, release order, monotonic watermarks."""

from __future__ import annotations

import pytest

from reference_impl.core.ack_gate import MAX_OUTPUTS_PER_INPUT, UNGATED, AckGate
from reference_impl.core.messages import RejectReason, Rejected
from reference_impl.core.output_codec import OutputRecord
from reference_impl.core.status_codec import EngineStatus, LoggerWatermark


def rec(seq: int, index: int = 0, count: int = 1, epoch: int = 0) -> OutputRecord:
    return OutputRecord(index, count, epoch, 1, seq, 0, 0, 0,
                        Rejected(seq, "A", f"t{seq}", RejectReason.UNKNOWN_ORDER))


def test_thresholds_by_policy() -> None:
    fsync, repl, none = AckGate("fsync"), AckGate("replicated"), AckGate("none")
    for g in (fsync, repl, none):
        g.on_logger(LoggerWatermark(1, 9, 4, 0))
        g.on_engine(EngineStatus(2, False, 0, 7, 0, 0))
    assert (fsync.threshold(), repl.threshold(), none.threshold()) == (4, 7, UNGATED)
    assert AckGate("fsync", ungated=True).threshold() == UNGATED
    lone = AckGate("replicated", has_secondary=False)
    lone.on_logger(LoggerWatermark(1, 9, 4, 0))
    assert lone.threshold() == 9
    with pytest.raises(ValueError):
        AckGate("sometimes")


def test_release_in_seq_order_up_to_the_threshold_and_watermarks_never_fall() -> None:
    g = AckGate("fsync")
    assert [g.on_record(rec(s)) for s in (1, 2, 3)] == [True, True, True]
    assert g.releasable() == []
    g.on_logger(LoggerWatermark(1, 2, 2, 0))
    assert [seq for seq, _ in g.releasable()] == [1, 2]
    g.on_logger(LoggerWatermark(1, 0, 0, 0))  # a restarted logger cannot take it back
    assert g.durable_seq == 2 and g.held == 1


def test_records_gather_by_index_and_duplicates_drop() -> None:
    g = AckGate("none")
    assert g.on_record(rec(5, 1, 2)) is False
    assert g.on_record(rec(5, 1, 2)) is False
    assert g.incomplete == 1 and g.counters["duplicate_outputs"] == 1
    assert g.on_record(rec(5, 0, 2)) is True
    (seq, records), = g.releasable()
    assert seq == 5 and [r.index for r in records] == [0, 1]
    assert g.on_record(rec(4)) is False  # at or below the highest complete: a re-emission
    g.on_engine(EngineStatus(3, True, 2, 0, 0, 0))
    assert g.primary_id == 3
    # a status names the primary but fences nothing: the old session's gap fills still count
    assert g.on_record(rec(6, epoch=1)) is True
    assert g.on_record(rec(7, epoch=2)) is True
    assert g.on_record(rec(8, epoch=1)) is False and g.counters["stale_epoch_outputs"] == 1


def test_a_huge_peer_count_allocates_nothing_and_is_dropped() -> None:
    g = AckGate("none")
    for seq in range(1, 201):  # 200 records each claiming the u16 maximum
        assert g.on_record(rec(seq, 0, 0xFFFF)) is False
    assert g.incomplete == 0 and g.counters["oversized_outputs"] == 200
    assert g.on_record(rec(201, 0, MAX_OUTPUTS_PER_INPUT)) is False  # at the cap: admitted
    assert g.incomplete == 1
    # what an incomplete input holds is what arrived, not what its count claims
    _, _, got = g._incomplete[201]
    assert len(got) == 1


def test_incomplete_inputs_are_forgotten_once_they_can_no_longer_complete() -> None:
    g = AckGate("none")
    for seq in (1, 2, 3):
        assert g.on_record(rec(seq, 0, 2)) is False  # each missing index 1
    assert g.incomplete == 3
    assert g.on_record(rec(4)) is True  # a later input completed: 1..3 never will
    assert g.incomplete == 0 and g.counters["abandoned_inputs"] == 3
    assert [s for s, _ in g.releasable()] == [4]
    # a record above the highest complete stays until the epoch rises past its own
    assert g.on_record(rec(9, 0, 2)) is False and g.incomplete == 1
    g.on_engine(EngineStatus(3, True, 1, 0, 0, 0))  # a status alone forgets nothing
    assert g.incomplete == 1
    assert g.on_record(rec(11, 0, 2, epoch=1)) is False  # the first record of epoch 1
    assert g.incomplete == 1 and g.counters["abandoned_inputs"] == 4
    assert g.on_record(rec(10, 0, 2, epoch=1)) is False
    assert g.on_record(rec(10, 1, 2, epoch=2)) is False  # epoch 2 deposes epoch 1's halves
    assert g.incomplete == 1 and g.counters["abandoned_inputs"] == 6  # 10 and 11
    assert g.on_record(rec(10, 0, 2, epoch=2)) is True
    (seq, records), = g.releasable()
    assert seq == 10 and [(r.index, r.epoch) for r in records] == [(0, 2), (1, 2)]
