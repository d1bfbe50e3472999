"""The gateway's OutputFeed on literal packets: session hand-over, zombie fencing, draining.

A real loopback socket stands in for the recovery socket; re-requests are
read back from a second one (the "new primary's retransmit port").
"""

from __future__ import annotations

import socket

import pytest

from reference_impl.core import mold_codec
from reference_impl.core.output_sessions import session_for
from reference_impl.gateway.output_feed import OutputFeed

BASE = b"CRUCOUT001"
NEW = session_for(BASE, 2)
DRAIN_NS = 1_000_000


@pytest.fixture
def socks():
    recovery, primary = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), \
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    recovery.bind(("127.0.0.1", 0))
    primary.bind(("127.0.0.1", 0))
    primary.settimeout(1.0)
    yield recovery, primary
    recovery.close()
    primary.close()


def feed_for(recovery: socket.socket, primary: socket.socket) -> OutputFeed:
    return OutputFeed(BASE, recovery, lambda seq, count: primary.getsockname(), {},
                      join_within=100, drain_ns=DRAIN_NS)


def data(session: bytes, seq: int, *messages: bytes) -> bytes:
    return mold_codec.encode_packet(session, seq, list(messages))


def payloads(delivered) -> list[bytes]:
    return [payload for _, payload in delivered]


def test_old_session_is_drained_before_the_new_one_and_a_zombie_is_dropped(socks) -> None:
    recovery, primary = socks
    feed = feed_for(recovery, primary)
    assert payloads(feed.on_packet(data(BASE, 1, b"a", b"b"), 0, live=True)) == [b"a", b"b"]
    feed.on_epoch(2, 10)  # the new primary's status: seq 3 of the old session never came
    assert feed.epoch == 2 and feed.closing is not None
    assert feed.on_packet(data(BASE, 4, b"zombie"), 20, live=True) == ()
    assert feed.counters["closed_session_packets"] == 1
    assert feed.on_packet(data(NEW, 1, b"x"), 30, live=True) == ()  # held behind the old one
    end = mold_codec.encode_end_of_session(BASE, 4)
    assert list(feed.on_packet(end, 40, live=True)) == []
    request = mold_codec.decode_request(primary.recv(100))
    assert (request.session, request.seq) == (BASE, 3)  # the gap, asked of the new primary
    refill = feed.on_packet(data(BASE, 3, b"c"), 50, live=False)
    assert payloads(refill) == [b"c", b"x"]  # the old session's last, then what was held
    assert feed.closing is None
    assert feed.on_packet(data(BASE, 5, b"late"), 60, live=False) == ()
    assert feed.counters["stale_session_packets"] == 1
    assert payloads(feed.on_packet(data(NEW, 2, b"y"), 70, live=True)) == [b"y"]


def test_a_closing_session_without_its_end_is_given_up_after_the_drain_time(socks) -> None:
    feed = feed_for(*socks)
    feed.on_packet(data(BASE, 1, b"a"), 0, live=True)
    assert feed.on_packet(data(NEW, 1, b"x"), 5, live=True) == ()  # a new session: switch
    assert feed.on_tick(DRAIN_NS - 1) == []
    assert payloads(feed.on_tick(5 + DRAIN_NS)) == [b"x"]
    assert feed.counters["abandoned_sessions"] == 1 and feed.closing is None


def test_a_gateway_that_saw_nothing_of_the_old_session_has_nothing_to_drain(socks) -> None:
    feed = feed_for(*socks)
    assert payloads(feed.on_packet(data(NEW, 1, b"x"), 0, live=True)) == [b"x"]
    assert feed.closing is None and feed.counters["sessions_followed"] == 1
    feed.on_epoch(2, 1)  # a status for the epoch it already follows changes nothing
    assert feed.counters["sessions_followed"] == 1
