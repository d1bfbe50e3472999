"""A retransmission ring: the last ``capacity`` messages of a stream, by seq.

The sequencer (input stream) keeps one so that a receiver that lost a packet
can re-request it; a message older than ``capacity`` seqs behind the head is
gone from the ring and must come from the logger's archive instead.

Slots are a preallocated list indexed by ``seq % capacity``: storing a
message is one list assignment, with no allocation and no eviction pass.
``serve_request`` turns a MoldUDP64 re-request into the datagrams of the
reply, each at most ``max_payload`` bytes, so the request socket's handler
stays a loop of ``sendto``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable

from reference_impl.core import mold_codec
from reference_impl.core.errors import DecodeError

#: Most datagrams one re-request is answered with (an amplification bound: a
#: receiver asks again for what it still lacks).
MAX_REPLY_PACKETS = 64
#: Most messages looked at for one reply (more than 64 packets can carry).
MAX_REPLY_MESSAGES = 4096


class RetransmitRing:
    __slots__ = ("capacity", "head", "start", "_slots")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("ring capacity must be at least 1")
        self.capacity = capacity
        self.head = 0  #: the highest seq stored (0: none yet)
        self.start = 1  #: the first seq of the current run of consecutive puts
        self._slots: list[bytes | None] = [None] * capacity

    def put(self, seq: int, message: bytes) -> None:
        """Store ``message`` as ``seq``; seqs arrive in order (head + 1).

        A seq that does not follow the head (a process that resumed at seq N)
        starts a new run: nothing before it is claimed to be held.
        """
        if seq != self.head + 1:
            self.start = seq
        self._slots[seq % self.capacity] = message
        self.head = seq

    @property
    def low(self) -> int:
        """The oldest seq still held (head + 1 when empty)."""
        return max(self.start, self.head - self.capacity + 1)

    def get(self, seq: int) -> bytes | None:
        if self.low <= seq <= self.head:
            return self._slots[seq % self.capacity]
        return None

    def range(self, seq: int, count: int) -> tuple[int, list[bytes]]:
        """The held part of ``[seq, seq + count)``: (first seq, messages), possibly empty."""
        first = max(seq, self.low)
        last = min(seq + count - 1, self.head)
        slots, cap = self._slots, self.capacity
        return first, [slots[s % cap] for s in range(first, last + 1)]  # type: ignore[misc]

    def serve_request(self, session: bytes, seq: int, count: int,
                      max_payload: int = 1400) -> list[bytes]:
        """The reply datagrams for a re-request of ``count`` messages from ``seq``.

        Seqs gone from the ring are left out (the archive serves them); a
        request that starts past the head gets a heartbeat carrying the next
        seq, so the requester learns where the stream really is.
        """
        if seq > self.head:
            return [mold_codec.encode_heartbeat(session, self.head + 1)]
        first, messages = self.range(seq, min(count, MAX_REPLY_MESSAGES))
        out: list[bytes] = []
        for group in mold_codec.plan_packets(messages, max_payload):
            if len(out) == MAX_REPLY_PACKETS:
                break
            out.append(mold_codec.encode_packet(session, first, group))
            first += len(group)
        return out


def answer_rerequest(sock: socket.socket, data: bytes, addr: tuple, session: bytes,
                     plan: Callable[[int, int], Iterable[bytes]], counters: dict[str, int],
                     kind: str) -> None:
    """Decode one MoldUDP64 re-request and send ``plan(seq, count)``'s datagrams to its sender.

    Shared by every server of re-requests (the sequencer's ring, the primary's
    output ring, the logger's archive). Counts ``<kind>_requests``,
    ``bad_<kind>_requests`` (undecodable or another stream's session) and
    ``<kind>_packets`` sent; a send error ends the reply (the receiver asks again).
    """
    counters[f"{kind}_requests"] += 1
    try:
        req = mold_codec.decode_request(data)
    except DecodeError:
        req = None
    if req is None or req.session != session:
        counters[f"bad_{kind}_requests"] += 1
        return
    for datagram in plan(req.seq, req.count):
        try:
            sock.sendto(datagram, addr)
        except OSError:
            return
        counters[f"{kind}_packets"] += 1
