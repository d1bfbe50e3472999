"""One MoldUDP64 intake for every subscriber node: datagrams in, in-order messages out.

Theory of operation
-------------------
The engines and the logger subscribe to the input stream, the gateways to
the output stream, and each treats a datagram from its subscription or its
recovery socket the same way. ``MoldIntake.on_packet(data, now_ns)``:

1. decodes it (``mold_codec.decode_packet``); one that does not parse is
   counted (``bad_packets``) and dropped: it never claimed a seq;
2. drops a packet of another session (``foreign_session``);
3. on a stream of sequenced messages (``check_block =
   sequenced_codec.poisoned_block``), drops whole a data packet whose blocks
   are not the stream's seqs (``poisoned_packets``): the receiver keeps the
   first copy of a seq, so a damaged copy let in would shut out the good one,
   while a dropped one stays a gap that is re-requested;
4. feeds the rest to ``core.receiver.Receiver`` (``packets``): data to
   ``on_messages``, a heartbeat or end of session to ``on_heartbeat`` (it
   reveals a lost tail);
5. sends each ``RequestRetransmit`` the receiver decided as a MoldUDP64
   request, from the recovery socket (replies come back to it) to the address
   the node's ``route(first_seq, count)`` picks (None: not sent), counting
   refused sends (``send_errors``);
6. returns the receiver's ``Deliver`` decisions, ``(seq, payload)`` in
   strictly increasing seq order, each seq once, for the node to apply,
   append or release in its own loop.

``on_tick(now_ns)`` sends the re-requests that fell due (the receiver's
``next_wake_ns``). A subscriber that joins a live stream starts without a
receiver (``join_within = N``): the first packet of the session starts one at
seq 1 while the stream is at most ``N`` seqs old (the publisher's ring can
still replay all of it), else at the live head.

The counters go into the node's own ``counters`` dict, beside its other ones.
Cost per packet: one decode, one call into the receiver and the session and
block checks; per message nothing beyond the receiver's ``Deliver``, whose
list is handed back as is when it holds no request (the receiver puts its
requests after its deliveries).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence

from reference_impl.core import mold_codec
from reference_impl.core.errors import DecodeError
from reference_impl.core.mold_codec import MoldPacket
from reference_impl.core.receiver import Deliver, Receiver

#: ``route(first_seq, count)``: where a re-request goes (None: it is not sent)
Route = Callable[[int, int], tuple[str, int] | None]
#: ``check(first_seq, messages)``: why a data packet's blocks are bad, or None
BlockCheck = Callable[[int, Sequence[bytes]], str | None]
COUNTERS = ("packets", "bad_packets", "foreign_session", "poisoned_packets", "send_errors")


def open_packet(data: bytes, session: bytes, counters: dict[str, int],
                log: logging.Logger | None = None, stream: str = "stream") -> MoldPacket | None:
    """Decode one datagram of ``session``; None (counted) for garbage or another session."""
    try:
        packet = mold_codec.decode_packet(data)
    except DecodeError as exc:
        counters["bad_packets"] += 1
        if log is not None:
            log.warning("dropped a malformed datagram on the %s: %s", stream, exc)
        return None
    if packet.session != session:
        counters["foreign_session"] += 1
        return None
    return packet


class MoldIntake:
    """A subscriber's side of one MoldUDP64 stream: checks, ordering, gap re-requests."""

    __slots__ = ("session", "receiver", "counters", "stream", "_sock", "_route", "_check_block",
                 "_join_within", "_log")

    def __init__(self, session: bytes, recovery_sock: socket.socket, route: Route,
                 counters: dict[str, int], *, receiver: Receiver | None = None,
                 join_within: int = 0, check_block: BlockCheck | None = None,
                 log: logging.Logger | None = None, stream: str = "stream") -> None:
        if receiver is None and join_within < 1:
            raise ValueError("give a receiver, or join_within >= 1 to start one on the first packet")
        self.session = session
        self.receiver = receiver
        self.counters = counters
        self.stream = stream  #: names the stream in log lines
        for key in COUNTERS:
            counters.setdefault(key, 0)
        self._sock = recovery_sock
        self._route = route
        self._check_block = check_block
        self._join_within = join_within
        self._log = log

    def on_packet(self, data: bytes, now_ns: int) -> Sequence[Deliver]:
        """One datagram (live or a retransmission): the messages it makes deliverable."""
        packet = open_packet(data, self.session, self.counters, self._log, self.stream)
        if packet is None:
            return ()
        receiver = self.receiver
        if receiver is None:
            receiver = self._join(packet)
        messages = packet.messages
        if messages:
            check = self._check_block
            if check is not None:
                bad = check(packet.seq, messages)
                if bad is not None:
                    self.counters["poisoned_packets"] += 1
                    if self._log is not None:
                        self._log.warning("dropped a packet of the %s at seq %d: %s",
                                          self.stream, packet.seq, bad)
                    return ()
            self.counters["packets"] += 1
            decisions = receiver.on_messages(packet.seq, messages, now_ns)
        else:
            self.counters["packets"] += 1
            decisions = receiver.on_heartbeat(packet.seq, now_ns)
        if decisions and type(decisions[-1]) is not Deliver:
            self._send_requests(decisions)
        return decisions

    def on_tick(self, now_ns: int) -> None:
        """Send the re-requests that fell due (a tick never delivers)."""
        if self.receiver is not None:
            self._send_requests(self.receiver.on_tick(now_ns))

    def _join(self, packet: MoldPacket) -> Receiver:
        head = packet.seq if packet.messages else packet.seq - 1
        start = 1 if head <= self._join_within else max(packet.seq, 1)
        self.receiver = Receiver(next_seq=start)
        return self.receiver

    def _send_requests(self, decisions: list) -> None:
        """Send the trailing ``RequestRetransmit`` decisions and remove them from the list."""
        first = len(decisions)
        while first and type(decisions[first - 1]) is not Deliver:
            first -= 1
        sendto, encode, session = self._sock.sendto, mold_codec.encode_request, self.session
        for seq, count in decisions[first:]:
            addr = self._route(seq, count)
            if addr is None:
                continue
            try:
                sendto(encode(session, seq, count), addr)
            except OSError:
                self.counters["send_errors"] += 1
        del decisions[first:]
