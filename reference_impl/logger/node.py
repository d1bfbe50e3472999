"""The logger process: ``python -m reference_impl.logger --config FILE --run-dir DIR``.

Theory of operation
-------------------
One single-threaded duty loop over an ``Inbox`` of four sockets:

- the input stream subscription (``logger.input_port``, or the group) and the
  *recovery* socket (ephemeral): MoldUDP64 packets go through
  ``edges.mold_intake.MoldIntake`` (session and block checks,
  ``core.receiver.Receiver``); each message it delivers is appended to the WAL,
  and each re-request leaves the recovery socket for
  ``sequencer.retransmit_port`` (the logger is the archive, so the sequencer's
  ring is its only source). Replies come back to the recovery socket.
- ``logger.archive_port``: MoldUDP64 re-requests from engines, answered from
  the in-memory tail (a ``RetransmitRing`` of ``cluster.capacity`` messages)
  or, further back, from the WAL through its sparse index.
- ``logger.admin_port``: ``health`` and ``digest``.

Group commit: each turn drains everything ready, appends every delivered
message (its bytes exactly as on the bus) to the WAL, then ``write()`` (one
``pwrite``) and a ``LoggerWatermark(written, durable)`` to every gateway's
status port, then one ``fdatasync`` and, when an ack gate waits for the
durable seq (``core.durability.logger_publishes_durable``: under ``fsync``),
a second watermark with the new durable seq. Otherwise no gate reads the
durable seq, so it rides on the next watermark (the next commit's, or the
idle repeat within ``heartbeat_ms``): one datagram per commit, not two.
Nothing sleeps on this path: while an fdatasync runs, packets queue in the
socket buffer and become the next turn's batch. An idle logger repeats its
watermark every ``heartbeat_ms``. Archive requests are answered after the
commit, so they never delay durability.

A data packet whose blocks do not all decode with ``sequenced_codec`` and
carry the packet's seq plus their index in their header
(``sequenced_codec.poisoned_block``) is dropped whole by the intake before
the receiver sees it (``poisoned_packets``): a damaged copy logged would be
the only copy (the receiver keeps the first copy of a seq); dropped, its seqs
stay a gap that is re-requested.

On start, ``WalWriter`` recovers an existing WAL directory (see wal.py: the
torn tail is quarantined, logged and zeroed) and the receiver resumes at
``last valid seq + 1``; the seqs it lacks arrive as gaps and are re-fetched.
A WAL corrupt in a way no crash explains (``WalCorruptError``: e.g. a defect
with valid records after it) stops the logger at once (exit 2) with the
segment, the offset and ``crucible wal verify`` on stderr.

Test-only faults: ``logger.fsync_delay_ms`` sleeps that long before each
fdatasync (to prove the ack gate from outside); ``ignore_wal_crc`` makes WAL
reads (recovery and archive) accept CRC-mismatched records.
"""

from __future__ import annotations

import time

from reference_impl.config import HOST, ClusterConfig
from reference_impl.core import durability, mold_codec, status_codec
from reference_impl.core.receiver import Receiver
from reference_impl.core.sequenced_codec import poisoned_block
from reference_impl.edges import process, transport
from reference_impl.edges.mold_intake import MoldIntake
from reference_impl.edges.retransmit_ring import (
    MAX_REPLY_MESSAGES,
    MAX_REPLY_PACKETS,
    RetransmitRing,
    answer_rerequest,
)
from reference_impl.logger.wal import WalWriter

MAX_PAYLOAD = 1400
POLL_MAX_S = 0.05
COMPONENT_ID = 0
RETRY_NS = 2_000_000


