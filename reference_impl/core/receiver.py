"""The bus receiver's pure logic: in-order, exactly-once delivery over a lossy stream.

Theory of operation
-------------------
The edge decodes MoldUDP64 packets and feeds them in: ``on_messages(first_seq,
payloads, now_ns)`` for data, ``on_heartbeat(next_seq, now_ns)`` for heartbeats
and end of session (they reveal a lost tail), ``on_tick(now_ns)`` from a timer.
Each returns decisions for the edge to carry out: ``Deliver(seq, payload)`` in
strictly increasing, gap-free seq order, each seq once, never one at or below
what was already delivered; then ``RequestRetransmit(first_seq, count)``.

State: ``next_seq`` (everything below it was delivered), ``known_end`` (the
stream is known to hold every seq below it), a buffer of messages received
ahead of ``next_seq``, and *holes*: sorted, disjoint ranges ``[first, end)``
of known-but-missing seqs. Buffer and holes together cover exactly
``[next_seq, known_end)``, so when there is a hole the first one starts at
``next_seq``, and when there is none the buffer is empty.

Each hole carries one outstanding request at most: ``req_end`` (the request
covered ``[first, req_end)``; ``req_end <= first`` means nothing is
outstanding) and ``due``, when to (re)request. A new hole is due after
``request_delay_ns`` (0: at once; a small delay absorbs mere reordering). A
request covers at most ``max_request_count`` seqs (and never more than a
MoldUDP64 request can carry) and is repeated every ``retransmit_after_ns``
while its range stays missing. When the requested part has all arrived, the
rest of the hole is requested at once, so a long gap is filled one chunk at a
time rather than in a single burst that would overrun socket buffers.

Memory bound: only seqs in ``(next_seq, next_seq + max_buffered]`` are
buffered. A message beyond that is dropped (counted) and stays part of a
hole, requested only when delivery has caught up to it: this is "drop the
furthest", done by position so that it costs O(1). Holes are at most
``max_buffered + 1`` within the window, plus O(1) beyond it.
"""

from __future__ import annotations

import hashlib
import struct
from bisect import bisect_right
from collections.abc import Sequence
from operator import attrgetter
from typing import NamedTuple, Union

MAX_MOLD_REQUEST = 0xFFFF  #: a MoldUDP64 request's count is a u16


class Deliver(NamedTuple):
    seq: int
    payload: bytes


class RequestRetransmit(NamedTuple):
    first_seq: int
    count: int


Decision = Union[Deliver, RequestRetransmit]


class _Hole:
    __slots__ = ("first", "end", "req_end", "due")

    def __init__(self, first: int, end: int, req_end: int, due: int) -> None:
        self.first = first
        self.end = end
        self.req_end = req_end
        self.due = due

    def __repr__(self) -> str:
        return f"_Hole([{self.first}, {self.end}) req_end={self.req_end} due={self.due})"


_first = attrgetter("first")


