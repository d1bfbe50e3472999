"""The sequencer process: ``python -m reference_impl.sequencer --config FILE --run-dir DIR``.

Theory of operation
-------------------
One single-threaded duty loop over an ``Inbox`` of three sockets:

- ``sequencer.request_port``: gateway requests, one ``sequenced_codec`` frame
  per datagram with ``seq = 0``. A frame that does not decode, carries a
  nonzero seq, a control body or the reserved gateway id 0 is garbage: counted
  and dropped, never sequenced. The rest go through ``core.sequencing``
  (dedup) and are stamped with ``time.time_ns()``.
- ``sequencer.retransmit_port``: MoldUDP64 re-requests, answered from the
  retransmission ring (``cluster.capacity`` messages) to the sender's address.
- ``sequencer.admin_port``: ``health``, ``digest``, ``leader_change EPOCH
  ENGINE_ID`` and ``snapshot ID`` (sequenced control messages).

Each turn drains everything ready, sequences it all, then publishes it all as
MoldUDP64 packets of at most 1400 bytes to every engine and the logger
(``transport.stream_publisher``) and sends a ``SequencerStatus`` to every
gateway's status port, at most one every ``STATUS_MIN_NS`` (the status only
feeds the gateways' backpressure depth): a publish sooner than that leaves
the status owed, and the turn that reaches its time sends it (the poll
timeout wakes for it), so the published seq a gateway sees is never more than
``STATUS_MIN_NS`` plus one turn behind. Nothing ever waits on a timer while a message is
ready; the poll timeout only bounds idle time, and an idle stream gets a
heartbeat (count 0, seq = next seq) every ``heartbeat_ms``. Re-requests are
answered after the turn's publish, so they never delay fresh messages.

Published bytes are the gateway's frame with seq and ts written into its
first 16 bytes: ``sequenced_codec`` frames are canonical (decode then encode
gives the same bytes), so this is exactly ``encode(sequenced)`` without a
re-encode on the hot path.

Test-only faults (``faults:`` in the config): ``skip_dedup`` sequences a
resend the core refused; ``seq_without_message`` consumes every
``SKIP_EVERY``-th seq without publishing a message for it (every receiver
then waits at that hole for good); ``stall_after_fault`` stops publishing
anything (data, heartbeats, status) after a turn that came more than
``STALL_GAP_NS`` after the previous one, as after a SIGSTOP: requests are
still taken and sequenced, so the head moves on while nothing reaches the
engines or the logger; ``dedup_forgets`` remembers only a gateway's last
``FORGET_AFTER`` request numbers: a resend the core refused that lies further
back than that (already sequenced, long ago) is sequenced again, as by a
dedup table that evicts old entries.
"""

from __future__ import annotations

import struct
import time

from reference_impl.config import HOST, ClusterConfig
from reference_impl.core import mold_codec, sequenced_codec, status_codec
from reference_impl.core.errors import DecodeError
from reference_impl.core.messages import CLIENT_BODIES, LeaderChange, Sequenced, SnapshotRequest
from reference_impl.core.sequencing import CONTROL_GATEWAY, Request, Sequencer
from reference_impl.core.status_pacer import StatusPacer
from reference_impl.edges import process, transport
from reference_impl.edges.retransmit_ring import RetransmitRing, answer_rerequest

MAX_PAYLOAD = 1400
POLL_MAX_S = 0.05
INITIAL_EPOCH = 1  #: the cluster starts in epoch 1; the first LeaderChange must say 2
COMPONENT_ID = 0
STATUS_MIN_NS = 1_000_000  #: at most one SequencerStatus per ms while publishing
_SEQ_TS = struct.Struct(">QQ")
SKIP_EVERY = 32  #: fault seq_without_message: the seq after every 32nd is consumed silently
STALL_GAP_NS = 400_000_000  #: fault stall_after_fault: a turn this late means "paused"
FORGET_AFTER = 64  #: fault dedup_forgets: request numbers a gateway's dedup remembers


