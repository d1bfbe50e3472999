"""Bus receiver: exactly-once in-order delivery under loss, duplication and reordering."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_impl.core.receiver import Deliver, Receiver, RequestRetransmit

R = 1_000  # retransmit_after_ns used throughout


def payload(seq: int) -> bytes:
    return b"m%d" % seq


def msgs(first: int, count: int) -> list[bytes]:
    return [payload(s) for s in range(first, first + count)]


def delivered(decisions: list) -> list[int]:
    return [d.seq for d in decisions if isinstance(d, Deliver)]


def requests(decisions: list) -> list[tuple[int, int]]:
    return [tuple(d) for d in decisions if isinstance(d, RequestRetransmit)]


def test_in_order_stream_is_delivered_at_once() -> None:
    rx = Receiver(retransmit_after_ns=R)
    out = rx.on_messages(1, msgs(1, 3), 0)
    assert out == [Deliver(1, b"m1"), Deliver(2, b"m2"), Deliver(3, b"m3")]
    assert rx.on_messages(4, msgs(4, 1), 0) == [Deliver(4, b"m4")]
    assert rx.next_seq == 5 and rx.next_wake_ns is None and rx.on_heartbeat(5, 1) == []


def test_duplicates_are_dropped_and_counted() -> None:
    rx = Receiver(retransmit_after_ns=R)
    rx.on_messages(1, msgs(1, 3), 0)
    assert rx.on_messages(2, msgs(2, 3), 0) == [Deliver(4, b"m4")]  # 2, 3 already delivered
    rx.on_messages(7, msgs(7, 1), 0)
    assert delivered(rx.on_messages(7, msgs(7, 1), 0)) == []  # already buffered
    assert rx.duplicates == 3


def test_gap_is_requested_at_once_and_filling_it_releases_the_buffer() -> None:
    rx = Receiver(retransmit_after_ns=R)
    rx.on_messages(1, msgs(1, 1), 0)
    out = rx.on_messages(4, msgs(4, 2), 10)
    assert delivered(out) == [] and requests(out) == [(2, 2)]
    assert rx.missing() == [(2, 2)] and rx.buffered == 2
    out = rx.on_messages(2, msgs(2, 2), 20)
    assert out == [Deliver(2, b"m2"), Deliver(3, b"m3"), Deliver(4, b"m4"), Deliver(5, b"m5")]
    assert rx.missing() == [] and rx.buffered == 0 and rx.next_seq == 6
    assert rx.gaps_requested == 1 and rx.messages_requested == 2


def test_heartbeat_reveals_a_lost_tail() -> None:
    rx = Receiver(retransmit_after_ns=R)
    rx.on_messages(1, msgs(1, 2), 0)
    assert rx.on_heartbeat(6, 5) == [RequestRetransmit(3, 3)]
    assert rx.on_heartbeat(4, 6) == []  # a stale (reordered) heartbeat changes nothing


def test_request_repeats_only_after_the_timeout_while_the_gap_persists() -> None:
    rx = Receiver(retransmit_after_ns=R)
    rx.on_heartbeat(3, 0)
    assert rx.next_wake_ns == R
    assert rx.on_tick(R - 1) == []
    assert rx.on_tick(R) == [RequestRetransmit(1, 2)]
    rx.on_messages(1, msgs(1, 1), R + 5)
    assert rx.on_tick(2 * R - 1) == []
    assert rx.on_tick(2 * R) == [RequestRetransmit(2, 1)]
    rx.on_messages(2, msgs(2, 1), 2 * R + 1)
    assert rx.next_wake_ns is None and rx.on_tick(10 * R) == []


def test_long_gap_is_requested_one_chunk_at_a_time() -> None:
    rx = Receiver(retransmit_after_ns=R, max_request_count=3)
    assert rx.on_heartbeat(11, 0) == [RequestRetransmit(1, 3)]
    assert rx.on_messages(1, msgs(1, 2), 1) == [Deliver(1, b"m1"), Deliver(2, b"m2")]
    out = rx.on_messages(3, msgs(3, 1), 2)  # the chunk is complete: ask for the next one
    assert delivered(out) == [3] and requests(out) == [(4, 3)]


def test_chunk_never_exceeds_a_mold_request() -> None:
    rx = Receiver(retransmit_after_ns=R, max_request_count=10**6)
    assert rx.on_heartbeat(10**6, 0) == [RequestRetransmit(1, 0xFFFF)]


def test_split_hole_keeps_one_outstanding_request_per_range() -> None:
    rx = Receiver(retransmit_after_ns=R)
    assert rx.on_heartbeat(11, 0) == [RequestRetransmit(1, 10)]
    assert requests(rx.on_messages(5, msgs(5, 1), 1)) == []  # both halves still covered
    assert rx.missing() == [(1, 4), (6, 5)]
    assert rx.on_tick(R) == [RequestRetransmit(1, 4), RequestRetransmit(6, 5)]


def test_buffer_is_bounded_and_overflow_is_requested_later() -> None:
    rx = Receiver(retransmit_after_ns=R, max_buffered=4)
    out = rx.on_messages(2, msgs(2, 9), 0)  # 1 lost; 2..5 fit, 6..10 do not
    assert rx.buffered == 4 and rx.overflow_dropped == 5
    assert requests(out) == [(1, 1)]  # nothing beyond the window is requested yet
    out = rx.on_messages(1, msgs(1, 1), 1)
    assert delivered(out) == [1, 2, 3, 4, 5] and requests(out) == [(6, 5)]  # 6..10 fit now
    out = rx.on_messages(6, msgs(6, 5), 2)
    assert delivered(out) == [6, 7, 8, 9, 10] and rx.missing() == []


def test_request_delay_absorbs_reordering() -> None:
    rx = Receiver(retransmit_after_ns=R, request_delay_ns=50)
    assert rx.on_messages(2, msgs(2, 1), 0) == []
    assert rx.next_wake_ns == 50
    assert delivered(rx.on_messages(1, msgs(1, 1), 10)) == [1, 2]
    assert rx.on_tick(100) == [] and rx.gaps_requested == 0
    rx.on_messages(4, msgs(4, 1), 200)
    assert rx.on_tick(249) == [] and rx.on_tick(250) == [RequestRetransmit(3, 1)]


def test_joining_mid_stream_requests_from_next_seq() -> None:
    rx = Receiver(next_seq=100, retransmit_after_ns=R)
    assert rx.on_messages(1, msgs(1, 5), 0) == []  # all older than what we need
    assert requests(rx.on_messages(105, msgs(105, 1), 0)) == [(100, 5)]


def test_state_hash_tracks_the_stream_not_the_clock() -> None:
    a, b = Receiver(retransmit_after_ns=R), Receiver(retransmit_after_ns=5 * R)
    for rx, t in ((a, 0), (b, 777)):
        rx.on_messages(1, msgs(1, 1), t)
        rx.on_messages(4, msgs(4, 1), t)
    assert a.state_hash() == b.state_hash()
    a.on_messages(2, msgs(2, 1), 1)
    assert a.state_hash() != b.state_hash()


def test_bad_parameters() -> None:
    for kwargs in ({"next_seq": 0}, {"max_buffered": 0}, {"max_request_count": 0},
                   {"retransmit_after_ns": 0}, {"request_delay_ns": -1}):
        with pytest.raises(ValueError):
            Receiver(**kwargs)


# ------------------------------------------------------------------- the property


@st.composite
def lossy_schedules(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]]]:
    """Stream 1..n cut into packets, then shuffled, duplicated and partly dropped."""
    n = draw(st.integers(1, 120))
    packets, seq = [], 1
    while seq <= n:
        size = draw(st.integers(1, min(8, n - seq + 1)))
        packets.append((seq, size))
        seq += size
    extra = draw(st.lists(st.sampled_from(packets), max_size=len(packets)))
    schedule = draw(st.permutations(packets + extra))
    kept = [p for p, keep in zip(schedule, draw(st.lists(st.booleans(), min_size=len(schedule),
                                                        max_size=len(schedule)))) if keep]
    return n, kept


@settings(max_examples=300, deadline=None)
@given(lossy_schedules(), st.integers(1, 64), st.integers(1, 16), st.integers(0, 300),
       st.lists(st.booleans(), max_size=40), st.integers(0, 3))
def test_any_lossy_stream_is_delivered_exactly_once_in_order(
        sched: tuple[int, list[tuple[int, int]]], max_buffered: int, max_request: int,
        delay: int, lose_responses: list[bool], heartbeats_every: int) -> None:
    n, schedule = sched
    rx = Receiver(max_buffered=max_buffered, retransmit_after_ns=R, request_delay_ns=delay,
                  max_request_count=max_request)
    got: list[Deliver] = []
    pending: deque[RequestRetransmit] = deque()
    asked: list[tuple[int, int, int]] = []  # (time, first, count)
    now = 0

    def handle(decisions: list) -> None:
        for d in decisions:
            if isinstance(d, Deliver):
                got.append(d)
            else:
                assert 1 <= d.count <= max_request and d.first_seq > len(got)  # never delivered
                pending.append(d)
                asked.append((now, d.first_seq, d.count))

    for i, (first, count) in enumerate(schedule):
        now += 7
        handle(rx.on_messages(first, msgs(first, count), now))
        if heartbeats_every and i % heartbeats_every == 0:
            handle(rx.on_heartbeat(max(f + c for f, c in schedule[: i + 1]), now))
    now += 7
    handle(rx.on_heartbeat(n + 1, now))  # the idle stream's heartbeat reveals any lost tail

    losses = iter(lose_responses)
    for _ in range(100_000):
        if len(got) == n and not rx.missing():
            break
        now += 3
        if pending:
            req = pending.popleft()
            if next(losses, False):
                continue  # the response was lost too
            last = min(req.first_seq + req.count, n + 1)
            for first in range(req.first_seq, last, 5):  # answered as several packets
                handle(rx.on_messages(first, msgs(first, min(5, last - first)), now))
        else:
            now += R
            handle(rx.on_tick(now))
    assert [d.seq for d in got] == list(range(1, n + 1))
    assert all(d.payload == payload(d.seq) for d in got)
    assert rx.buffered == 0 and rx.missing() == [] and rx.next_seq == n + 1
    for i, (t1, f1, c1) in enumerate(asked):  # one outstanding request per range
        for t2, f2, c2 in asked[i + 1:]:
            if f1 < f2 + c2 and f2 < f1 + c1:
                assert t2 - t1 >= R, f"overlapping requests {f1}+{c1} at {t1}, {f2}+{c2} at {t2}"