class Receiver:
    """In-order, exactly-once delivery with gap re-requests; inputs in, decisions out."""

    __slots__ = ("next_seq", "known_end", "max_buffered", "retransmit_after_ns",
                 "request_delay_ns", "max_request_count", "duplicates", "overflow_dropped",
                 "gaps_requested", "messages_requested", "delivered", "_buffer", "_holes",
                 "_wake", "_dirty")

    def __init__(self, next_seq: int = 1, max_buffered: int = 65536,
                 retransmit_after_ns: int = 2_000_000, request_delay_ns: int = 0,
                 max_request_count: int = 1024) -> None:
        if next_seq < 1 or max_buffered < 1 or max_request_count < 1:
            raise ValueError("next_seq, max_buffered and max_request_count must be >= 1")
        if retransmit_after_ns < 1 or request_delay_ns < 0:
            raise ValueError("retransmit_after_ns must be > 0, request_delay_ns >= 0")
        self.next_seq = next_seq
        self.known_end = next_seq
        self.max_buffered = max_buffered
        self.retransmit_after_ns = retransmit_after_ns
        self.request_delay_ns = request_delay_ns
        self.max_request_count = min(max_request_count, MAX_MOLD_REQUEST)
        self.duplicates = 0  #: at or below next_seq - 1, or already buffered
        self.overflow_dropped = 0  #: beyond the buffer window; re-requested later
        self.gaps_requested = 0  #: RequestRetransmit decisions made
        self.messages_requested = 0  #: the sum of their counts
        self.delivered = 0
        self._buffer: dict[int, bytes] = {}
        self._holes: list[_Hole] = []
        self._wake: int | None = None  #: earliest due among requestable holes
        self._dirty = False  #: holes or the window changed since the last plan

    # ------------------------------------------------------------------ inputs

    def on_messages(self, first_seq: int, payloads: Sequence[bytes], now_ns: int) -> list[Decision]:
        """A data packet's messages: ``payloads[i]`` is seq ``first_seq + i``."""
        n = len(payloads)
        if first_seq == self.next_seq and not self._holes:
            # The common case: in order, nothing missing. known_end == next_seq here.
            out: list[Decision] = list(map(Deliver, range(first_seq, first_seq + n), payloads))
            self.next_seq = self.known_end = first_seq + n
            self.delivered += n
            return out
        out = []
        for i in range(n):
            self._on_one(first_seq + i, payloads[i], now_ns, out)
        self._plan(now_ns, out)
        return out

    def on_heartbeat(self, next_seq: int, now_ns: int) -> list[Decision]:
        """A heartbeat or end of session: the stream's next seq is ``next_seq``."""
        if next_seq > self.known_end:
            self._extend(next_seq, now_ns)
        out: list[Decision] = []
        self._plan(now_ns, out)
        return out

    def on_tick(self, now_ns: int) -> list[Decision]:
        out: list[Decision] = []
        self._plan(now_ns, out)
        return out

    # --------------------------------------------------------------- internals

    def _extend(self, new_end: int, now_ns: int) -> None:
        """Every seq in [known_end, new_end) is now known to exist and is missing."""
        holes = self._holes
        last = holes[-1] if holes else None
        if last is not None and last.end == self.known_end and last.req_end <= last.first:
            last.end = new_end  # grow an unrequested tail hole rather than fragment it
        else:
            due = now_ns + self.request_delay_ns
            holes.append(_Hole(self.known_end, new_end, self.known_end, due))
        self.known_end = new_end
        self._dirty = True

    def _on_one(self, seq: int, payload: bytes, now_ns: int, out: list[Decision]) -> None:
        if seq < self.next_seq or seq in self._buffer:
            self.duplicates += 1
            return
        if seq >= self.known_end:
            if seq > self.next_seq + self.max_buffered:
                self.overflow_dropped += 1
                self._extend(seq + 1, now_ns)
                return
            if seq > self.known_end:
                self._extend(seq, now_ns)
            self.known_end = seq + 1
        else:
            if seq > self.next_seq + self.max_buffered:
                self.overflow_dropped += 1  # it stays in its hole
                return
            self._fill(seq, now_ns)
        if seq != self.next_seq:
            self._buffer[seq] = payload
            return
        out.append(Deliver(seq, payload))
        nxt = seq + 1
        buffer = self._buffer
        while nxt in buffer:
            out.append(Deliver(nxt, buffer.pop(nxt)))
            nxt += 1
        self.delivered += nxt - seq
        self.next_seq = nxt
        self._dirty = True  # the buffer window slid

    def _fill(self, seq: int, now_ns: int) -> None:
        """Take ``seq`` out of the hole that holds it (it must be in one)."""
        holes = self._holes
        i = bisect_right(holes, seq, key=_first) - 1
        hole = holes[i]
        first, end, req_end = hole.first, hole.end, hole.req_end
        self._dirty = True
        if seq == first:
            if end == seq + 1:
                del holes[i]
                return
            hole.first = seq + 1
            if req_end == seq + 1:  # the requested part has all arrived: ask for the rest
                hole.due = now_ns
            return
        if seq == end - 1:
            hole.end = seq
            if req_end > seq:
                hole.req_end = seq
            return
        right_req = req_end if req_end > seq + 1 else seq + 1
        right_due = hole.due if (req_end > seq + 1 or req_end <= first) else now_ns
        hole.end = seq
        if req_end > seq:
            hole.req_end = seq
        holes.insert(i + 1, _Hole(seq + 1, end, right_req, right_due))

    def _plan(self, now_ns: int, out: list[Decision]) -> None:
        """Request every requestable hole whose time has come; recompute the wake time."""
        if not self._dirty and (self._wake is None or now_ns < self._wake):
            return
        self._dirty = False
        limit = self.next_seq + self.max_buffered  # highest seq the buffer may hold
        wake: int | None = None
        for hole in self._holes:
            first = hole.first
            if first > limit:
                break
            if hole.due <= now_ns:
                count = min(hole.end - first, self.max_request_count, limit - first + 1)
                out.append(RequestRetransmit(first, count))
                self.gaps_requested += 1
                self.messages_requested += count
                hole.req_end = first + count
                hole.due = now_ns + self.retransmit_after_ns
            if wake is None or hole.due < wake:
                wake = hole.due
        self._wake = wake

    # -------------------------------------------------------------- inspection

    @property
    def next_wake_ns(self) -> int | None:
        """When ``on_tick`` next has work (None: nothing pending); for the edge's timer."""
        return self._wake

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def missing(self) -> list[tuple[int, int]]:
        """The holes as (first_seq, count), for status and tests."""
        return [(h.first, h.end - h.first) for h in self._holes]

    def counters(self) -> dict[str, int]:
        return {"duplicates": self.duplicates, "overflow_dropped": self.overflow_dropped,
                "gaps_requested": self.gaps_requested,
                "messages_requested": self.messages_requested, "delivered": self.delivered,
                "buffered": len(self._buffer)}

    def state_hash(self) -> str:
        """sha256 over next_seq, known_end, the holes and the buffered messages.

        Request timing is left out: it depends on the local clock, not the stream.
        """
        h = hashlib.sha256(struct.pack(">QQ", self.next_seq, self.known_end))
        for hole in self._holes:
            h.update(struct.pack(">QQ", hole.first, hole.end))
        for seq in sorted(self._buffer):
            payload = self._buffer[seq]
            h.update(struct.pack(">QI", seq, len(payload)))
            h.update(payload)
        return h.hexdigest()
