"""The durability policy: which status a gateway's ack waits for. One rule, asked by every process.

A gateway releases an answer only once the policy covers its input seq.
Three processes must agree on what that means, and all of them ask this
module rather than spelling a policy themselves:

- the gateway's ``AckGate`` builds its threshold from the watermarks the
  policy waits for (``covered_seq``);
- an engine sends its ``EngineStatus`` after every turn when a gate waits on
  it, and paces it otherwise (``engine_status_gates``);
- the logger sends a second watermark right after each fdatasync when a gate
  waits for the durable seq, and otherwise lets it ride on the next one
  (``logger_publishes_durable``).

The table ``WAITS`` is the rule:

===============  ==========================================  ==========================
policy           the ack waits for                           survives
===============  ==========================================  ==========================
``fsync``        the logger's durable (fdatasync'd) seq      power loss
``replicated``   the logger's written seq and the secondary  any one process crash
                 engine's applied seq (the written seq alone
                 when the cluster has no secondary)
``none``         nothing (a benchmark baseline)              nothing: not zero-loss
===============  ==========================================  ==========================
"""

from __future__ import annotations

from typing import NamedTuple

FSYNC = "fsync"
REPLICATED = "replicated"
NONE = "none"
POLICIES = (FSYNC, REPLICATED, NONE)
UNGATED = 1 << 64  #: the covered seq when nothing gates: above every u64 seq


class Waits(NamedTuple):
    """The statuses an ack waits for under one policy."""

    durable: bool  #: the logger's durable watermark
    written: bool  #: the logger's written watermark
    secondary_applied: bool  #: the secondary engine's applied seq


WAITS = {
    FSYNC: Waits(durable=True, written=False, secondary_applied=False),
    REPLICATED: Waits(durable=False, written=True, secondary_applied=True),
    NONE: Waits(durable=False, written=False, secondary_applied=False),
}


def waits_for(policy: str) -> Waits:
    """What ``policy`` waits for; ``ValueError`` for a name that is not a policy."""
    try:
        return WAITS[policy]
    except (KeyError, TypeError):
        raise ValueError(f"durability must be one of {', '.join(POLICIES)} (got {policy!r})") from None


def gates(policy: str) -> bool:
    """Whether the policy holds answers back at all."""
    return any(waits_for(policy))


def covered_seq(waits: Waits, written: int, durable: int, secondary_applied: int,
                has_secondary: bool) -> int:
    """The highest input seq these watermarks cover: the lowest of those ``waits`` names.

    ``UNGATED`` when it names none. A cluster without a secondary engine has
    no applied seq to wait for, so that wait falls away.
    """
    covered = UNGATED
    if waits.durable:
        covered = durable
    if waits.written and written < covered:
        covered = written
    if waits.secondary_applied and has_secondary and secondary_applied < covered:
        covered = secondary_applied
    return covered


def engine_status_gates(policy: str, primary: bool) -> bool:
    """Whether an ack gate waits on this engine's status (then it must not be paced).

    Only a secondary's applied seq gates (``AckGate`` reads the primary's
    status for its epoch and identity only).
    """
    return not primary and waits_for(policy).secondary_applied


def logger_publishes_durable(policy: str) -> bool:
    """Whether the logger must send the durable seq right after its fdatasync."""
    return waits_for(policy).durable
