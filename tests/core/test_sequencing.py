"""Sequencer logic: stamping, windowed dedup, incarnations, epochs, rebuild via observe()."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_impl.core.errors import SequenceGapError
from reference_impl.core.messages import (
    Cancel,
    Heartbeat,
    LeaderChange,
    NewOrder,
    Sequenced,
    Side,
    SnapshotRequest,
)
from reference_impl.core.sequencing import DropReason, Request, Sequencer

BODY = NewOrder("T1", "ACME", Side.BUY, 10, 10_000)


def req(request_seq: int, gateway_id: int = 1, incarnation: int = 1) -> Request:
    return Request(gateway_id, incarnation, request_seq, "DEMO1", BODY)


def test_stamps_seq_and_ts_and_copies_the_request() -> None:
    s = Sequencer(next_seq=7)
    msg = s.sequence(Request(3, 9, 42, "DEMO2", BODY), now_ns=1_000)
    assert msg == Sequenced(7, 1_000, 3, 9, 42, "DEMO2", BODY)
    assert s.sequence(req(1), 2_000).seq == 8
    assert s.next_seq == 9 and s.last_drop is None


def test_timestamp_never_goes_backwards() -> None:
    s = Sequencer()
    assert s.sequence(req(1), 500).ts == 500
    assert s.sequence(req(2), 400).ts == 500  # wall clock stepped back
    assert s.sequence_control(Heartbeat(), 450).ts == 500
    assert s.sequence(req(3), 600).ts == 600


def test_exact_duplicate_is_dropped_and_counted() -> None:
    s = Sequencer()
    assert s.sequence(req(1), 1) is not None
    assert s.sequence(req(1), 2) is None
    assert s.last_drop is DropReason.DUPLICATE
    assert s.counters()["duplicate"] == 1 and s.next_seq == 2


def test_out_of_order_resends_within_the_window() -> None:
    s = Sequencer(window=8)
    for r in (1, 2, 4, 6, 7):
        assert s.sequence(req(r), r) is not None
    assert s.sequence(req(5), 10).request_seq == 5  # late first copy: new
    assert s.sequence(req(3), 11).request_seq == 3
    for r in (1, 2, 3, 4, 5, 6, 7):
        assert s.sequence(req(r), 12) is None
        assert s.last_drop is DropReason.DUPLICATE
    assert s.next_seq == 8


def test_older_than_the_window_counts_as_sequenced() -> None:
    s = Sequencer(window=4)
    s.sequence(req(10), 1)
    assert s.sequence(req(6), 2) is None  # 6 <= 10 - 4
    assert s.last_drop is DropReason.OUT_OF_WINDOW
    assert s.sequence(req(7), 3) is not None  # inside (6, 10]: never seen, so new


def test_gateways_are_independent() -> None:
    s = Sequencer()
    assert s.sequence(req(1, gateway_id=1), 1) is not None
    assert s.sequence(req(1, gateway_id=2), 2) is not None
    assert s.sequence(req(1, gateway_id=2), 3) is None


def test_new_incarnation_replaces_state_and_fences_the_old_one() -> None:
    s = Sequencer()
    for r in range(1, 6):
        s.sequence(req(r, incarnation=1), r)
    assert s.sequence(req(1, incarnation=2), 10) is not None  # restarted gateway, seqs restart
    assert s.gateway_state(1) == (2, 1, (1,))
    assert s.sequence(req(6, incarnation=1), 11) is None  # a zombie's delayed packet
    assert s.last_drop is DropReason.STALE_INCARNATION
    assert s.sequence(req(1, incarnation=2), 12) is None
    assert s.last_drop is DropReason.DUPLICATE
    assert s.counters() == {"duplicate": 1, "out_of_window": 0, "stale_incarnation": 1,
                            "stale_epoch": 0}


def test_control_messages_and_epoch_fencing() -> None:
    s = Sequencer(epoch=1)
    msg = s.sequence_control(SnapshotRequest(5), 100)
    assert msg == Sequenced(1, 100, 0, 0, 0, "", SnapshotRequest(5))
    assert s.sequence_control(LeaderChange(1, 2), 101) is None  # not current + 1
    assert s.last_drop is DropReason.STALE_EPOCH
    assert s.sequence_control(LeaderChange(3, 2), 102) is None
    assert s.sequence_control(LeaderChange(2, 2), 103).seq == 2
    assert s.epoch == 2 and s.next_seq == 3
    assert s.sequence_control(Heartbeat(), 104).body == Heartbeat()


def test_misuse_is_an_error_not_a_drop() -> None:
    s = Sequencer()
    with pytest.raises(ValueError):
        s.sequence(Request(1, 1, 1, "A", Heartbeat()), 1)
    with pytest.raises(ValueError):
        s.sequence(Request(0, 1, 1, "A", BODY), 1)
    with pytest.raises(ValueError):
        s.sequence(Request(70_000, 1, 1, "A", BODY), 1)
    with pytest.raises(ValueError):
        s.sequence(Request(1, -1, 1, "A", BODY), 1)
    with pytest.raises(ValueError):
        s.sequence_control(BODY, 1)
    with pytest.raises(ValueError):
        Sequencer(window=0)
    assert s.next_seq == 1  # nothing was burned


@pytest.mark.parametrize("body", [
    LeaderChange(2, 70_000),  # engine_id above u16
    LeaderChange(2, -1),
    LeaderChange(1 << 32, 1),  # epoch above u32
    SnapshotRequest(-1),
    SnapshotRequest(1 << 64),  # snapshot_id above u64
    SnapshotRequest("7"),
])
def test_a_control_body_that_cannot_be_encoded_changes_nothing(body) -> None:
    s = Sequencer(epoch=1)
    before = s.state_hash()
    with pytest.raises(ValueError):
        s.sequence_control(body, 100)
    assert s.next_seq == 1 and s.epoch == 1 and s.last_ts == 0 and s.state_hash() == before
    assert s.sequence_control(LeaderChange(2, 1), 101).seq == 1  # the epoch rule still holds


def test_memory_stays_bounded_by_twice_the_window() -> None:
    s = Sequencer(window=16)
    for r in range(1, 1_000):
        s.sequence(req(r), r)
        assert len(s._gateways[1].seen) <= 32
    inc, high, seen = s.gateway_state(1)
    assert high == 999 and seen == tuple(range(984, 1000))


def test_observe_is_idempotent_and_rejects_gaps() -> None:
    active, standby = Sequencer(), Sequencer()
    m1 = active.sequence(req(1), 1)
    m2 = active.sequence(req(2), 2)
    m3 = active.sequence(req(3), 3)
    assert standby.observe(m1) and not standby.observe(m1)
    with pytest.raises(SequenceGapError):
        standby.observe(m3)
    assert standby.observe(m2) and standby.observe(m3)
    assert standby.state_hash() == active.state_hash()


# ------------------------------------------------------------- rebuild property

actions = st.lists(st.one_of(
    st.tuples(st.just("req"), st.integers(1, 3), st.integers(1, 3), st.integers(1, 40)),
    st.tuples(st.just("leader"), st.integers(0, 3)),
    st.tuples(st.just("snap"), st.integers(0, 9)),
), max_size=120)


def _run(s: Sequencer, action: tuple, now: int) -> Sequenced | None:
    if action[0] == "req":
        _, gw, inc, r = action
        return s.sequence(Request(gw, inc, r, f"A{gw}", Cancel(f"T{r}", 0)), now)
    if action[0] == "leader":
        return s.sequence_control(LeaderChange(action[1], 1), now)
    return s.sequence_control(SnapshotRequest(action[1]), now)


@settings(max_examples=200)
@given(actions, actions, st.integers(1, 12))
def test_standby_rebuilt_by_observe_matches_hash_and_decisions(
        history: list, future: list, window: int) -> None:
    active = Sequencer(window=window)
    standby = Sequencer(window=window)
    for now, action in enumerate(history):
        msg = _run(active, action, now)
        if msg is not None:
            assert standby.observe(msg)
    assert standby.state_hash() == active.state_hash()
    assert standby.epoch == active.epoch and standby.next_seq == active.next_seq
    for now, action in enumerate(future, start=len(history)):
        assert _run(standby, action, now) == _run(active, action, now)
    assert standby.state_hash() == active.state_hash()


# --------------------------------------------------- the window's safety argument


@settings(max_examples=300)
@given(st.integers(1, 6), st.integers(1, 30), st.lists(st.integers(0, 10**6), max_size=400))
def test_gateway_within_the_window_contract_is_sequenced_exactly_once(
        window: int, n: int, choices: list[int]) -> None:
    """A gateway keeps at most ``window`` request numbers in flight; the network
    reorders and duplicates freely and delays packets without bound. Every
    request is sequenced exactly once."""
    s = Sequencer(window=window)
    sequenced: list[int] = []
    network: list[int] = []  # packets in flight, in any order, duplicates allowed
    next_new = 1
    now = 0

    done: set[int] = set()  # what the gateway knows was sequenced (acks are instant here)

    def may_send(r: int) -> bool:
        return all(x in done for x in range(1, r - window + 1))

    for c in choices + [0] * (20 * n):  # afterwards, keep delivering until everything is in
        now += 1
        if next_new <= n and may_send(next_new) and c % 3 == 0:
            network.append(next_new)
            next_new += 1
        elif network and c % 3 == 1:
            network.append(network[c % len(network)])  # resend or network duplicate
        elif network:
            r = network.pop(c % len(network))
            msg = s.sequence(req(r), now)
            if msg is not None:
                sequenced.append(r)
                done.add(r)
        elif next_new <= n and may_send(next_new):
            network.append(next_new)
            next_new += 1
        else:
            for r in range(1, next_new):  # gateway resends what it has no ack for
                if r not in done:
                    network.append(r)
            if next_new > n and not network:
                break
    assert len(sequenced) == len(set(sequenced)), "a request was sequenced twice"
    assert set(sequenced) == set(range(1, n + 1)), "a request was never sequenced"