class LoggerAgent:
    def __init__(self, cfg: ClusterConfig, wal_dir) -> None:
        self.cfg = cfg
        lc = cfg.logger
        self.session = cfg.input_stream.session.encode("ascii")
        self.wal = WalWriter(wal_dir, lc.segment_bytes, lc.index_every,
                             ignore_crc=cfg.broken("ignore_wal_crc"),
                             sync_delay_s=lc.fsync_delay_ms / 1000)
        self.receiver = Receiver(next_seq=self.wal.next_seq, retransmit_after_ns=RETRY_NS)
        self.tail = RetransmitRing(cfg.capacity)
        self.input_sock = transport.stream_subscriber(cfg, cfg.input_stream, lc.input_port)
        self.recovery_sock = transport.bind_udp(0)
        self.archive_sock = transport.bind_udp(lc.archive_port)
        self.admin_sock = transport.bind_udp(lc.admin_port)
        self.inbox = transport.node_inbox(
            cfg, [self.input_sock, self.recovery_sock, self.archive_sock, self.admin_sock])
        self.status_sock = transport.bind_udp(0)
        self.status_targets = [(HOST, g.status_port) for g in cfg.gateways]
        self.sequencer_addr = (HOST, cfg.sequencer.retransmit_port)
        self.heartbeat_ns = cfg.heartbeat_ms * 1_000_000
        self.last_status_ns = 0
        #: a gate waits for the durable seq: send it right after the fdatasync
        self.durable_gates = durability.logger_publishes_durable(cfg.durability)
        self.counters = {"appended": 0, "payload_seq_mismatch": 0, "rerequests": 0,
                         "archive_requests": 0, "bad_archive_requests": 0,
                         "archive_packets": 0, "archive_from_wal": 0, "watermarks": 0}
        self.intake = MoldIntake(self.session, self.recovery_sock, self.route_rerequest,
                                 self.counters, receiver=self.receiver, check_block=poisoned_block,
                                 stream="input stream")

    # ------------------------------------------------------------- inbound

    def on_input_packet(self, data: bytes, now: int) -> None:
        """One input-stream datagram: append what it delivers to the WAL and the tail."""
        wal, tail, counters = self.wal, self.tail, self.counters
        for seq, payload in self.intake.on_packet(data, now):
            if payload[:8] != seq.to_bytes(8, "big"):
                counters["payload_seq_mismatch"] += 1  # kept as is: the bus's bytes
            wal.append(seq, payload)
            tail.put(seq, payload)
            counters["appended"] += 1

    def route_rerequest(self, first_seq: int, count: int) -> tuple[str, int]:
        """The sequencer's ring is the logger's only source."""
        self.counters["rerequests"] += 1
        return self.sequencer_addr

    def on_archive_request(self, data: bytes, addr: tuple) -> None:
        answer_rerequest(self.archive_sock, data, addr, self.session, self.plan_archive_reply,
                         self.counters, "archive")

    def plan_archive_reply(self, seq: int, count: int) -> list[bytes]:
        """The reply datagrams: the written part of the range, from memory or the WAL."""
        written = self.wal.written_seq
        if seq > written:
            return [mold_codec.encode_heartbeat(self.session, written + 1)]
        if self.tail.head and seq >= self.tail.low:
            return self.tail.serve_request(self.session, seq, count, MAX_PAYLOAD)
        self.counters["archive_from_wal"] += 1
        records = self.wal.reader.read_range(seq, min(count, MAX_REPLY_MESSAGES, written - seq + 1))
        if not records:
            return []
        out: list[bytes] = []
        first = records[0][0]
        for group in mold_codec.plan_packets([p for _, p in records], MAX_PAYLOAD):
            if len(out) == MAX_REPLY_PACKETS:
                break
            out.append(mold_codec.encode_packet(self.session, first, group))
            first += len(group)
        return out

    def on_admin(self, command: str) -> dict:
        if command == "health":
            return {"ok": True, "component": "logger"}
        if command == "digest":
            wal = self.wal
            rec = wal.recovery
            return {"written_seq": wal.written_seq, "durable_seq": wal.durable_seq,
                    "segments": wal.segment_count(), "records": wal.records,
                    "next_seq": wal.next_seq, "fsyncs": wal.fsyncs, "writes": wal.writes,
                    "counters": dict(self.counters), "receiver": self.receiver.counters(),
                    "missing": self.receiver.missing()[:16],
                    "recovery": None if rec is None else {
                        "segment": rec.segment, "next_seq": rec.next_seq,
                        "defect": None if rec.defect is None else rec.defect._asdict(),
                        "cut_bytes": rec.cut_bytes, "quarantine": rec.quarantine}}
        return {"error": f"unknown command {command!r} (health, digest)"}

    # ------------------------------------------------------------ outbound

    def commit(self) -> None:
        """Group commit: one pwrite, a watermark, one fdatasync, a watermark if fsync gates."""
        self.wal.write()
        self.publish_watermark()
        self.wal.sync()
        if self.durable_gates:
            self.publish_watermark()

    def publish_watermark(self) -> None:
        self.last_status_ns = time.monotonic_ns()
        record = status_codec.encode(status_codec.LoggerWatermark(
            COMPONENT_ID, self.wal.written_seq, self.wal.durable_seq, self.last_status_ns))
        for target in self.status_targets:
            try:
                self.status_sock.sendto(record, target)
            except OSError:
                pass
        self.counters["watermarks"] += 1

    # ------------------------------------------------------------ duty loop

    def poll_timeout(self, now: int) -> float:
        due = self.last_status_ns + self.heartbeat_ns
        wake = self.receiver.next_wake_ns
        if wake is not None:
            due = min(due, wake)
        return min(POLL_MAX_S, max(due - now, 0) / 1e9)

    def run(self, stop: process.StopFlag) -> None:
        input_sock, recovery_sock, archive_sock = (
            self.input_sock, self.recovery_sock, self.archive_sock)
        receiver, wal = self.receiver, self.wal
        self.publish_watermark()
        while not stop.is_set:
            batch = self.inbox.poll(self.poll_timeout(time.monotonic_ns()))
            now = time.monotonic_ns()
            archive = []
            for sock, data, addr in batch:
                if sock is input_sock or sock is recovery_sock:
                    self.on_input_packet(data, now)
                elif sock is archive_sock:
                    archive.append((data, addr))
                else:
                    process.answer_admin(sock, data, addr, self.on_admin)
            wake = receiver.next_wake_ns
            if wake is not None and wake <= now:
                self.intake.on_tick(now)
            if wal.pending:
                self.commit()
            elif now - self.last_status_ns >= self.heartbeat_ns:
                self.publish_watermark()
            for data, addr in archive:
                self.on_archive_request(data, addr)

    def close(self) -> None:
        self.inbox.close()
        for s in (self.input_sock, self.recovery_sock, self.archive_sock, self.admin_sock,
                  self.status_sock):
            s.close()
        self.wal.close()

