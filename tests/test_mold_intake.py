"""MoldIntake on loopback: the one MoldUDP64 intake of the engines, the logger and the gateways.

Every datagram crosses a real 127.0.0.1 socket on its way in, and every
re-request is read back off the socket the route named, from the intake's
recovery socket.
"""

from __future__ import annotations

import socket

import pytest

from reference_impl.core import mold_codec, sequenced_codec
from reference_impl.core.messages import Cancel, Sequenced
from reference_impl.core.receiver import Receiver
from reference_impl.core.sequenced_codec import poisoned_block
from reference_impl.edges import transport
from reference_impl.edges.mold_intake import MoldIntake

SESSION = b"TESTSESS01"
T0 = 1_000_000_000


def message(seq: int) -> bytes:
    return sequenced_codec.encode(Sequenced(seq, T0 + seq, 1, 1, seq, "DEMO1", Cancel(f"T{seq}", 0)))


def packet(first: int, last: int, session: bytes = SESSION) -> bytes:
    return mold_codec.encode_packet(session, first, [message(s) for s in range(first, last + 1)])


class Wire:
    """A publisher and a subscriber socket on loopback, a re-request listener, and an intake."""

    def __init__(self, **intake_args) -> None:
        self.sub = transport.bind_udp(0)
        self.pub = transport.bind_udp(0)
        self.recovery = transport.bind_udp(0)
        self.archive = transport.bind_udp(0)  #: where the route sends re-requests
        for s in (self.sub, self.archive):
            s.settimeout(1.0)
        self.routed: list[tuple[int, int]] = []
        self.target: tuple[str, int] | None = self.archive.getsockname()
        self.counters: dict[str, int] = {"mine": 0}
        intake_args.setdefault("receiver", Receiver(next_seq=1, retransmit_after_ns=1000))
        self.intake = MoldIntake(SESSION, self.recovery, self.route, self.counters,
                                 **intake_args)

    def route(self, first: int, count: int) -> tuple[str, int] | None:
        self.routed.append((first, count))
        return self.target

    def feed(self, datagram: bytes, now: int = T0) -> list[tuple[int, bytes]]:
        """Send ``datagram`` over loopback, read it off the subscription, hand it to the intake."""
        self.pub.sendto(datagram, self.sub.getsockname())
        return [tuple(d) for d in self.intake.on_packet(self.sub.recv(65535), now)]

    def rerequest(self) -> tuple[tuple[int, int], tuple[str, int]]:
        """The next re-request the listener got: ((seq, count), sender)."""
        data, sender = self.archive.recvfrom(100)
        req = mold_codec.decode_request(data)
        assert req.session == SESSION
        return (req.seq, req.count), sender

    def close(self) -> None:
        for s in (self.sub, self.pub, self.recovery, self.archive):
            s.close()


@pytest.fixture
def wire():
    made: list[Wire] = []

    def make(**intake_args) -> Wire:
        made.append(Wire(**intake_args))
        return made[-1]

    yield make
    for w in made:
        w.close()


def test_in_order_packets_are_delivered_in_order_and_counted(wire) -> None:
    w = wire()
    assert w.feed(packet(1, 3)) == [(s, message(s)) for s in (1, 2, 3)]
    assert w.feed(packet(4, 4)) == [(4, message(4))]
    assert w.counters == {"mine": 0, "packets": 2, "bad_packets": 0, "foreign_session": 0,
                          "poisoned_packets": 0, "send_errors": 0}
    assert w.routed == []


def test_a_duplicate_is_dropped_by_the_receiver(wire) -> None:
    w = wire()
    w.feed(packet(1, 2))
    assert w.feed(packet(1, 2)) == []
    assert w.feed(packet(2, 3)) == [(3, message(3))]
    assert w.intake.receiver.duplicates == 3


def test_a_gap_is_rerequested_from_the_recovery_socket_to_the_routed_address(wire) -> None:
    w = wire()
    assert w.feed(packet(1, 1)) == [(1, message(1))]
    assert w.feed(packet(5, 6)) == []  # held: 2..4 are missing
    assert w.routed == [(2, 3)]
    assert w.rerequest() == ((2, 3), w.recovery.getsockname())
    # the retransmission fills the gap and releases what was held, in order
    assert w.feed(packet(2, 4)) == [(s, message(s)) for s in range(2, 7)]
    # a repeat after retransmit_after_ns, from on_tick
    w.feed(packet(8, 8), now=T0)
    assert w.rerequest()[0] == (7, 1)
    w.intake.on_tick(T0 + 10_000)
    assert w.rerequest()[0] == (7, 1) and w.routed[-1] == (7, 1)


def test_a_heartbeat_reveals_a_lost_tail(wire) -> None:
    w = wire()
    w.feed(packet(1, 2))
    assert w.feed(mold_codec.encode_heartbeat(SESSION, 5)) == []
    assert w.rerequest()[0] == (3, 2)
    assert w.counters["packets"] == 2


def test_a_route_of_none_sends_nothing_and_a_refused_send_is_counted(wire) -> None:
    w = wire()
    w.target = None
    w.feed(packet(3, 3))
    assert w.routed == [(1, 2)]
    w.archive.settimeout(0.05)
    with pytest.raises(socket.timeout):
        w.archive.recv(100)
    w.target = ("255.255.255.255", 9)  # broadcast without SO_BROADCAST: the kernel refuses
    w.intake.on_tick(T0 + 10_000)
    assert w.counters["send_errors"] == 1


def test_another_session_and_garbage_are_dropped_and_counted(wire) -> None:
    w = wire()
    assert w.feed(packet(1, 2, session=b"OTHERSESS1")) == []
    assert w.feed(b"\x00" * 7) == []
    assert (w.counters["foreign_session"], w.counters["bad_packets"], w.counters["packets"]) == (1, 1, 0)
    assert w.intake.receiver.next_seq == 1 and w.routed == []


def test_a_poisoned_block_drops_the_packet_whole_and_the_good_copy_is_delivered(wire) -> None:
    w = wire(check_block=poisoned_block)
    garbled = mold_codec.encode_packet(SESSION, 1, [message(1), message(3)])  # block 1 says seq 3
    assert w.feed(garbled) == []
    assert w.counters["poisoned_packets"] == 1 and w.counters["packets"] == 0
    assert w.intake.receiver.next_seq == 1  # nothing of it was let in
    assert w.feed(packet(1, 2)) == [(1, message(1)), (2, message(2))]


def test_without_a_block_check_any_payload_is_delivered(wire) -> None:
    w = wire()  # the output stream: records, not sequenced messages
    assert w.feed(mold_codec.encode_packet(SESSION, 1, [b"not sequenced"])) == [(1, b"not sequenced")]


@pytest.mark.parametrize("first, join_within, start", [(3, 64, 1), (300, 64, 300)])
def test_joining_a_live_stream(wire, first, join_within, start) -> None:
    w = wire(receiver=None, join_within=join_within)
    assert w.intake.receiver is None
    w.intake.on_tick(T0)  # nothing to do before the first packet
    delivered = w.feed(packet(first, first))
    assert w.intake.receiver.next_seq == (1 if start == 1 else first + 1)
    if start == 1:  # young stream: from seq 1, the rest re-requested
        assert delivered == [] and w.rerequest()[0] == (1, first - 1)
    else:  # older than the publisher's ring: from the live head
        assert delivered == [(first, message(first))]


def test_a_receiver_or_a_join_is_required() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        with pytest.raises(ValueError):
            MoldIntake(SESSION, s, lambda first, count: None, {})
