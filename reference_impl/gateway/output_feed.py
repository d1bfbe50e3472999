"""The gateway's output stream across promotions: one MoldUDP64 intake per epoch's session.

Theory of operation
-------------------
Each epoch's primary publishes its own session (``core.output_sessions``).
``OutputFeed`` follows the newest epoch it knows of, from a session seen on
the stream or from the primary's ``EngineStatus`` (``on_epoch``), and hands
the desk the records of each session in stream order, an older session's
before a newer one's, so the ack gate sees one ordered stream:

- *current*: the newest session, a ``MoldIntake`` joined like any live stream.
- *closing*: the previous session while it drains. The new primary served it
  as a secondary (in order, gap-filled) and now answers re-requests of it and
  sends its end-of-session packet (its end seq) every ``heartbeat_ms``. Live
  data of a closing session is dropped (``closed_session_packets``): only the
  deposed primary, a zombie, still publishes it; replies to this gateway's
  re-requests come to the recovery socket and are taken, and so is the
  end-of-session packet. The closing session is done once its receiver has
  everything below the end seq (or never started: nothing to fill); or it is
  abandoned (``abandoned_sessions``) after ``drain_ns`` without its end, or
  when a still newer epoch appears.
- While a session is closing, what the current one delivers is held
  (``held``) and handed out right after the closing one finishes.
- Older sessions than these, and other streams, are dropped
  (``stale_session_packets``, ``foreign_session``).

Re-requests of either session go where the node's ``route`` says: the
primary named by the freshest EngineStatus, which is the new primary, the
one engine holding both sessions.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

from reference_impl.core import mold_codec
from reference_impl.core.output_sessions import epoch_of, session_for
from reference_impl.core.receiver import Deliver, Receiver
from reference_impl.edges.mold_intake import MoldIntake, Route

_COUNTERS = ("closed_session_packets", "stale_session_packets", "abandoned_sessions",
             "sessions_followed")


class OutputFeed:
    """The current and the closing output session of one gateway."""

    __slots__ = ("base", "epoch", "current", "closing", "closing_epoch", "closing_end",
                 "closing_since", "held", "counters", "drain_ns", "_sock", "_route", "_join_within")

    def __init__(self, base: bytes, recovery_sock: socket.socket, route: Route,
                 counters: dict[str, int], *, join_within: int, drain_ns: int,
                 receiver: Receiver | None = None) -> None:
        self.base = base
        self.epoch = 1
        self.counters = counters
        for key in _COUNTERS:
            counters.setdefault(key, 0)
        self.drain_ns = drain_ns
        self._sock, self._route, self._join_within = recovery_sock, route, join_within
        self.current = self._intake(base, receiver)
        self.closing: MoldIntake | None = None
        self.closing_epoch = 0
        self.closing_end = 0  #: the closing session's end seq (0: not heard yet)
        self.closing_since = 0
        self.held: list[Deliver] = []

    def _intake(self, session: bytes, receiver: Receiver | None = None) -> MoldIntake:
        return MoldIntake(session, self._sock, self._route, self.counters, receiver=receiver,
                          join_within=self._join_within, stream="output stream")

    def on_epoch(self, epoch: int, now_ns: int) -> None:
        """A newer epoch is known (a session seen, or the primary's status): follow it."""
        if epoch <= self.epoch:
            return
        if self.closing is not None:
            self.counters["abandoned_sessions"] += 1
            self.closing = None
        if self.current.receiver is not None:  # else nothing of it came: nothing to drain
            self.closing, self.closing_epoch = self.current, self.epoch
            self.closing_end, self.closing_since = 0, now_ns
        self.current = self._intake(session_for(self.base, epoch))
        self.epoch = epoch
        self.counters["sessions_followed"] += 1

    def on_packet(self, data: bytes, now_ns: int, live: bool) -> Sequence[Deliver]:
        """One datagram (``live``: from the subscription, else a re-request's reply)."""
        epoch = epoch_of(self.base, data[:mold_codec.SESSION_LEN])
        if epoch is not None and epoch > self.epoch:
            self.on_epoch(epoch, now_ns)
        if epoch is None or epoch == self.epoch:
            out = self.current.on_packet(data, now_ns)
            if self.closing is None:
                return out
            self.held.extend(out)
            return ()
        closing = self.closing
        if closing is None or epoch != self.closing_epoch:
            self.counters["stale_session_packets"] += 1
            return ()
        end = _end_of_session(data)
        if end:
            self.closing_end = end
        elif live:
            self.counters["closed_session_packets"] += 1
            return ()
        out = list(closing.on_packet(data, now_ns))
        return out + self._finish_if_drained()

    def on_tick(self, now_ns: int) -> Sequence[Deliver]:
        """Re-requests that fell due; a closing session that waited too long is given up."""
        self.current.on_tick(now_ns)
        if self.closing is None:
            return ()
        self.closing.on_tick(now_ns)
        if now_ns - self.closing_since >= self.drain_ns:
            self.counters["abandoned_sessions"] += 1
            return self._finish()
        return self._finish_if_drained()

    def _finish_if_drained(self) -> list[Deliver]:
        closing = self.closing
        if closing is None:
            return []
        receiver = closing.receiver
        if self.closing_end and receiver is not None and receiver.next_seq >= self.closing_end:
            return self._finish()
        return []

    def _finish(self) -> list[Deliver]:
        self.closing = None
        held, self.held = self.held, []
        return held

    @property
    def receiver(self) -> Receiver | None:
        return self.current.receiver


def _end_of_session(data: bytes) -> int:
    """The next seq an end-of-session packet announces, else 0 (any other datagram)."""
    if len(data) != mold_codec.HEADER_SIZE:
        return 0
    _, seq, count = mold_codec.HEADER.unpack(data)
    return seq if count == mold_codec.END_OF_SESSION else 0
