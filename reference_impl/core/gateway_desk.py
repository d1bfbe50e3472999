"""The gateway's desk: admission, resends, the ack gate, backpressure and accounts.

A desk, as at a front desk: it takes each request in or turns it away at once,
chases what it sent until the exchange answers, hands an answer out only when
it is safe, and keeps every account's orders and outbound journal.

Theory of operation
-------------------
``GatewayDesk`` is sans-I/O: the gateway node feeds it what arrives (client
requests, output records, status records, timer ticks, each with ``now_ns``,
a monotonic clock reading) and carries out what it returns (datagrams to
send, messages to release to clients). It never reads a clock or a socket.

Requests. ``admit(account, body, now_ns)`` runs the stateless checks of
``rules`` (a failing request is never sequenced), then backpressure, and
returns either a ``RejectReason`` or a ``Forward`` holding the request's
``request_seq`` and the exact datagram for the sequencer. Request seqs are
``incarnation << 32 | n`` (n from 1): an output of an earlier incarnation of
this gateway can never match a request of this one, although output records
carry no incarnation. A request is *unsequenced* until its first output
arrives; unsequenced requests are re-sent every ``resend_ns``
(``due_resends``), and the sequencer drops the duplicates. The timer only
runs while there is no progress: while this gateway's requests keep being
sequenced (an output of one arrived within ``resend_ns``), a request is
re-sent only if a later one was sequenced before it (the sequencer reads one
gateway's requests in order, so it was lost); the others are queued, not
lost, and re-sending them would only add to the queue (an overload turned
into a resend storm). The sequencer's
dedup window (``window`` request numbers) is part of the contract: request
``r`` is sent only while the oldest unsequenced request is above
``r - window``; new orders and replaces keep ``window // 8`` numbers in reserve
for cancels.

The ack gate (``ack_gate.AckGate``) gathers output records per input seq
and holds each complete input until the durability policy covers it. Release
journals every output under its account's next outbound seq (passive fills
of other accounts included: they are gated like any other output) and
answers the request this gateway sent, if any, with the outputs for its own
account and the stage stamps; ``durable_ns`` is the release time, and
``finish`` stamps gateway-out once the edge has handed the answer out (the
one place it is stamped, for both doors).

Local rejects. A request ``admit`` refuses is never sequenced, but it is
journalled (``local_reject``) under its account's next outbound seq, with an
output ``seq`` of 0, whichever door it came from.

Backpressure. ``depth = (sequencer published seq - lowest of the applied seqs
of the engines heard from within stale_ns and the logger's written seq) +
unsequenced requests``; a new order or replace is admitted only while ``depth
< limit`` (``limit = ratio * capacity``). Cancels pass (they reduce risk),
bounded only by the dedup window. The logger counts even when silent: it can
re-request a lost packet only from the sequencer's ring (it is the archive),
so once it falls more than ``capacity`` behind, one lost packet stalls it for
good; an engine that falls behind can still fill its gaps from the archive.
"""

from __future__ import annotations

import hashlib
import struct
from collections import deque
from typing import NamedTuple

from . import sequenced_codec
from .ack_gate import AckGate
from .gateway_orders import CANCEL, NEW, REPLACE, Account, OrderState, Outbound
from .messages import Cancel, NewOrder, RejectReason, Rejected, Replace, Sequenced
from .output_codec import OutputRecord
from .rules import (
    Instruments,
    check_cancel_fields,
    check_new_order,
    check_replace_fields,
    valid_token,
)
from .status_codec import EngineStatus, LoggerWatermark, SequencerStatus

_KINDS = {NewOrder: NEW, Cancel: CANCEL, Replace: REPLACE}


class Forward(NamedTuple):
    """Send ``datagram`` to the sequencer: request ``request_seq`` was admitted."""

    request_seq: int
    datagram: bytes


