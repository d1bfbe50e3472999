"""The muted engine's memory of what it decided: outputs to re-emit on promotion.

Theory of operation
-------------------
A secondary applies every input as the primary does and drops its outputs;
on promotion it must emit the outputs of every input after the primary's
last fully emitted one (``EmittedTracker.primary_emitted_seq``), which it
computed while muted. ``keep`` stores, per input seq that had outputs, what
an output record needs apart from the epoch (the epoch is the new
primary's, stamped when re-emitted): the routing, the stage stamps and the
outputs. ``after(seq)`` hands back, in input order, every kept input above
``seq``.

Bounded: the ring keeps the last ``capacity`` inputs with outputs (the node
gives it ``cluster.capacity``: while the primary's status is fresh, gateway
backpressure keeps every engine within ``backpressure_ratio * capacity`` inputs
of the sequencer's head, so the primary's unemitted inputs are fewer than
that). ``evicted_seq`` is the highest input that fell out; ``complete_after(seq)``
says whether everything above ``seq`` is still held, so a promotion that
cannot re-emit whole says so instead of silently dropping answers.

Pure: no clock, no I/O; the entries are opaque to it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import NamedTuple

from .messages import Output


class Decided(NamedTuple):
    """One input's outputs as the engine decided them, without an epoch."""

    seq: int
    gateway_id: int
    request_seq: int
    ts: int
    sequenced_ns: int
    decided_ns: int
    outputs: tuple[Output, ...]


class ReemitRing:
    """The last ``capacity`` inputs that had outputs, in input order."""

    __slots__ = ("capacity", "evicted_seq", "_kept")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("ring capacity must be at least 1")
        self.capacity = capacity
        self.evicted_seq = 0
        self._kept: deque[Decided] = deque()

    def keep(self, decided: Decided) -> None:
        """Remember one input's outputs; seqs arrive in increasing order."""
        kept = self._kept
        if len(kept) == self.capacity:
            self.evicted_seq = kept.popleft().seq
        kept.append(decided)

    def complete_after(self, seq: int) -> bool:
        """True if every input above ``seq`` that had outputs is still held."""
        return self.evicted_seq <= seq

    def after(self, seq: int) -> Iterator[Decided]:
        """The kept inputs above ``seq``, lowest first."""
        kept = self._kept
        if not kept or kept[-1].seq <= seq:
            return iter(())
        if kept[0].seq > seq:
            return iter(kept)
        return (d for d in kept if d.seq > seq)

    def __len__(self) -> int:
        return len(self._kept)
