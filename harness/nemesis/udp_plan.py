"""Pure fault planning for the UDP relay: a seed in, one decision per datagram out.

Theory of operation
-------------------
Each relay *lane* (one listen port forwarding to one target port) draws its
decisions from its own ``random.Random`` seeded from ``(seed, lane,
generation)``, exactly two draws per datagram whatever the outcome, so the
n-th datagram of a lane always gets the same ``PacketFate`` for a given seed:
the plan does not depend on timing, on other lanes or on earlier outcomes.

The first draw picks one action by cumulative rate (drop, duplicate, reorder,
delay, else pass); the rates must sum to at most 1, so each datagram suffers
at most one fault and the counters add up exactly. The second draw sizes the
fault: how many later datagrams overtake a reordered one (1..reorder_depth),
or how long a delayed one waits (up to ``delay_ms``).

``LaneSchedule`` is the sans-I/O part that carries the fates out: datagrams
and a monotonic clock in, datagrams to send out (in order). It holds
reordered datagrams until enough later ones went past (or ``max_hold_ns``
elapsed, so the last datagram of a burst is never stuck) and delayed ones
until their due time. The socket code in ``udp_relay`` only moves bytes.
"""

from __future__ import annotations

import enum
import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, fields


class Action(enum.Enum):
    PASS = "pass"
    DROP = "drop"
    DUPLICATE = "duplicate"
    REORDER = "reorder"
    DELAY = "delay"


@dataclass(frozen=True, slots=True)
class UdpFaultRates:
    """Per-datagram fault probabilities (each in [0, 1], summing to at most 1)."""

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay: float = 0.0
    delay_ms: float = 5.0  #: a delayed datagram waits uniformly in (0, delay_ms]
    reorder_depth: int = 3  #: a reordered datagram is overtaken by 1..depth later ones

    def __post_init__(self) -> None:
        for name in ("drop", "duplicate", "reorder", "delay"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} rate must be in [0, 1] (got {value})")
        if self.drop + self.duplicate + self.reorder + self.delay > 1.0 + 1e-12:
            raise ValueError("drop + duplicate + reorder + delay must be at most 1")
        if self.delay_ms < 0:
            raise ValueError(f"delay_ms must be >= 0 (got {self.delay_ms})")
        if self.reorder_depth < 1:
            raise ValueError(f"reorder_depth must be >= 1 (got {self.reorder_depth})")

    @property
    def clean(self) -> bool:
        return self.drop == self.duplicate == self.reorder == self.delay == 0.0


CLEAN = UdpFaultRates()


@dataclass(frozen=True, slots=True)
class PacketFate:
    action: Action
    hold: int = 0  #: REORDER: released after this many later datagrams arrived on the lane
    delay_ns: int = 0  #: DELAY: released this long after arrival


_PASS = PacketFate(Action.PASS)
_DROP = PacketFate(Action.DROP)
_DUPLICATE = PacketFate(Action.DUPLICATE)


def lane_rng(seed: int, lane: int = 0, generation: int = 0) -> random.Random:
    """The lane's generator (string seeding is stable across runs and PYTHONHASHSEED)."""
    return random.Random(f"udp-relay:{seed}:{lane}:{generation}")


def iter_udp_faults(seed: int, rates: UdpFaultRates, lane: int = 0,
                    generation: int = 0) -> Iterator[PacketFate]:
    """The endless decision stream of one lane."""
    rng = lane_rng(seed, lane, generation)
    cut_drop = rates.drop
    cut_dup = cut_drop + rates.duplicate
    cut_reorder = cut_dup + rates.reorder
    cut_delay = cut_reorder + rates.delay
    delay_ns = int(rates.delay_ms * 1_000_000)
    while True:
        u, v = rng.random(), rng.random()  # always two draws: fates stay aligned by index
        if u < cut_drop:
            yield _DROP
        elif u < cut_dup:
            yield _DUPLICATE
        elif u < cut_reorder:
            yield PacketFate(Action.REORDER, hold=1 + int(v * rates.reorder_depth))
        elif u < cut_delay:
            yield PacketFate(Action.DELAY, delay_ns=max(1, int((1.0 - v) * delay_ns)))
        else:
            yield _PASS


