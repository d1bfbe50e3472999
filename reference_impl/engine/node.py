"""The engine process: ``python -m reference_impl.engine --config F --run-dir D --id N``.

This module is the duty loop; ``main`` parses the command line and sets the
exit status, ``admin`` answers the admin port.

Theory of operation
-------------------
One single-threaded duty loop over an ``Inbox`` of these sockets:

- the input stream subscription (``input_port``, or the group) and the
  *recovery* socket (an ephemeral port): MoldUDP64 packets go through
  ``edges.mold_intake.MoldIntake`` (session and block checks,
  ``core.receiver.Receiver``, re-requests), which hands back the in-order
  messages. A re-request leaves the recovery socket for
  ``sequencer.retransmit_port``; when the same gap is asked for again
  (the receiver repeats a request after ``RETRY_NS``) the node alternates to
  ``logger.archive_port`` and back, and a gap older than the sequencer's ring
  (``cluster.capacity`` seqs behind the stream head) goes to the archive at
  once. Replies come back to the recovery socket.
- ``retransmit_port`` (every engine binds it: a secondary may be promoted):
  MoldUDP64 re-requests of the output sessions this engine serves, answered
  from a ``RetransmitRing`` of ``cluster.capacity`` messages each: its own
  session while publishing, and after a promotion the previous one.
- while muted (the secondary): the output stream subscription, read in order
  and gap-filled by ``succession.ObservedStream`` (its own recovery socket),
  which keeps the old session for a promotion and feeds ``EmittedTracker``;
  what the engine decides meanwhile goes into a ``ReemitRing``. A sequenced
  LeaderChange promotes or mutes (``succession``; docs/engine-node.md,
  "Promotion and muting"); the loop then starts over on the new sockets.
- ``admin_port``: ``health``, ``digest``, ``checkpoints [AFTER_SEQ]``.

Each turn drains everything ready, applies every delivered message
(``sequenced_codec.decode`` then ``Engine.apply``), and only then publishes:
the turn's outputs as MoldUDP64 packets of at most 1400 bytes (the primary),
the checkpoints the turn crossed, and one ``EngineStatus``. Only a status that
an ack gate waits for goes out every turn (the secondary's, under
``replicated``); the others feed only the backpressure depth and the
primary's address, so they go out at most every ``STATUS_PACE_NS`` (1 ms) and
cost the gateway one datagram per millisecond, not one per order. An idle node
sends an output-stream heartbeat (the primary) every ``output_heartbeat_us``
(by default ``heartbeat_ms``) and an ``EngineStatus`` every ``heartbeat_ms``. A packet with a block that does not decode, or whose
header seq is not the packet's seq plus its index
(``sequenced_codec.poisoned_block``), is dropped whole by the intake before
the receiver sees it (``poisoned_packets``; see ``mold_intake``). A delivered
message that still does not decode is fatal: skipping a seq would silently
fork this replica from the others.

A checkpoint ``(seq, sha256)`` is taken on every seq that is a multiple of
``cluster.checkpoint_every``, so the replicas' checkpoints compare seq for
seq. The outputs decided before it are published first, so hashing never
delays them.

Stage stamps (monotonic ns, in every output record): ``sequenced_ns = msg.ts
- offset`` with ``offset = time_ns() - monotonic_ns()`` sampled once at start,
which is only meaningful on the sequencer's host (and drifts if the wall clock
is stepped); ``decided_ns`` is read right after ``apply``. They are transport
metadata, never engine state.

Test-only faults (``faults:`` in the config): ``unmuted_secondary`` makes a
secondary publish like a primary; ``no_gap_rerequest`` never sends a
re-request, so a lost packet stalls the node. ``nondeterministic_tiebreak``
runs ``broken_tiebreak.SaltedTiebreakEngine`` salted with the pid, so twin
replicas diverge; the order-type faults of ``broken_rules`` (``fok_partial_fill``
and the others) run a broken engine class.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import time

from reference_impl.config import HOST, ClusterConfig
from reference_impl.core import durability, mold_codec, output_codec, sequenced_codec, status_codec
from reference_impl.core.engine import Engine
from reference_impl.core.errors import DecodeError
from reference_impl.core.messages import LeaderChange
from reference_impl.core.output_codec import OutputRecord
from reference_impl.core.output_sessions import session_for
from reference_impl.core.output_tracker import EmittedTracker
from reference_impl.core.receiver import Receiver
from reference_impl.core.reemit_ring import Decided, ReemitRing
from reference_impl.core.sequenced_codec import poisoned_block
from reference_impl.core.status_pacer import StatusPacer
from reference_impl.edges import process, transport
from reference_impl.edges.mold_intake import MoldIntake
from reference_impl.edges.retransmit_ring import RetransmitRing
from reference_impl.engine import admin as engine_admin
from reference_impl.engine import broken_rules, succession
from reference_impl.engine.broken_tiebreak import SaltedTiebreakEngine

MAX_PAYLOAD = 1400
POLL_MAX_S = 0.05
RETRY_NS = 3_000_000  #: the receiver repeats an unanswered re-request after this long
STATUS_PACE_NS = 1_000_000  #: least spacing of the statuses no ack gate waits on
CHECKPOINTS_KEPT = 1000

log = logging.getLogger("crucible.engine")


class InputCorrupt(RuntimeError):
    """A delivered input-stream message does not decode: this replica cannot go on."""


def status_pace_ns(policy: str, primary: bool) -> int:
    """How far apart this engine's statuses may be: 0 for one an ack gate waits on.

    Whether a gate waits on it is ``durability.engine_status_gates`` (the
    secondary's applied seq, under ``replicated``): then it reports after
    every turn. Any other status only feeds the backpressure depth and names
    the primary, so it is paced to ``STATUS_PACE_NS``.
    """
    return 0 if durability.engine_status_gates(policy, primary) else STATUS_PACE_NS


class EngineAgent:
    """The duty cycle's state: engine, receiver, ring, tracker, sockets, counters."""

    def __init__(self, cfg: ClusterConfig, engine_id: int, role: str) -> None:
        self.cfg = cfg
        self.id = engine_id
        me = cfg.engine(engine_id)
        self.role = role
        self.primary = role == "primary"
        self.publishing = self.primary or cfg.broken("unmuted_secondary")
        self.rerequest = not cfg.broken("no_gap_rerequest")
        if cfg.broken("nondeterministic_tiebreak"):
            self.engine: Engine = SaltedTiebreakEngine(cfg.instrument_table(), salt=os.getpid())
        else:
            self.engine = broken_rules.engine_class(cfg)(cfg.instrument_table())
        self.receiver = Receiver(next_seq=1, retransmit_after_ns=RETRY_NS)
        self.tracker = EmittedTracker()
        self.in_session = cfg.input_stream.session.encode("ascii")
        self.base_session = cfg.output_stream.session.encode("ascii")
        self.out_session = session_for(self.base_session, self.engine.epoch)
        self.leader_id = next(e.id for e in cfg.engines if e.role == "primary")
        self.max_payload = MAX_PAYLOAD
        self.clock_offset = time.time_ns() - time.monotonic_ns()
        self.heartbeat_ns = cfg.heartbeat_ms * 1_000_000
        self.output_heartbeat_ns = cfg.output_heartbeat_ns()
        self.pacer = self.new_pacer()
        self.checkpoint_every = cfg.checkpoint_every

        self.input_sock = transport.stream_subscriber(cfg, cfg.input_stream, me.input_port)
        self.recovery_sock = transport.bind_udp(0)
        self.admin_sock = transport.bind_udp(me.admin_port)
        self.output_sock: socket.socket | None = None
        self.ring = RetransmitRing(cfg.capacity)
        #: the sessions whose re-requests this engine answers (session -> ring)
        self.served: dict[bytes, RetransmitRing] = {}
        # Every engine is ready to publish: a secondary promoted must do so at once.
        self.retransmit_sock = transport.bind_udp(me.retransmit_port)
        targets = [g.output_port for g in cfg.gateways]
        targets += [e.output_port for e in cfg.engines if e.id != engine_id]
        targets += [cfg.arbiter.output_port] if cfg.arbiter.enabled else []
        self.publisher = transport.stream_publisher(cfg, cfg.output_stream, targets)
        #: muted: the current output session as observed; its outputs, kept for a promotion
        self.observed: succession.ObservedStream | None = None
        self.reemit = ReemitRing(cfg.capacity)
        self.old_end: tuple[bytes, int] | None = None  #: promoted: (old session, its end seq)
        self.last_old_end_ns = 0
        self.promotion: dict | None = None  #: the last promotion's facts (admin ``digest``)
        self.status_now = False  #: a role changed: the next status goes out this turn
        self.sockets_changed = False  #: a role changed: rebuild the inbox at the end of the turn
        if self.publishing:
            self.served[self.out_session] = self.ring
        if not self.primary:
            self.output_sock = transport.stream_subscriber(cfg, cfg.output_stream, me.output_port)
        self.status_sock = transport.bind_udp(0)
        self.status_targets = [(HOST, g.status_port) for g in cfg.gateways]
        self.sequencer_addr = (HOST, cfg.sequencer.retransmit_port)
        self.archive_addr = (HOST, cfg.logger.archive_port)

        self.pending: list[bytes] = []  #: encoded output records decided, not yet published
        self.pending_checkpoints: list[bytes] = []
        self.checkpoints: collections.deque[tuple[int, str]] = collections.deque(
            maxlen=CHECKPOINTS_KEPT)
        self.attempts: dict[int, int] = {}  #: gap first seq -> re-requests sent for it
        self.published_seq = 0  #: the output stream's last seq
        self.last_output_ns = 0
        self.counters = {"rerequests_sequencer": 0, "rerequests_archive": 0,
                         "rerequests_suppressed": 0, "outputs": 0, "output_packets": 0,
                         "output_heartbeats": 0, "retransmit_requests": 0,
                         "bad_retransmit_requests": 0, "retransmit_packets": 0,
                         "checkpoints": 0, "statuses": 0, "promotions": 0, "mutes": 0,
                         "reemitted_inputs": 0, "reemitted_outputs": 0,
                         "reemit_incomplete": 0, "ignored_output_packets": 0}
        self.intake = MoldIntake(self.in_session, self.recovery_sock, self.route_rerequest,
                                 self.counters, receiver=self.receiver,
                                 check_block=poisoned_block, log=log, stream="input stream")
        if not self.primary:
            succession.observe(self)
        self.inbox = transport.node_inbox(cfg, self.sockets())

    def new_pacer(self) -> StatusPacer:
        return StatusPacer(status_pace_ns(self.cfg.durability, self.primary), self.heartbeat_ns)

    def sockets(self) -> list[socket.socket]:
        """What the inbox waits on (the output subscription only while muted)."""
        socks = [self.input_sock, self.recovery_sock, self.admin_sock, self.retransmit_sock]
        if self.output_sock is not None:
            socks.append(self.output_sock)
        if self.observed is not None:
            socks.append(self.observed.sock)
        return socks

    def rebuild_inbox(self) -> None:
        """The sockets changed (a role change): wait on the new set from the next turn."""
        self.sockets_changed = False
        self.inbox.close()
        self.inbox = transport.node_inbox(self.cfg, self.sockets())

    # ------------------------------------------------------------- inbound

    def on_output_packet(self, data: bytes, now_ns: int) -> None:
        """Muted: one output-stream datagram (live, or a reply to the observer's re-request)."""
        if self.observed is None:
            self.counters["ignored_output_packets"] += 1  # a zombie's, or our own (multicast)
            return
        self.observed.on_packet(data, now_ns)

    # ------------------------------------------------------------- decisions

    def apply(self, seq: int, payload: bytes) -> None:
        try:
            msg = sequenced_codec.decode(payload)
        except DecodeError as exc:
            raise InputCorrupt(f"input seq {seq} does not decode: {exc}") from exc
        if msg.seq != seq:
            raise InputCorrupt(f"input seq {seq} carries seq {msg.seq} in its header")
        outputs = self.engine.apply(msg)
        decided_ns = time.monotonic_ns()
        if outputs:
            gw, rseq, ts = msg.gateway_id, msg.request_seq, msg.ts
            sequenced_ns = ts - self.clock_offset
            if self.publishing:
                count = len(outputs)
                epoch = self.engine.epoch
                encode = output_codec.encode
                append = self.pending.append
                for index, out in enumerate(outputs):
                    append(encode(OutputRecord(index, count, epoch, gw, rseq, ts,
                                               sequenced_ns, decided_ns, out)))
            if not self.primary:  # kept for a promotion (docs/engine-node.md, "Promotion")
                self.reemit.keep(Decided(seq, gw, rseq, ts, sequenced_ns, decided_ns,
                                         tuple(outputs)))
        elif type(msg.body) is LeaderChange:
            succession.on_leader_change(self, msg)
        if seq % self.checkpoint_every == 0:
            self.take_checkpoint(seq)

    def take_checkpoint(self, seq: int) -> None:
        self.publish_outputs()  # what was decided before the hash leaves first
        digest = self.engine.state_hash()
        self.checkpoints.append((seq, digest))
        self.pending_checkpoints.append(status_codec.encode(status_codec.Checkpoint(
            self.id, seq, bytes.fromhex(digest), time.monotonic_ns())))
        self.counters["checkpoints"] += 1

    def route_rerequest(self, first_seq: int, count: int) -> tuple[str, int] | None:
        """Where the intake sends a re-request: the sequencer and the archive in turn."""
        if not self.rerequest:
            self.counters["rerequests_suppressed"] += 1
            return None
        attempts = self.attempts
        n = attempts.get(first_seq, 0)
        attempts[first_seq] = n + 1
        behind_ring = self.receiver.known_end - first_seq > self.cfg.capacity
        if n % 2 == 1 or behind_ring:
            addr, key = self.archive_addr, "rerequests_archive"
        else:
            addr, key = self.sequencer_addr, "rerequests_sequencer"
        self.counters[key] += 1
        if len(attempts) > 64:  # forget gaps already filled
            floor = self.receiver.next_seq
            for k in [k for k in attempts if k < floor]:
                del attempts[k]
        return addr

    # ------------------------------------------------------------ outbound

    def publish_outputs(self) -> None:
        pending = self.pending
        if not pending:
            return
        assert self.publisher is not None
        send = self.publisher.send
        put = self.ring.put
        first = self.published_seq + 1
        for group in mold_codec.plan_packets(pending, MAX_PAYLOAD):
            send(mold_codec.encode_packet(self.out_session, first, group))
            for message in group:
                put(first, message)
                first += 1
            self.counters["output_packets"] += 1
        self.counters["outputs"] += len(pending)
        self.published_seq = first - 1
        self.last_output_ns = time.monotonic_ns()
        pending.clear()
        promotion = self.promotion
        if promotion is not None and not promotion["first_packet_ns"]:
            promotion["first_packet_ns"] = self.last_output_ns
            log.info("promoted: %s", promotion)  # logged after the outputs, not before

    def publish_output_heartbeat(self, now_ns: int) -> None:
        assert self.publisher is not None
        self.publisher.send(mold_codec.encode_heartbeat(self.out_session, self.published_seq + 1))
        self.counters["output_heartbeats"] += 1
        self.last_output_ns = now_ns

    def publish_status(self) -> None:
        """The turn's checkpoints, then one EngineStatus, to every gateway."""
        now = time.monotonic_ns()
        records = self.pending_checkpoints
        records.append(status_codec.encode(status_codec.EngineStatus(
            self.id, self.primary, self.engine.epoch, self.engine.last_applied_seq,
            self.tracker.primary_emitted_seq, now)))
        sendto = self.status_sock.sendto
        for record in records:
            for target in self.status_targets:
                try:
                    sendto(record, target)
                except OSError:
                    pass
        records.clear()
        self.status_now = False
        self.counters["statuses"] += 1
        self.pacer.sent(now)

    # ------------------------------------------------------------- admin

    def on_admin(self, command: str) -> dict:
        return engine_admin.on_admin(self, command)

    # ------------------------------------------------------------ duty loop

    def poll_timeout(self, now_ns: int) -> float:
        due = self.pacer.wake_ns()
        if self.publishing:
            due = min(due, self.last_output_ns + self.output_heartbeat_ns)
        wake = self.receiver.next_wake_ns
        if wake is not None:
            due = min(due, wake)
        if self.observed is not None:
            wake = self.observed.next_wake_ns
            if wake is not None:
                due = min(due, wake)
        return min(POLL_MAX_S, max(due - now_ns, 0) / 1e9)

    def run(self, stop: process.StopFlag) -> None:
        while not stop.is_set:
            self.run_role(stop)

    def run_role(self, stop: process.StopFlag) -> None:
        """Turns until a role change replaces the inbox (then ``run`` starts over)."""
        inbox = self.inbox
        input_sock, recovery_sock = self.input_sock, self.recovery_sock
        retransmit_sock, output_sock, admin_sock = (
            self.retransmit_sock, self.output_sock, self.admin_sock)
        observed_sock = self.observed.sock if self.observed is not None else None
        receiver, on_input, apply = self.receiver, self.intake.on_packet, self.apply
        while not stop.is_set and self.inbox is inbox:
            batch = self.inbox.poll(self.poll_timeout(time.monotonic_ns()))
            now = time.monotonic_ns()
            applied = 0
            rerequests = []
            for sock, data, addr in batch:
                if sock is input_sock or sock is recovery_sock:
                    delivered = on_input(data, now)
                    for seq, payload in delivered:
                        apply(seq, payload)
                    applied += len(delivered)
                elif sock is output_sock or sock is observed_sock:
                    self.on_output_packet(data, now)
                elif sock is retransmit_sock:
                    rerequests.append((data, addr))
                elif sock is admin_sock:
                    process.answer_admin(sock, data, addr, self.on_admin)
            wake = receiver.next_wake_ns
            if wake is not None and wake <= now:
                self.intake.on_tick(now)
            observed = self.observed
            if observed is not None:
                wake = observed.next_wake_ns
                if wake is not None and wake <= now:
                    observed.on_tick(now)
            if self.pending:
                self.publish_outputs()
            elif self.publishing and now - self.last_output_ns >= self.output_heartbeat_ns:
                self.publish_output_heartbeat(now)
            if self.old_end is not None and now - self.last_old_end_ns >= self.heartbeat_ns:
                succession.publish_old_end(self, now)
            if applied:
                self.tracker.raise_epoch(self.engine.epoch)
            if self.pacer.due(now, applied > 0, bool(self.pending_checkpoints) or self.status_now):
                self.publish_status()
            for data, addr in rerequests:
                succession.serve_rerequest(self, retransmit_sock, data, addr)
            if self.sockets_changed:
                self.rebuild_inbox()

    def close(self) -> None:
        self.inbox.close()
        for s in (self.input_sock, self.recovery_sock, self.admin_sock, self.status_sock,
                  self.retransmit_sock, self.output_sock):
            if s is not None:
                s.close()
        if self.observed is not None:
            self.observed.close()
        if self.publisher is not None:
            self.publisher.close()

