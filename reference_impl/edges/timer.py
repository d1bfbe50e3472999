"""Microsecond-resolution deadlines for the nodes' blocking waits (Linux).

``epoll_wait`` takes its timeout in whole milliseconds (Python rounds a
200 µs timeout up to 1 ms) and the kernel adds the thread's timer slack
(50 µs by default) on top, so a node that asks to wake in 200 µs wakes after
about 1.1 ms. Two things fix that without spinning:

- a ``DeadlineTimer``: a ``timerfd`` on CLOCK_MONOTONIC, armed at an absolute
  deadline in ns and registered in the waiter's epoll set, so ``epoll_wait``
  can block with no timeout of its own and still wake at the deadline;
- ``lower_timer_slack``: ``prctl(PR_SET_TIMERSLACK, 1)`` for the calling
  thread, because on this kernel a timerfd's expiry is deferred by the
  slack too (about 50 µs at the default).

``benchmarks/timer_overshoot.py`` measures the overshoot of each. Python 3.11
has no ``os.timerfd_create``, hence ctypes; ``time.monotonic_ns()`` reads the
same clock the timer is armed on.
"""

from __future__ import annotations

import ctypes
import os
import time

_PR_SET_TIMERSLACK = 29
_TFD_TIMER_ABSTIME = 1
_NS = 1_000_000_000

_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.timerfd_settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]


def lower_timer_slack(slack_ns: int = 1) -> None:
    """Set the calling thread's timer slack (0 restores the default); threads it starts inherit it.

    The slack is how late the kernel may fire this thread's timers so that it
    can batch wake-ups; a node that waits for a µs deadline wants none.
    """
    if _libc.prctl(_PR_SET_TIMERSLACK, slack_ns, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class DeadlineTimer:
    """A timerfd armed at absolute CLOCK_MONOTONIC deadlines (``time.monotonic_ns()``).

    The fd becomes readable at the deadline. Arming it again replaces the old
    deadline and clears a pending expiry, so a waiter registers it
    edge-triggered, re-arms before every blocking wait and never reads it.
    """

    __slots__ = ("_fd", "_spec", "_ref", "_settime")

    def __init__(self) -> None:
        fd = _libc.timerfd_create(time.CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        self._fd = fd
        #: struct itimerspec {it_interval: {sec, nsec}, it_value: {sec, nsec}}; the interval stays 0
        self._spec = (ctypes.c_long * 4)()
        self._ref = ctypes.byref(self._spec)
        self._settime = _libc.timerfd_settime

    def fileno(self) -> int:
        return self._fd

    def arm(self, deadline_ns: int) -> None:
        """Fire once at ``deadline_ns`` (a deadline already past fires at once)."""
        spec = self._spec
        spec[2], spec[3] = divmod(max(deadline_ns, 1), _NS)  # 0 would disarm
        if self._settime(self._fd, _TFD_TIMER_ABSTIME, self._ref, None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