class SequencerAgent:
    """The duty cycle's state: core sequencer, ring, sockets and counters."""

    def __init__(self, cfg: ClusterConfig) -> None:
        self.cfg = cfg
        self.session = cfg.input_stream.session.encode("ascii")
        self.core = Sequencer(next_seq=1, epoch=INITIAL_EPOCH)
        self.ring = RetransmitRing(cfg.capacity)
        self.skip_dedup = cfg.broken("skip_dedup")
        self.skip_every = SKIP_EVERY if cfg.broken("seq_without_message") else 0
        self.stall_after_pause = cfg.broken("stall_after_fault")
        self.forget_after = FORGET_AFTER if cfg.broken("dedup_forgets") else 0
        self.stalled = False
        self.turn_ns = time.monotonic_ns()
        self.request_sock = transport.bind_udp(cfg.sequencer.request_port)
        self.retransmit_sock = transport.bind_udp(cfg.sequencer.retransmit_port)
        self.admin_sock = transport.bind_udp(cfg.sequencer.admin_port)
        self.inbox = transport.node_inbox(cfg, [self.request_sock, self.retransmit_sock, self.admin_sock])
        subscribers = [e.input_port for e in cfg.engines] + [cfg.logger.input_port]
        self.publisher = transport.stream_publisher(cfg, cfg.input_stream, subscribers)
        self.status_sock = transport.bind_udp(0)
        self.status_targets = [(HOST, g.status_port) for g in cfg.gateways]
        self.pending: list[bytes] = []
        self.published_seq = 0
        self.heartbeat_ns = cfg.heartbeat_ms * 1_000_000
        self.last_send_ns = 0  #: last packet on the stream (data or heartbeat)
        self.pacer = StatusPacer(STATUS_MIN_NS, self.heartbeat_ns)
        self.counters = {"sequenced": 0, "duplicates": 0, "garbage": 0, "skipped_dedup": 0,
                         "packets": 0, "heartbeats": 0, "retransmit_requests": 0,
                         "retransmit_packets": 0, "bad_retransmit_requests": 0}

    # ------------------------------------------------------------- inbound

    def on_request(self, data: bytes) -> None:
        try:
            msg = sequenced_codec.decode(data)
        except DecodeError:
            self.counters["garbage"] += 1
            return
        if msg.seq != 0 or msg.gateway_id == 0 or not isinstance(msg.body, CLIENT_BODIES):
            self.counters["garbage"] += 1
            return
        now = time.time_ns()
        stamped = self.core.sequence(
            Request(msg.gateway_id, msg.incarnation, msg.request_seq, msg.account, msg.body), now)
        if stamped is None:
            if not (self.skip_dedup or self.forget_after and self._forgotten(msg)):
                self.counters["duplicates"] += 1
                return
            seq, ts = self._stamp_without_dedup(now)
            self.counters["skipped_dedup"] += 1
        else:
            seq, ts = stamped.seq, stamped.ts
        frame = bytearray(data)
        _SEQ_TS.pack_into(frame, 0, seq, ts)
        self._append(seq, bytes(frame))
        if self.skip_every and seq % self.skip_every == 0:
            self._consume_without_message()

    def _stamp_without_dedup(self, now: int) -> tuple[int, int]:
        """Fault ``skip_dedup`` (test-only): sequence a resend the core refused."""
        core = self.core
        seq = core.next_seq
        core.next_seq = seq + 1
        ts = max(now, core.last_ts)
        core.last_ts = ts
        return seq, ts

    def _forgotten(self, msg: Sequenced) -> bool:
        """Fault ``dedup_forgets`` (test-only): a refused request older than the last few remembered."""
        state = self.core.gateway_state(msg.gateway_id)
        return (state is not None and msg.incarnation == state[0]
                and msg.request_seq <= state[1] - self.forget_after)

    def _consume_without_message(self) -> None:
        """Fault ``seq_without_message`` (test-only): take the next seq, publish nothing for it."""
        self.publish_pending()
        self.core.next_seq += 1
        self.published_seq += 1

    def _note_turn(self, now: int) -> None:
        """Fault ``stall_after_fault`` (test-only): a late turn (a pause) stalls the stream."""
        if now - self.turn_ns > STALL_GAP_NS:
            self.stalled = True
        self.turn_ns = now

    def _append(self, seq: int, frame: bytes) -> None:
        self.ring.put(seq, frame)
        self.pending.append(frame)
        self.counters["sequenced"] += 1

    def on_retransmit_request(self, data: bytes, addr: tuple) -> None:
        answer_rerequest(self.retransmit_sock, data, addr, self.session,
                         lambda seq, count: self.ring.serve_request(self.session, seq, count,
                                                                    MAX_PAYLOAD),
                         self.counters, "retransmit")

    # ------------------------------------------------------------- admin

    def on_admin(self, command: str) -> dict:
        words = command.split()
        if not words:
            return {"error": "empty command"}
        verb = words[0]
        if verb == "health":
            return {"ok": True, "component": "sequencer"}
        if verb == "digest":
            return {"next_seq": self.core.next_seq, "epoch": self.core.epoch,
                    "published_seq": self.published_seq,
                    "state_hash": self.core.state_hash(), "counters": dict(self.counters),
                    "drops": self.core.counters()}
        try:
            if verb == "leader_change" and len(words) == 3:
                body = LeaderChange(int(words[1]), int(words[2]))
            elif verb == "snapshot" and len(words) == 2:
                body = SnapshotRequest(int(words[1]))
            else:
                return {"error": f"unknown command {command!r} (health, digest, "
                                 "leader_change EPOCH ENGINE_ID, snapshot ID)"}
            # Encode before the core takes a seq (seq and ts are written in after):
            # nothing may fail between taking a seq and putting it on the bus.
            frame = bytearray(sequenced_codec.encode(
                Sequenced(0, 0, CONTROL_GATEWAY, 0, 0, "", body)))
            msg = self.core.sequence_control(body, time.time_ns())
        except ValueError as exc:
            return {"error": f"rejected {command!r}: {exc}"}
        if msg is None:
            return {"error": f"stale epoch: {body.epoch} is not current epoch "
                             f"{self.core.epoch} + 1"}
        _SEQ_TS.pack_into(frame, 0, msg.seq, msg.ts)
        self._append(msg.seq, bytes(frame))
        self.publish_pending()  # the reply promises the seq is on the bus
        return {"seq": msg.seq}

    # ------------------------------------------------------------ outbound

    def publish_pending(self) -> None:
        pending = self.pending
        if not pending:
            return
        first = self.published_seq + 1
        send = self.publisher.send
        for group in mold_codec.plan_packets(pending, MAX_PAYLOAD):
            send(mold_codec.encode_packet(self.session, first, group))
            first += len(group)
            self.counters["packets"] += 1
        self.published_seq = first - 1
        pending.clear()
        now = self.last_send_ns = time.monotonic_ns()
        if self.pacer.due(now, applied=True):
            self.publish_status(now)

    def publish_heartbeat(self) -> None:
        self.publisher.send(mold_codec.encode_heartbeat(self.session, self.core.next_seq))
        self.counters["heartbeats"] += 1
        self.last_send_ns = now = time.monotonic_ns()
        self.publish_status(now)

    def publish_status(self, now: int) -> None:
        self.pacer.sent(now)
        record = status_codec.encode(
            status_codec.SequencerStatus(COMPONENT_ID, self.published_seq, now))
        for target in self.status_targets:
            try:
                self.status_sock.sendto(record, target)
            except OSError:
                pass

    # ------------------------------------------------------------ duty loop

    def run(self, stop: process.StopFlag) -> None:
        request_sock, retransmit_sock = self.request_sock, self.retransmit_sock
        on_request = self.on_request
        while not stop.is_set:
            now = time.monotonic_ns()
            if self.stall_after_pause:
                self._note_turn(now)
            idle_ns = self.last_send_ns + self.heartbeat_ns - now
            if self.pacer.owed:
                idle_ns = min(idle_ns, self.pacer.wake_ns() - now)
            timeout = min(POLL_MAX_S, max(idle_ns, 0) / 1e9)
            batch = self.inbox.poll(timeout)
            rerequests = []
            for sock, data, addr in batch:
                if sock is request_sock:
                    on_request(data)
                elif sock is retransmit_sock:
                    rerequests.append((data, addr))
                else:
                    process.answer_admin(sock, data, addr, self.on_admin)
            if self.stalled:  # sends nothing, and idles as if it had
                self.pending.clear()
                self.last_send_ns = time.monotonic_ns()
            elif self.pending:
                self.publish_pending()
            else:
                now = time.monotonic_ns()
                if now - self.last_send_ns >= self.heartbeat_ns:
                    self.publish_heartbeat()
                elif self.pacer.owed and self.pacer.due(now, applied=False):
                    self.publish_status(now)
            for data, addr in rerequests:
                self.on_retransmit_request(data, addr)

    def close(self) -> None:
        self.inbox.close()
        for s in (self.request_sock, self.retransmit_sock, self.admin_sock, self.status_sock):
            s.close()
        self.publisher.close()

