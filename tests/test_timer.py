"""edges/timer: the timerfd fires at its absolute deadline, never before; re-arming replaces the deadline;
the timer slack is settable."""

from __future__ import annotations

import ctypes
import select
import threading
import time

from reference_impl.edges.timer import DeadlineTimer, lower_timer_slack

_PR_GET_TIMERSLACK = 30


def _readable(fd: int, timeout_s: float) -> bool:
    return bool(select.select([fd], [], [], timeout_s)[0])


def test_fires_at_the_deadline_not_before() -> None:
    timer = DeadlineTimer()
    try:
        deadline = time.monotonic_ns() + 3_000_000
        timer.arm(deadline)
        assert _readable(timer.fileno(), 5.0)
        assert time.monotonic_ns() >= deadline
    finally:
        timer.close()


def test_rearming_replaces_the_deadline_and_clears_a_pending_expiry() -> None:
    timer = DeadlineTimer()
    try:
        timer.arm(time.monotonic_ns() - 1)  # already past: fires at once
        assert _readable(timer.fileno(), 5.0)
        timer.arm(time.monotonic_ns() + 60 * 10**9)
        assert not _readable(timer.fileno(), 0.02)
    finally:
        timer.close()


def test_lower_timer_slack_sets_the_calling_threads_slack_and_0_restores_it() -> None:
    get = ctypes.CDLL(None).prctl
    seen: list[int] = []

    def body() -> None:
        before = get(_PR_GET_TIMERSLACK, 0, 0, 0, 0)
        lower_timer_slack()
        seen.append(get(_PR_GET_TIMERSLACK, 0, 0, 0, 0))
        lower_timer_slack(0)
        seen.extend([get(_PR_GET_TIMERSLACK, 0, 0, 0, 0), before])

    t = threading.Thread(target=body)  # the slack is per thread: keep pytest's own untouched
    t.start()
    t.join()
    assert seen[0] == 1 and seen[1] == seen[2]  # back to what the thread inherited