class Pending:
    """A request this gateway sent and has not yet answered."""

    __slots__ = ("request_seq", "account", "body", "kind", "gateway_in_ns", "sent_ns", "sends",
                 "input_seq", "datagram")

    def __init__(self, request_seq: int, account: str, body: object, gateway_in_ns: int,
                 datagram: bytes) -> None:
        self.request_seq = request_seq
        self.account = account
        self.body = body
        self.kind = _KINDS[type(body)]
        self.gateway_in_ns = gateway_in_ns
        self.sent_ns = gateway_in_ns
        self.sends = 1
        self.input_seq = 0  #: 0 until the first output for it arrives
        self.datagram = datagram

    @property
    def token(self) -> str:
        return self.body.token  # type: ignore[attr-defined]


class Stages(NamedTuple):
    """Monotonic ns stage stamps of one answered request (0: not known)."""

    request_seq: int
    input_seq: int
    gateway_in_ns: int
    sequenced_ns: int
    decided_ns: int
    durable_ns: int
    gateway_out_ns: int

    def to_json(self) -> dict:
        return self._asdict()


class Answer(NamedTuple):
    """A released input that answers a request of this gateway."""

    pending: Pending
    outputs: tuple[Outbound, ...]  #: the requesting account's outputs of that input
    stages: Stages  #: gateway_out_ns still 0: the edge stamps it (``finish``)


class Released(NamedTuple):
    """What one call released: journal entries (any account) and answers."""

    published: list[Outbound]
    answers: list[Answer]


_NOTHING = Released([], [])


