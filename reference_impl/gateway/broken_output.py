"""TEST-ONLY broken variant: a gateway that treats a gap in the live output stream as lost.

Switched on only by the config fault ``gateway_skips_output_gap`` (see
docs/config.md). A gateway that (re)joins the stream replays what it missed
as the real one does (its first gaps are re-requested until none is left).
From then on, where the real receiver re-requests a missing range from the
primary, this one gives the range up at once and delivers what follows: a
dropped datagram's output records never reach the gateway, and neither does
a reordered or delayed one (it arrives after its gap was skipped, below
``next_seq``, and is counted as a duplicate). The requests those records
answer get no outcome. A clean live stream never shows it, which is why only
a suite that faults the output stream can catch it. It lives outside
``core/`` so that the real receiver carries no hook.
"""

from __future__ import annotations

from collections.abc import Sequence

from reference_impl.core.receiver import Decision, Deliver, Receiver


class GapSkippingReceiver(Receiver):
    """A ``Receiver`` that, once joined, skips every hole where the real one would request it."""

    __slots__ = ("joined",)

    def __init__(self, next_seq: int = 1) -> None:
        super().__init__(next_seq)
        self.joined = False  #: the join's gaps were all filled: from now on, gaps are given up

    def on_messages(self, first_seq: int, payloads: Sequence[bytes], now_ns: int) -> list[Decision]:
        out = super().on_messages(first_seq, payloads, now_ns)
        self.joined = self.joined or not self._holes
        return out

    def _plan(self, now_ns: int, out: list[Decision]) -> None:
        if not self.joined:
            super()._plan(now_ns, out)
            return
        holes, buffer = self._holes, self._buffer
        while holes:  # the first hole starts at next_seq: jump over it, deliver what was buffered
            nxt = holes.pop(0).end
            while nxt in buffer:
                out.append(Deliver(nxt, buffer.pop(nxt)))
                self.delivered += 1
                nxt += 1
            self.next_seq = nxt
        self.known_end = max(self.known_end, self.next_seq)
        self._wake = None
        self._dirty = False
