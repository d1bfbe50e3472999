"""EmittedTracker on literal output-record sequences (input seq, index, count, epoch)."""

from __future__ import annotations

from reference_impl.core.output_tracker import EmittedTracker


def feed(tracker: EmittedTracker, records: list[tuple[int, int, int, int]]) -> int:
    for r in records:
        tracker.observe(*r)
    return tracker.primary_emitted_seq


def test_only_the_last_output_of_an_input_counts() -> None:
    t = EmittedTracker()
    assert feed(t, [(3, 0, 3, 1), (3, 1, 3, 1)]) == 0  # seq 3 half emitted
    assert t.observe(3, 2, 3, 1) is True
    assert t.primary_emitted_seq == 3
    assert t.observe(3, 2, 3, 1) is False  # a retransmission changes nothing


def test_a_missed_packet_does_not_hold_it_back() -> None:
    # seq 5's outputs were lost on the way to the secondary; seq 7's last one arrived,
    # and the primary emits in order, so 5 (and 6, which had no outputs) left it too.
    assert feed(EmittedTracker(), [(4, 0, 1, 1), (7, 0, 2, 1), (7, 1, 2, 1)]) == 7


def test_never_moves_backwards() -> None:
    assert feed(EmittedTracker(), [(9, 0, 1, 1), (4, 0, 1, 1)]) == 9


def test_stale_epochs_are_ignored() -> None:
    t = EmittedTracker()
    assert feed(t, [(2, 0, 1, 1), (5, 0, 1, 2)]) == 5
    assert t.epoch == 2
    assert t.observe(8, 0, 1, 1) is False  # a deposed primary (zombie) resumed
    assert t.primary_emitted_seq == 5


def test_local_epoch_floor() -> None:
    t = EmittedTracker()
    t.raise_epoch(3)
    assert feed(t, [(10, 0, 1, 2)]) == 0
    t.raise_epoch(1)  # never lowers
    assert t.epoch == 3
    assert feed(t, [(11, 0, 1, 3)]) == 11
