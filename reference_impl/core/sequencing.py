"""The sequencer's pure logic: stamp, deduplicate, and rebuild from the stream.

Theory of operation
-------------------
Gateways send client requests tagged ``(gateway_id, incarnation, request_seq)``
and resend any that stay unsequenced past a timeout, so the sequencer sees
duplicates and reordering. ``sequence()`` gives each new request the next
stream ``seq`` and the caller's clock reading as ``ts``, or returns None for a
request it must not sequence (``last_drop`` says why).

Dedup keeps, per gateway, the latest incarnation, the highest ``request_seq``
sequenced (``high``) and the set of request seqs sequenced in the window
``(high - window, high]``. A request is new iff it is above ``high``, or inside
the window and not in the set; that is what lets an out-of-order resend be
recognised. A request at or below ``high - window`` is treated as already
sequenced. That is safe because of the gateway's side of the contract: it
sends request ``r`` only after every request ``<= r - window`` has been
sequenced (at most ``window`` request numbers in flight). So once ``high`` has
arrived, everything at or below ``high - window`` was sequenced, and an old
number arriving now can only be a resend.

A gateway that restarts comes back with a higher incarnation and restarts its
request seqs: its old state is replaced. A request from an incarnation older
than the latest one seen is a zombie (a delayed packet of a dead process) and
is dropped. Header fields are range-checked before any state changes, but
the body and account must already be encodable (the request decoder's fixed
widths guarantee it): a message that fails to encode after ``sequence()``
would burn its seq and leave a gap. Gateway id 0 is reserved for control messages
(``sequence_control``, whose body fields are range-checked before any state
changes), which carry an empty account and are never deduped;
a LeaderChange is accepted only for ``epoch = current + 1``, which is what
fences a stale arbiter.

The timestamp never goes backwards along the stream (``ts = max(now_ns, last
ts)``): the engine's only clock is this stamp, and a wall-clock step back must
not look like time reversing to it.

``observe()`` applies an already sequenced message to the same tables, so a
standby sequencer that follows the stream (from the start, or from any point
that precedes every gateway's last ``window`` requests) reaches the same
``state_hash()`` and the same dedup decisions as the active one.

Memory bound: one entry per gateway id that has sent a request (ids are u16,
and an incarnation change replaces, never adds), each holding at most
``2 * window`` request seqs (the set is pruned lazily when it doubles, which
keeps pruning O(1) amortised).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from enum import Enum

from .errors import SequenceGapError
from .messages import (
    Body,
    Cancel,
    Heartbeat,
    LeaderChange,
    NewOrder,
    Replace,
    Sequenced,
    SnapshotRequest,
)

_CLIENT = (NewOrder, Cancel, Replace)
_CONTROL = (LeaderChange, SnapshotRequest, Heartbeat)
CONTROL_GATEWAY = 0
_U16, _U32, _U64 = 0xFFFF, 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF
#: (field, highest) of each control body: the wire widths of ``sequenced_codec``
_CONTROL_RANGES: dict[type, tuple[tuple[str, int], ...]] = {
    LeaderChange: (("epoch", _U32), ("engine_id", _U16)),
    SnapshotRequest: (("snapshot_id", _U64),),
}


class DropReason(str, Enum):
    DUPLICATE = "duplicate"  #: in the window and already sequenced
    OUT_OF_WINDOW = "out_of_window"  #: at or below high - window: sequenced long ago
    STALE_INCARNATION = "stale_incarnation"  #: from an older incarnation than the latest
    STALE_EPOCH = "stale_epoch"  #: a LeaderChange whose epoch is not current + 1


@dataclass(frozen=True, slots=True)
class Request:
    """A client request as a gateway forwards it (not yet sequenced)."""

    gateway_id: int
    incarnation: int
    request_seq: int
    account: str
    body: Body


class _Gateway:
    __slots__ = ("incarnation", "high", "seen")

    def __init__(self, incarnation: int, request_seq: int) -> None:
        self.incarnation = incarnation
        self.high = request_seq
        self.seen = {request_seq}


class Sequencer:
    """Assigns stream seqs and timestamps; drops resends; rebuildable via ``observe``."""

    __slots__ = ("next_seq", "window", "epoch", "last_ts", "last_drop", "drops", "_gateways")

    def __init__(self, next_seq: int = 1, window: int = 4096, epoch: int = 0) -> None:
        if next_seq < 1:
            raise ValueError("next_seq starts at 1")
        if window < 1:
            raise ValueError("window must be at least 1")
        self.next_seq = next_seq
        self.window = window
        self.epoch = epoch  #: the epoch of the last sequenced LeaderChange
        self.last_ts = 0
        self.last_drop: DropReason | None = None  #: why the latest request was dropped
        self.drops: dict[DropReason, int] = {reason: 0 for reason in DropReason}
        self._gateways: dict[int, _Gateway] = {}

    # ------------------------------------------------------------- decisions

    def _admit(self, gateway_id: int, incarnation: int, request_seq: int) -> DropReason | None:
        """Record the request as sequenced if it is new; else say why not."""
        state = self._gateways.get(gateway_id)
        if state is None or incarnation > state.incarnation:
            self._gateways[gateway_id] = _Gateway(incarnation, request_seq)
            return None
        if incarnation < state.incarnation:
            return DropReason.STALE_INCARNATION
        high = state.high
        if request_seq > high:
            state.high = request_seq
            seen = state.seen
            seen.add(request_seq)
            if len(seen) > 2 * self.window:
                floor = request_seq - self.window
                state.seen = {r for r in seen if r > floor}
            return None
        if request_seq <= high - self.window:
            return DropReason.OUT_OF_WINDOW
        if request_seq in state.seen:
            return DropReason.DUPLICATE
        state.seen.add(request_seq)
        return None

    def _stamp(self, now_ns: int) -> tuple[int, int]:
        seq = self.next_seq
        self.next_seq = seq + 1
        ts = now_ns if now_ns > self.last_ts else self.last_ts
        self.last_ts = ts
        return seq, ts

    def _drop(self, reason: DropReason) -> None:
        self.last_drop = reason
        self.drops[reason] += 1

    def sequence(self, request: Request, now_ns: int) -> Sequenced | None:
        """The sequenced form of a new client request, or None (see ``last_drop``)."""
        if not isinstance(request.body, _CLIENT):
            raise ValueError(f"not a client body: {request.body!r}")
        if not 1 <= request.gateway_id <= _U16:
            raise ValueError(f"gateway id {request.gateway_id!r} not in 1..{_U16} (0 is control)")
        if not (0 <= request.incarnation <= _U32 and 0 <= request.request_seq <= _U64):
            raise ValueError(f"incarnation or request_seq out of range in {request!r}")
        reason = self._admit(request.gateway_id, request.incarnation, request.request_seq)
        if reason is not None:
            self._drop(reason)
            return None
        self.last_drop = None
        seq, ts = self._stamp(now_ns)
        return Sequenced(seq, ts, request.gateway_id, request.incarnation,
                         request.request_seq, request.account, request.body)

    def sequence_control(self, body: Body, now_ns: int) -> Sequenced | None:
        """Sequence a LeaderChange, SnapshotRequest or Heartbeat (gateway 0, no account).

        Returns None only for a LeaderChange whose epoch is not ``epoch + 1``.
        A body field that does not fit its wire width (epoch u32, engine_id
        u16, snapshot_id u64) is ValueError before any state changes: a seq
        taken for a message that cannot be encoded would never reach the bus,
        and every receiver would wait for it forever.
        """
        if not isinstance(body, _CONTROL):
            raise ValueError(f"not a control body: {body!r}")
        for name, hi in _CONTROL_RANGES.get(type(body), ()):
            value = getattr(body, name)
            if type(value) is not int or not 0 <= value <= hi:
                raise ValueError(f"{type(body).__name__}.{name}: {value!r} does not fit 0..{hi}")
        if isinstance(body, LeaderChange):
            if body.epoch != self.epoch + 1:
                self._drop(DropReason.STALE_EPOCH)
                return None
            self.epoch = body.epoch
        self.last_drop = None
        seq, ts = self._stamp(now_ns)
        return Sequenced(seq, ts, CONTROL_GATEWAY, 0, 0, "", body)

    # ------------------------------------------------------------ rebuilding

    def observe(self, msg: Sequenced) -> bool:
        """Apply a message sequenced elsewhere; False if it was already observed.

        A message beyond ``next_seq`` is a broken invariant of the caller (it
        must feed the stream in order): ``SequenceGapError``.
        """
        if msg.seq < self.next_seq:
            return False
        if msg.seq != self.next_seq:
            raise SequenceGapError(self.next_seq, msg.seq)
        self.next_seq = msg.seq + 1
        if msg.ts > self.last_ts:
            self.last_ts = msg.ts
        if msg.gateway_id == CONTROL_GATEWAY:
            if isinstance(msg.body, LeaderChange):
                self.epoch = msg.body.epoch
        else:
            self._admit(msg.gateway_id, msg.incarnation, msg.request_seq)
        return True

    # ------------------------------------------------------------- inspection

    def gateway_state(self, gateway_id: int) -> tuple[int, int, tuple[int, ...]] | None:
        """(incarnation, high, sorted request seqs in the window), or None if unseen."""
        state = self._gateways.get(gateway_id)
        if state is None:
            return None
        floor = state.high - self.window
        return state.incarnation, state.high, tuple(sorted(r for r in state.seen if r > floor))

    def counters(self) -> dict[str, int]:
        return {reason.value: count for reason, count in self.drops.items()}

    def state_hash(self) -> str:
        """sha256 over next_seq, epoch, last ts, window and each gateway's in-window state.

        Drop counters are excluded: they are not in the stream, so a rebuilt
        standby could not reproduce them.
        """
        h = hashlib.sha256()
        h.update(struct.pack(">QQQQ", self.next_seq, self.epoch, self.last_ts, self.window))
        for gateway_id in sorted(self._gateways):
            incarnation, high, seen = self.gateway_state(gateway_id)  # type: ignore[misc]
            h.update(struct.pack(">HQQI", gateway_id, incarnation, high, len(seen)))
            h.update(struct.pack(f">{len(seen)}Q", *seen))
        return h.hexdigest()
