"""Checkers: pure functions from a history and artefacts to a tri-state ``Verdict``.

Each checker takes plain data (history ops, replay-format output dicts, WAL
``(seq, payload)`` records, checkpoint lists, digests), touches no socket,
file or clock, and returns a ``Verdict`` whose evidence says why. See
docs/checkers.md for every checker's inputs and what pass / fail / unknown
mean.
"""

from .book_invariants import check_book
from .continuity import check_sequence, check_wal_continuity
from .determinism import check_checkpoints, check_offline_replay, check_output_streams
from .exactly_once import (
    check_applied_once,
    check_history_once,
    check_reported_once,
    check_same_final_state,
    check_sequenced_once,
)
from .verdict import FAIL, NA, PASS, UNKNOWN, Verdict, combine, enforce, exit_code
from .zero_loss import check_no_corrupt_accepted, check_zero_acked_loss, wal_orders_from_records

__all__ = [
    "FAIL", "NA", "PASS", "UNKNOWN", "Verdict",
    "check_applied_once", "check_book", "check_checkpoints", "check_history_once",
    "check_no_corrupt_accepted", "check_offline_replay", "check_output_streams",
    "check_reported_once", "check_same_final_state", "check_sequence", "check_sequenced_once",
    "check_wal_continuity", "check_zero_acked_loss", "combine", "enforce", "exit_code",
    "wal_orders_from_records",
]
