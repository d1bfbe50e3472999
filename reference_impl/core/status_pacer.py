"""When a node sends its status datagram: paced, with a heartbeat floor (pure: time is an argument)."""

from __future__ import annotations


class StatusPacer:
    """When a status datagram is due: ``pace_ns`` apart at least, ``heartbeat_ns`` apart at most.

    A status that only feeds the gateways' backpressure depth need not follow
    every message: one per ``pace_ns`` spares them a datagram per order. A
    status owed (the seq it reports moved) goes out on the first turn at least
    ``pace_ns`` after the last one, and ``wake_ns`` tells the duty loop when to
    wake for it, so it is held back about ``pace_ns`` plus the poll's own
    rounding (epoll rounds a timeout up to whole milliseconds). ``forced``
    (a crossed checkpoint) sends at once. ``pace_ns = 0`` sends one after every
    turn that moved it.
    """

    __slots__ = ("pace_ns", "heartbeat_ns", "last_ns", "owed")

    def __init__(self, pace_ns: int, heartbeat_ns: int) -> None:
        self.pace_ns = pace_ns
        self.heartbeat_ns = heartbeat_ns
        self.last_ns = 0
        self.owed = False

    def due(self, now_ns: int, applied: bool, forced: bool = False) -> bool:
        """After a turn (``applied``: the seq moved): send now? ``forced``: yes, whatever the pace."""
        self.owed |= applied
        since = now_ns - self.last_ns
        return forced or since >= self.heartbeat_ns or (self.owed and since >= self.pace_ns)

    def sent(self, now_ns: int) -> None:
        self.last_ns = now_ns
        self.owed = False

    def wake_ns(self) -> int:
        return self.last_ns + (self.pace_ns if self.owed else self.heartbeat_ns)
