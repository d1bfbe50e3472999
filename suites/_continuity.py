"""Sequence continuity, checked last in every module that runs a SUT.

Whatever a module did to its SUT (logins refused, garbage fuzzed, components
killed, WAL tails cut and recovered, bus faults), every seq the sequencer
handed out must be in the sequenced input (the stored WAL, else the
journal) exactly once and in order, each record holding its own seq: no
seq consumed without a message, none reused. Each module ends with a test
of the one requirement ``exactly_once.sequence_continuity``; the report
folds them into one row, its coverage summed over the modules. A module
whose SUT sequenced nothing at all (its other requirements were N/A; the
sequencer's head says 0) adds an N/A, which the fold ignores.
"""

from __future__ import annotations

from typing import Any

import _support as s
from _evidence import wal_records

from harness.checkers.continuity import check_wal_continuity
from harness.checkers.verdict import Verdict, too_thin
from harness.coverage import covered
from harness.sut.base import Sut

CONTINUITY = "exactly_once.sequence_continuity"
TITLE = "every seq the sequencer hands out is in the sequenced input once, in order, holding its own message"
SETTLE_S = 5.0


def module_continuity(sut: Sut, profile: dict[str, Any]) -> Verdict:
    """The continuity verdict over everything ``sut`` sequenced so far, up to the sequencer's head."""
    settled = s.settle(sut, timeout_s=SETTLE_S)
    head = s.sequenced_head(sut)
    records = wal_records(sut)
    if head == 0 and not records:  # the module's trials were N/A: its SUT sequenced nothing
        return Verdict.not_applicable(CONTINUITY, f"{sut.name} sequenced nothing in this module "
                                      "(its sequencer's head is 0)")
    v = check_wal_continuity(records, first=1, last=head, requirement=CONTINUITY)
    if head is None:
        v = too_thin(v, f"{sut.name} names no sequencer head: a seq consumed without a message "
                     "could not be seen")
    v.evidence.update(settled=settled["settled"], head=head)
    return covered(v, {"records": len(records)}, profile)