def plan_udp_faults(seed: int, rates: UdpFaultRates, count: int, lane: int = 0,
                    generation: int = 0) -> list[PacketFate]:
    """The fates of a lane's first ``count`` datagrams (pure; same seed, same list)."""
    stream = iter_udp_faults(seed, rates, lane, generation)
    return [next(stream) for _ in range(count)]


@dataclass(slots=True)
class RelayCounts:
    received: int = 0
    forwarded: int = 0  #: datagrams sent, duplicates included
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    delayed: int = 0
    send_errors: int = 0  #: sends the kernel refused (target not bound yet, buffers full)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def add(self, other: RelayCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass(slots=True)
class _Held:
    remaining: int
    deadline_ns: int
    data: bytes = field(repr=False)


class LaneSchedule:
    """Carries out one lane's fates: datagrams and the clock in, datagrams to send out."""

    def __init__(self, fates: Iterator[PacketFate], max_hold_ns: int = 20_000_000) -> None:
        self._fates = fates
        self._max_hold_ns = max_hold_ns
        self._held: list[_Held] = []
        self._delayed: list[tuple[int, int, bytes]] = []  # heap of (due_ns, arrival, data)
        self._arrivals = 0
        self.counts = RelayCounts()

    def replan(self, fates: Iterator[PacketFate]) -> None:
        """Use a new decision stream from the next datagram on (held ones stay held)."""
        self._fates = fates

    def on_datagram(self, data: bytes, now_ns: int) -> list[bytes]:
        fate = next(self._fates)
        counts = self.counts
        counts.received += 1
        self._arrivals += 1
        out: list[bytes] = []
        action = fate.action
        if action is Action.PASS:
            out.append(data)
        elif action is Action.DROP:
            counts.dropped += 1
        elif action is Action.DUPLICATE:
            counts.duplicated += 1
            out += (data, data)
        elif action is Action.REORDER:
            counts.reordered += 1
        else:
            counts.delayed += 1
            heapq.heappush(self._delayed, (now_ns + fate.delay_ns, self._arrivals, data))
        if self._held:  # this arrival overtakes every datagram still held
            still = []
            for h in self._held:
                h.remaining -= 1
                if h.remaining <= 0:
                    out.append(h.data)
                else:
                    still.append(h)
            self._held = still
        if action is Action.REORDER:
            self._held.append(_Held(fate.hold, now_ns + self._max_hold_ns, data))
        out += self.on_tick(now_ns, count=False)
        counts.forwarded += len(out)
        return out

    def on_tick(self, now_ns: int, count: bool = True) -> list[bytes]:
        """Datagrams whose delay or maximum hold time has run out."""
        out: list[bytes] = []
        delayed = self._delayed
        while delayed and delayed[0][0] <= now_ns:
            out.append(heapq.heappop(delayed)[2])
        if self._held and self._held[0].deadline_ns <= now_ns:
            keep = []
            for h in self._held:
                (out.append(h.data) if h.deadline_ns <= now_ns else keep.append(h))
            self._held = keep
        if count:
            self.counts.forwarded += len(out)
        return out

    def next_due_ns(self) -> int | None:
        """When ``on_tick`` next has something to release (None: nothing pending)."""
        due = [self._delayed[0][0]] if self._delayed else []
        due += [h.deadline_ns for h in self._held]
        return min(due) if due else None

    def flush(self) -> list[bytes]:
        """Everything still held or delayed, in due order (the fault heals)."""
        out = [h.data for h in self._held]
        out += [d for _, _, d in sorted(self._delayed)]
        self._held, self._delayed = [], []
        self.counts.forwarded += len(out)
        return out

    @property
    def pending(self) -> int:
        return len(self._held) + len(self._delayed)
