"""The secondary's view of the primary's output stream: how far has it emitted?

Theory of operation
-------------------
The primary emits its outputs in input order, and the outputs of one input in
index order, each record carrying ``(input seq, index, count, epoch)``. So
when the secondary sees the record with ``index == count - 1`` for input seq
N, every output of every input up to N has left the primary, whether or not
the secondary saw the earlier packets: ``primary_emitted_seq`` is the highest
such N. Inputs with no outputs (heartbeats, control messages) never show on
the stream and need no re-emission.

Only the current epoch counts. Records from an epoch below the highest one
seen, or below the epoch the secondary's own engine has applied
(``raise_epoch``), come from a deposed primary (a zombie) and are ignored, as
gateways ignore them.

On promotion (``engine/succession.py``) the new primary re-emits the outputs
of the inputs after ``primary_emitted_seq``, which it kept in a
``reemit_ring.ReemitRing``. The node feeds the tracker only the current
epoch's output session, in order and gap-filled, so the watermark lies within
what the new primary can serve of the old session. An input whose outputs were only partly
sent is re-emitted whole; gateways drop duplicate ``(input seq, index)``
pairs.

Pure: values in, values out, no I/O, so the failover logic and its tests can
drive it with literal records.
"""

from __future__ import annotations


class EmittedTracker:
    """``primary_emitted_seq`` from the output records the secondary observes."""

    __slots__ = ("epoch", "primary_emitted_seq")

    def __init__(self, epoch: int = 0, primary_emitted_seq: int = 0) -> None:
        self.epoch = epoch
        self.primary_emitted_seq = primary_emitted_seq

    def raise_epoch(self, epoch: int) -> None:
        """The local engine applied a LeaderChange: older epochs no longer count."""
        if epoch > self.epoch:
            self.epoch = epoch

    def observe(self, input_seq: int, index: int, count: int, epoch: int) -> bool:
        """Account for one output record; True if ``primary_emitted_seq`` moved."""
        if epoch < self.epoch:
            return False
        self.epoch = epoch
        if index == count - 1 and input_seq > self.primary_emitted_seq:
            self.primary_emitted_seq = input_seq
            return True
        return False
