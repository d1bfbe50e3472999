"""The ack gate: which inputs' outputs may leave the gateway, and when.

Theory of operation
-------------------
Output records arrive in output-stream order (the receiver sees to that), so
all records of input seq ``n`` arrive before any of ``n + 1`` from one
primary. ``on_record`` gathers them by input seq: an input is *complete*
when all ``count`` records are in. Dropped on the way in:

- records from an epoch below the highest seen in a record: a deposed
  primary's, which count for nothing. Records only: the gateway's
  ``output_feed`` hands over an old epoch's session whole (gap fills
  included) before the new one's, and drops a zombie's live packets itself,
  so a status naming a new epoch must not fence the old session's gap fills;
- a repeated ``(input seq, index)``, and any record of an input at or below
  the highest complete one: a promoted primary re-emits inputs whole;
- a record whose ``count`` exceeds ``MAX_OUTPUTS_PER_INPUT`` (counted as
  ``oversized_outputs``): the count is the sender's word, so it bounds
  nothing by itself.

An incomplete input keeps only the records that arrived (index -> record),
never a list sized by the peer's ``count``; it is forgotten once an input at
or above its seq completes (it can no longer complete: the stream is in
order) or once the epoch rises above its own (a deposed primary's).

A complete input is *held* until the durability policy covers its seq
(``threshold``). Which watermarks a policy waits for is ``core.durability``'s
rule (the logger's durable seq under ``fsync``; its written seq and the
secondary's applied seq under ``replicated``; nothing under ``none``), which
the engines and the logger ask too; ``ungated`` (the test-only fault
``ack_before_durable``) lets every seq out.

``releasable()`` pops the held inputs at or below the threshold, lowest seq
first, with their records in index order. Watermarks only grow (a restarted
logger that reports less cannot take back what was durable).
"""

from __future__ import annotations

import heapq

from . import durability
from .durability import UNGATED
from .output_codec import OutputRecord
from .status_codec import EngineStatus, LoggerWatermark

#: The most output records one input may have. An input yields one ack or
#: reject, two executions per match and at most one cancel, so this admits a
#: sweep of 2046 resting orders; a record claiming more is dropped (counted
#: ``oversized_outputs``) rather than trusted to size anything.
MAX_OUTPUTS_PER_INPUT = 4096


class AckGate:
    """Gathers output records per input and releases complete inputs by policy."""

    __slots__ = ("durability", "waits", "ungated", "has_secondary", "highest_complete", "max_epoch",
                 "written_seq", "durable_seq", "secondary_applied", "primary_id",
                 "_primary_epoch", "_incomplete", "_held", "_complete", "counters")

    def __init__(self, policy: str, ungated: bool = False, has_secondary: bool = True) -> None:
        self.waits = durability.waits_for(policy)  # ValueError for an unknown policy
        self.durability = policy
        self.ungated = ungated or not durability.gates(policy)
        self.has_secondary = has_secondary
        self.highest_complete = 0
        self.max_epoch = 0
        self.written_seq = 0
        self.durable_seq = 0
        self.secondary_applied = 0
        self.primary_id = 0  #: the engine whose status says primary (highest epoch); 0: unknown
        self._primary_epoch = -1
        # input seq -> (count, epoch, {index: record}): only the records that came
        self._incomplete: dict[int, tuple[int, int, dict[int, OutputRecord]]] = {}
        self._held: list[int] = []  # heap of complete input seqs
        self._complete: dict[int, list[OutputRecord]] = {}
        self.counters = {"outputs": 0, "duplicate_outputs": 0, "stale_epoch_outputs": 0,
                         "oversized_outputs": 0, "abandoned_inputs": 0}

    # ---------------------------------------------------------------- inputs

    def on_record(self, rec: OutputRecord) -> bool:
        """Take one record; True when it completed its input (now held)."""
        epoch = rec.epoch
        if epoch < self.max_epoch:
            self.counters["stale_epoch_outputs"] += 1
            return False
        if epoch > self.max_epoch:
            self._raise_epoch(epoch)
        count = rec.count
        if count > MAX_OUTPUTS_PER_INPUT:
            self.counters["oversized_outputs"] += 1
            return False
        seq = rec.output.seq
        entry = self._incomplete.get(seq)
        if entry is None:
            if seq <= self.highest_complete:
                self.counters["duplicate_outputs"] += 1
                return False
            entry = self._incomplete[seq] = (count, epoch, {})
        want, _, got = entry
        index = rec.index
        if index >= want or index in got:
            self.counters["duplicate_outputs"] += 1
            return False
        self.counters["outputs"] += 1
        got[index] = rec
        if len(got) < want:
            return False
        incomplete = self._incomplete
        del incomplete[seq]
        self._complete[seq] = [got[i] for i in range(want)]
        if seq > self.highest_complete:
            self.highest_complete = seq
            if incomplete:
                self._forget(lambda s, e: s <= seq)
        heapq.heappush(self._held, seq)
        return True

    def _raise_epoch(self, epoch: int) -> None:
        self.max_epoch = epoch
        if self._incomplete:
            self._forget(lambda s, e: e < epoch)

    def _forget(self, dead) -> None:
        """Drop the incomplete inputs ``dead(seq, epoch)`` says can never complete."""
        incomplete = self._incomplete
        gone = [s for s, (_, e, _) in incomplete.items() if dead(s, e)]
        for s in gone:
            del incomplete[s]
        self.counters["abandoned_inputs"] += len(gone)

    def on_logger(self, w: LoggerWatermark) -> None:
        if w.written_seq > self.written_seq:
            self.written_seq = w.written_seq
        if w.durable_seq > self.durable_seq:
            self.durable_seq = w.durable_seq

    def on_engine(self, s: EngineStatus) -> None:
        if s.primary:
            if s.epoch >= self._primary_epoch:
                self._primary_epoch = s.epoch
                self.primary_id = s.component_id
        elif s.applied_seq > self.secondary_applied:
            self.secondary_applied = s.applied_seq

    # --------------------------------------------------------------- release

    def threshold(self) -> int:
        """The highest input seq the policy lets out now."""
        if self.ungated:
            return UNGATED
        return durability.covered_seq(self.waits, self.written_seq, self.durable_seq,
                                      self.secondary_applied, self.has_secondary)

    def releasable(self) -> list[tuple[int, list[OutputRecord]]]:
        """Pop every held input the policy now covers: ``(seq, records)``, lowest seq first."""
        held = self._held
        if not held:
            return []
        limit = self.threshold()
        out = []
        while held and held[0] <= limit:
            seq = heapq.heappop(held)
            out.append((seq, self._complete.pop(seq)))
        return out

    # ------------------------------------------------------------ inspection

    @property
    def held(self) -> int:
        return len(self._held)

    @property
    def incomplete(self) -> int:
        return len(self._incomplete)

    def watermarks(self) -> dict[str, int]:
        limit = self.threshold()
        return {"written": self.written_seq, "durable": self.durable_seq,
                "secondary_applied": self.secondary_applied,
                "highest_complete": self.highest_complete,
                "gate": -1 if limit == UNGATED else limit, "epoch": self.max_epoch}
