"""What a resend or gateway-restart trial showed: the counts of its evidence coverage.

``exactly_once.gateway_resend.sequenced_once`` may pass only once the trial
showed the situations a forgetting dedup would fail on (``harness.coverage``
NEEDS). These pure functions count them from the history, the gateway's
counters and the sequenced input; ``check_sequenced_once`` and
``check_history_once`` judge the same evidence.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.history import Op, pairs
from reference_impl.core.messages import CLIENT_BODIES, Sequenced

from .exactly_once import OUTCOME_TYPES

__all__ = ["in_flight_at", "requests_under_new_incarnation", "resends_behind"]


def in_flight_at(ops: Iterable[Op], at_index: int) -> int:
    """Order ops invoked before history index ``at_index`` and not completed before it (``len(ops)`` then)."""
    return sum(1 for inv, done in pairs(ops) if inv.f in OUTCOME_TYPES and inv.index < at_index
               and (done is None or done.index >= at_index))


def resends_behind(horizon: int, forwarded: tuple[int | None, int | None],
                   resends: tuple[int | None, int | None]) -> int:
    """Resends a sequencer met behind at least ``horizon`` other requests of their gateway.

    ``forwarded``: the gateway's forwarded-request counter before a pause and
    at a mark during it; ``resends``: its resend counter at the mark and
    later in the same pause. A resend counted after the mark left behind
    every original forwarded before it, all still unsequenced, so it reaches
    the sequencer behind ``forwarded - 1`` others: the resends after the mark
    count when that is at least ``horizon``, else none does (0; also when a
    reading is missing).
    """
    (f0, f1), (r1, r2) = forwarded, resends
    if f0 is None or f1 is None or r1 is None or r2 is None or f1 - f0 - 1 < horizon:
        return 0
    return max(r2 - r1, 0)


def requests_under_new_incarnation(messages: Iterable[Sequenced], after_seq: int) -> int:
    """Client requests sequenced after ``after_seq`` under an incarnation of their gateway
    newer than every one it used at or before ``after_seq`` (a restarted gateway's)."""
    before: dict[int, int] = {}
    later: list[tuple[int, int]] = []
    for msg in messages:
        if not isinstance(msg.body, CLIENT_BODIES):
            continue
        if msg.seq <= after_seq:
            before[msg.gateway_id] = max(before.get(msg.gateway_id, -1), msg.incarnation)
        else:
            later.append((msg.gateway_id, msg.incarnation))
    return sum(1 for gateway, incarnation in later
               if gateway in before and incarnation > before[gateway])
