"""StatusPacer: when a status datagram goes out (pure: the caller passes the clock)."""

from __future__ import annotations

from reference_impl.core.status_pacer import StatusPacer


def test_status_pacer_holds_owed_statuses_to_the_pace_and_never_drops_one() -> None:
    p = StatusPacer(pace_ns=1_000, heartbeat_ns=50_000)
    assert p.due(10_000, applied=True)  # first status: nothing sent yet
    p.sent(10_000)
    assert not p.due(10_400, applied=True)  # owed, but inside the pace
    assert p.wake_ns() == 11_000  # the loop wakes for it even if nothing else comes
    assert p.due(11_000, applied=False)  # still owed: goes out at the pace
    p.sent(11_000)
    assert not p.due(11_500, applied=False) and p.wake_ns() == 61_000  # idle: heartbeat
    assert p.due(11_500, applied=False, forced=True)  # a checkpoint does not wait
    assert p.due(61_000, applied=False)  # the idle heartbeat
    every_turn = StatusPacer(pace_ns=0, heartbeat_ns=50_000)
    every_turn.sent(5)
    assert not every_turn.due(6, applied=False)
    assert every_turn.due(6, applied=True)