class GatewayDesk:
    """Admission, resends, ack gate, backpressure and per-account state of one gateway."""

    def __init__(self, gateway_id: int, incarnation: int, durability: str,
                 instruments: Instruments, capacity: int = 65536, ratio: float = 0.9,
                 resend_ns: int = 200_000_000, ack_before_durable: bool = False,
                 has_secondary: bool = True, window: int = 4096,
                 stale_ns: int = 1_000_000_000, stage_log: int = 1024) -> None:
        if not 0 <= incarnation <= 0xFFFF_FFFF:
            raise ValueError("incarnation must fit a u32")
        self.gateway_id = gateway_id
        self.incarnation = incarnation
        self.durability = durability
        self.instruments = instruments
        self.limit = max(int(capacity * ratio), 1)
        self.resend_ns = resend_ns
        self.gate = AckGate(durability, ack_before_durable, has_secondary)
        self.window = window
        self.reserve = max(window // 8, 1)
        self.stale_ns = stale_ns
        self.accounts: dict[str, Account] = {}
        self._next_request = (incarnation << 32) + 1
        self.pending: dict[int, Pending] = {}
        self._unsequenced: dict[int, Pending] = {}  # insertion order = request_seq order
        self._progress_ns: int | None = None  # when a request of ours was last sequenced
        self._highest_sequenced = 0  # the highest request_seq of ours known sequenced
        self.published_seq = 0
        self._engines: dict[int, tuple[int, int]] = {}  # id -> (applied seq, heard at ns)
        self._logger_heard = False
        self.stages: deque[Stages] = deque(maxlen=stage_log)
        self.counters = {"rejected_stateless": 0, "backpressure": 0, "resends": 0,
                         "forwarded": 0, "released_inputs": 0, "answered": 0}

    # ------------------------------------------------------------ accounts

    def account(self, name: str) -> Account:
        acct = self.accounts.get(name)
        if acct is None:
            acct = self.accounts[name] = Account(name)
        return acct

    def order(self, account: str, token: str) -> OrderState | None:
        acct = self.accounts.get(account)
        return acct.order(token) if acct is not None else None

    def pending_for(self, account: str, token: str) -> Pending | None:
        """The newest unanswered request of ``account`` naming ``token``."""
        for p in reversed(self.pending.values()):
            body = p.body
            if p.account == account and (body.token == token or  # type: ignore[attr-defined]
                                         getattr(body, "new_token", None) == token):
                return p
        return None

    # ------------------------------------------------------------- requests

    def check(self, account: str, body: object) -> RejectReason | None:
        """The stateless check a request fails, or None."""
        if type(body) is NewOrder:
            return check_new_order(body, self.instruments)
        if type(body) is Cancel:
            return check_cancel_fields(body.token, body.qty)
        if type(body) is Replace:
            if not valid_token(body.token):
                return RejectReason.BAD_TOKEN
            order = self.order(account, body.token)
            tick = self.instruments.tick(order.symbol) if order is not None else None
            return check_replace_fields(body.new_token, body.qty, body.price, tick or 1)
        raise TypeError(f"not a client request: {body!r}")

    def depth(self, now_ns: int) -> int:
        """In-flight depth: engines' and logger's lag plus this gateway's unsequenced requests."""
        fresh = [applied for applied, heard in self._engines.values()
                 if now_ns - heard <= self.stale_ns]
        if self._logger_heard:  # never stale: see the module doc
            fresh.append(self.gate.written_seq)
        lag = self.published_seq - min(fresh) if fresh else 0
        return max(lag, 0) + len(self._unsequenced)

    @property
    def in_flight_limit(self) -> int:
        """The most new orders and replaces admitted in flight while nothing is sequenced.

        Both bounds of ``admit`` at once, when no engine lags: the depth limit
        and the dedup window less the reserve kept for cancels.
        """
        return min(self.limit, self.window - self.reserve)

    def _window_room(self) -> int:
        """Request numbers still usable before the sequencer's dedup window is exceeded."""
        if not self._unsequenced:
            return self.window
        oldest = next(iter(self._unsequenced))
        return oldest + self.window - self._next_request

    def admit(self, account: str, body: object, now_ns: int) -> Forward | RejectReason:
        """Check, then forward ``body`` for ``account``, or say why not (never sequenced)."""
        reason = self.check(account, body)
        if reason is not None:
            self.counters["rejected_stateless"] += 1
            return reason
        room = self._window_room()
        if type(body) is Cancel:
            full = room <= 0
        else:
            full = room <= self.reserve or self.depth(now_ns) >= self.limit
        if full:
            self.counters["backpressure"] += 1
            return RejectReason.BACKPRESSURE
        return self.forward(account, body, now_ns)

    def forward(self, account: str, body: object, now_ns: int) -> Forward:
        """Number ``body``, hold it unsequenced and return its datagram (``admit`` said yes)."""
        rseq = self._next_request
        self._next_request = rseq + 1
        datagram = sequenced_codec.encode(
            Sequenced(0, 0, self.gateway_id, self.incarnation, rseq, account, body))  # type: ignore[arg-type]
        p = Pending(rseq, account, body, now_ns, datagram)
        self.pending[rseq] = p
        self._unsequenced[rseq] = p
        self.counters["forwarded"] += 1
        return Forward(rseq, datagram)

    def due_resends(self, now_ns: int) -> list[bytes]:
        """Datagrams of unsequenced requests whose resend time has come.

        While requests are being sequenced (progress within ``resend_ns``), only
        those overtaken by a later sequenced request are due: the rest are queued.
        """
        out = []
        resend_ns = self.resend_ns
        progress = self._progress_ns
        stalled = progress is None or now_ns - progress >= resend_ns
        overtaken_below = self._highest_sequenced
        for p in self._unsequenced.values():
            if not stalled and p.request_seq > overtaken_below:
                break  # in request_seq order: every later one is queued too
            if now_ns - p.sent_ns >= resend_ns:
                p.sent_ns = now_ns
                p.sends += 1
                out.append(p.datagram)
        self.counters["resends"] += len(out)
        return out

    def local_reject(self, account: str, body: object, reason: RejectReason, ts: int) -> Outbound:
        """Journal a request ``admit`` refused (either door: one numbering for both).

        Under the token the engine's reject would carry (a replace's new one);
        ``ts`` is wall-clock ns, since it has no sequencer stamp.
        """
        token = body.new_token if type(body) is Replace else body.token  # type: ignore[attr-defined]
        return self.account(account).apply(Rejected(0, account, token, reason), ts,
                                            _KINDS[type(body)])

    # --------------------------------------------------------------- outputs

    def on_output(self, rec: OutputRecord, now_ns: int) -> Released:
        """One output record from the stream (in stream order)."""
        if rec.gateway_id == self.gateway_id:
            p = self._unsequenced.pop(rec.request_seq, None)
            if p is not None:  # any output proves the request was sequenced
                p.input_seq = rec.output.seq
                self._progress_ns = now_ns
                if p.request_seq > self._highest_sequenced:
                    self._highest_sequenced = p.request_seq
        if self.gate.on_record(rec):
            return self._release(now_ns)
        return _NOTHING

    # ---------------------------------------------------------------- status

    def on_logger(self, w: LoggerWatermark, now_ns: int) -> Released:
        self._logger_heard = True
        self.gate.on_logger(w)
        return self._release(now_ns)

    def on_engine(self, s: EngineStatus, now_ns: int) -> Released:
        self._engines[s.component_id] = (s.applied_seq, now_ns)
        self.gate.on_engine(s)
        return self._release(now_ns)

    def on_sequencer(self, s: SequencerStatus, now_ns: int) -> None:
        if s.published_seq > self.published_seq:
            self.published_seq = s.published_seq

    # --------------------------------------------------------------- release

    def _release(self, now_ns: int) -> Released:
        ready = self.gate.releasable()
        if not ready:
            return _NOTHING
        published: list[Outbound] = []
        answers: list[Answer] = []
        for seq, records in ready:
            self._release_one(seq, records, now_ns, published, answers)
        return Released(published, answers)

    def _release_one(self, seq: int, records: list[OutputRecord], now_ns: int,
                     published: list[Outbound], answers: list[Answer]) -> None:
        self.counters["released_inputs"] += 1
        first = records[0]
        p = self.pending.pop(first.request_seq, None) if first.gateway_id == self.gateway_id else None
        kind, tif, min_qty = "", -1, 0
        if p is not None:
            self._unsequenced.pop(p.request_seq, None)
            kind = p.kind
            if kind == NEW:
                tif, min_qty = int(p.body.tif), p.body.min_qty  # type: ignore[attr-defined]
        mine: list[Outbound] = []
        decided = 0
        for rec in records:
            out = rec.output
            if p is not None and out.account == p.account:
                entry_out = self.account(out.account).apply(out, rec.ts, kind, tif, min_qty)
                mine.append(entry_out)
            else:  # another account's side (a passive fill) or another gateway's request
                entry_out = self.account(out.account).apply(out, rec.ts, "")
            published.append(entry_out)
            if rec.decided_ns > decided:
                decided = rec.decided_ns
        if p is not None:
            self.counters["answered"] += 1
            stages = Stages(p.request_seq, seq, p.gateway_in_ns, first.sequenced_ns, decided,
                            now_ns, 0)
            answers.append(Answer(p, tuple(mine), stages))

    def finish(self, stages: Stages, gateway_out_ns: int) -> Stages:
        """Stamp gateway-out on an answer's stages and keep them in the stage log."""
        done = stages._replace(gateway_out_ns=gateway_out_ns)
        self.stages.append(done)
        return done

    # ------------------------------------------------------------ inspection

    @property
    def unsequenced(self) -> int:
        return len(self._unsequenced)

    @property
    def held(self) -> int:
        """Complete inputs waiting for the durability condition."""
        return self.gate.held

    @property
    def primary_id(self) -> int:
        return self.gate.primary_id

    def watermarks(self) -> dict[str, int]:
        return {**self.gate.watermarks(), "published": self.published_seq}

    def digest(self, now_ns: int) -> dict:
        return {
            "accounts": {name: {"next_out_seq": a.next_out_seq, "open_orders": a.open_count}
                         for name, a in sorted(self.accounts.items())},
            "open_orders": sum(a.open_count for a in self.accounts.values()),
            "pending_requests": len(self.pending),
            "unsequenced_requests": len(self._unsequenced),
            "incomplete_inputs": self.gate.incomplete,
            "held_inputs": self.gate.held,
            "depth": self.depth(now_ns),
            "limit": self.limit,
            "in_flight_limit": self.in_flight_limit,
            "logger_heard": self._logger_heard,
            "primary": self.primary_id,
            "watermarks": self.watermarks(),
            "counters": {**self.counters, **self.gate.counters},
            "state_hash": self.state_hash(),
        }

    def state_hash(self) -> str:
        """sha256 over the accounts (journal lengths, order tables) and the gate's inputs."""
        gate = self.gate
        h = hashlib.sha256(struct.pack(">QQQQQ", gate.highest_complete, gate.max_epoch,
                                       gate.incomplete, gate.held, len(self.pending)))
        for name in sorted(self.accounts):
            h.update(self.accounts[name].canonical())
        return h.hexdigest()
