"""The gateway process: ``python -m reference_impl.gateway --config F --run-dir D --id N``.

Theory of operation
-------------------
One asyncio event loop (uvloop unless ``cluster.event_loop`` says
``asyncio`` or uvloop is not installed: see ``main``) runs everything: the
two client doors (``ouch_door``: SoupBinTCP 3.0 + OUCH 4.2; ``http_door``:
aiohttp), the UDP sockets of the pipeline, and a 10 ms timer. All decisions
are made by ``core.gateway_desk.GatewayDesk``; this module only moves bytes
and clocks in and out of it. The doors see it only as their
``port.GatewayPort``, which it implements; it imports no door.

- Requests: a door calls ``submit(account, body, on_answer)``; the desk
  checks it and either refuses it (a ``RejectReason``: never sequenced; the
  desk journals the refusal, delivered at once to the account's subscribers,
  whichever door it came from) or returns the datagram, sent at once to
  ``sequencer.request_port``. The timer re-sends unsequenced requests after
  ``cluster.resend_ms``.
- Output stream: MoldUDP64 on ``gateways[i].output_port`` (or the group),
  checked, ordered and gap-filled by ``edges.mold_intake.MoldIntake``
  (which joins a live stream), one per epoch's session: ``output_feed``
  follows a promotion to the new primary's session after draining the old
  one; re-requests leave from a recovery socket to
  the primary's ``retransmit_port`` (the engine whose EngineStatus says
  primary with the highest epoch; until one does, the config's primary).
  Test-only: ``gateway_skips_output_gap`` gives gaps up instead
  (``broken_output``).
- Status channel on ``status_port``: logger watermarks, engine status,
  sequencer status feed the ack gate and the backpressure depth.
- Release: whatever the desk releases is journalled per account (by the
  desk) and collected here; after each datagram that can release (an output
  packet, a status record) and at the end of the tick, ``flush_out`` hands
  every subscriber of an account (OUCH connections, SSE streams) that
  account's entries in one call (an OUCH connection: one ``send``), then
  stamps gateway-out on every answer (``GatewayDesk.finish``: the one place,
  for both doors) and hands each answer to the door that waits for it
  (``on_answer``), so the stamp follows all of an input's writes. Per
  datagram, not per drain: an answer never waits behind unrelated datagrams.
- Admin (UDP ``admin_port``): ``health``, ``digest``, ``stages [N]``.

The process around this (command line, event loop, garbage collector, the
doors) is ``main``'s, and so is the incarnation passed in: a u32 that grows
with every start of this gateway id. It also names the SoupBinTCP session,
since outbound numbering restarts with the process.
"""

from __future__ import annotations

import asyncio
import hmac
import socket
import sys
import time
from collections.abc import Sequence
from typing import Protocol

from reference_impl.config import HOST, ClusterConfig
from reference_impl.core import output_codec, status_codec
from reference_impl.core.errors import DecodeError
from reference_impl.core.gateway_desk import Answer, Forward, GatewayDesk, Released, Stages
from reference_impl.core.gateway_orders import Account, Outbound
from reference_impl.core.messages import RejectReason
from reference_impl.core.receiver import Deliver
from reference_impl.edges import process, transport
from reference_impl.gateway.broken_output import GapSkippingReceiver
from reference_impl.gateway.output_feed import OutputFeed
from reference_impl.gateway.port import AnswerSink, Request, Subscriber

TICK_S = 0.01
DRAIN_HEARTBEATS = 5  #: an old output session not drained within this many heartbeats is given up
STAGES_DEFAULT = 100
STAGES_MAX = 400  #: keeps the admin reply inside one datagram (~110 bytes a row)


class Door(Protocol):
    """What the node needs of a running door: to close it when it stops."""

    async def close(self) -> None: ...


class GatewayNode:
    """Sockets, timers and subscribers around one ``GatewayDesk``; the doors' ``GatewayPort``."""

    def __init__(self, cfg: ClusterConfig, gateway_id: int, incarnation: int) -> None:
        self.cfg = cfg
        self.gw = cfg.gateway(gateway_id)
        self.incarnation = incarnation
        self.session = str(self.incarnation)
        has_secondary = any(e.role == "secondary" for e in cfg.engines)
        self.desk = GatewayDesk(
            gateway_id, self.incarnation, cfg.durability, cfg.instrument_table(),
            capacity=cfg.capacity, ratio=cfg.backpressure_ratio,
            resend_ns=cfg.resend_ms * 1_000_000,
            ack_before_durable=cfg.broken("ack_before_durable"),
            has_secondary=has_secondary)
        #: TEST-ONLY broken variant (docs/config.md): a backpressure refusal is still forwarded
        self.forward_refused = cfg.broken("forward_refused")
        self.default_primary = next(e.id for e in cfg.engines if e.role == "primary")
        self.out_session = cfg.output_stream.session.encode("ascii")
        self.subscribers: dict[str, set[Subscriber]] = {}
        self.waiters: dict[int, AnswerSink] = {}  #: request_seq -> the door waiting for it
        self._released: list[Outbound] = []  #: entries to deliver at the next ``flush_out``
        self._answers: list[Answer] = []  #: answers to stamp and hand out then
        self.ouch_counters: dict[str, int] = {}  #: the OUCH door's, once it runs
        self.counters = {"bad_output_records": 0, "bad_status": 0,
                         "retransmit_requests": 0, "send_errors": 0, "subscriber_errors": 0,
                         "status_logger": 0, "status_engine": 0, "status_sequencer": 0}
        self.out_sock = transport.stream_subscriber(cfg, cfg.output_stream, self.gw.output_port)
        self.recovery_sock = transport.bind_udp(0)
        # Joins the live stream: from 1 while the primary's ring still holds all of it.
        skipping = GapSkippingReceiver() if cfg.broken("gateway_skips_output_gap") else None
        self.output_feed = OutputFeed(self.out_session, self.recovery_sock, self._retransmit_addr,
                                      self.counters, receiver=skipping, join_within=cfg.capacity,
                                      drain_ns=DRAIN_HEARTBEATS * cfg.heartbeat_ms * 1_000_000)
        self.status_sock = transport.bind_udp(self.gw.status_port)
        self.admin_sock = transport.bind_udp(self.gw.admin_port)
        self.request_sock = transport.bind_udp(0)
        self.sequencer_addr = (HOST, cfg.sequencer.request_port)
        for s in (self.out_sock, self.recovery_sock, self.status_sock, self.admin_sock,
                  self.request_sock):
            s.setblocking(False)

    # ------------------------------------------------- the doors' port

    def check_login(self, account: str, password: str) -> bool:
        expected = self.cfg.accounts.get(account)
        return expected is not None and hmac.compare_digest(expected.encode(), password.encode())

    def submit(self, account: str, body: Request,
               on_answer: AnswerSink | None = None) -> Forward | RejectReason:
        """Check and forward a client request, or journal and deliver its refusal."""
        desk = self.desk
        result = desk.admit(account, body, time.monotonic_ns())
        if type(result) is Forward:
            if on_answer is not None:
                self.waiters[result.request_seq] = on_answer
            self._send_request(result.datagram)
        else:
            self._deliver([desk.local_reject(account, body, result, time.time_ns())])
            if self.forward_refused and result is RejectReason.BACKPRESSURE:  # TEST-ONLY variant
                self._send_request(desk.forward(account, body, time.monotonic_ns()).datagram)
        return result

    def subscribe(self, account: str, subscriber: Subscriber) -> Account:
        if self._released:  # what is already journalled goes to the earlier subscribers only
            self.flush_out()
        self.subscribers.setdefault(account, set()).add(subscriber)
        return self.desk.account(account)

    def unsubscribe(self, account: str, subscriber: Subscriber) -> None:
        subscribers = self.subscribers.get(account)
        if subscribers is not None:
            subscribers.discard(subscriber)

    def account(self, name: str) -> Account | None:
        return self.desk.accounts.get(name)

    def pending(self, account: str, token: str) -> bool:
        return self.desk.pending_for(account, token) is not None

    # ------------------------------------------------------------- release

    def _send_request(self, datagram: bytes) -> None:
        try:
            self.request_sock.sendto(datagram, self.sequencer_addr)
        except OSError:  # the sequencer is down or the buffer full: the resend covers it
            self.counters["send_errors"] += 1

    def _handle(self, released: Released) -> None:
        if released.published:
            self._released.extend(released.published)
        if released.answers:
            self._answers.extend(released.answers)

    def flush_out(self) -> None:
        """Deliver what was released, then stamp gateway-out on the answers and hand them out."""
        released = self._released
        if released:
            self._released = []
            self._deliver(released)
        answers = self._answers
        if answers:
            self._answers = []
            now = time.monotonic_ns()
            finish = self.desk.finish
            waiters = self.waiters
            for answer in answers:
                answer = answer._replace(stages=finish(answer.stages, now))
                on_answer = waiters.pop(answer.pending.request_seq, None)
                if on_answer is not None:
                    on_answer(answer)

    def _deliver(self, entries: list[Outbound]) -> None:
        """Each subscriber of an account gets that account's entries in one call."""
        subscribers = self.subscribers
        batches: dict[str, list[Outbound]] = {}
        for entry in entries:
            account = entry.output.account
            if subscribers.get(account):
                batch = batches.get(account)
                if batch is None:
                    batches[account] = [entry]
                else:
                    batch.append(entry)
        for account, batch in batches.items():
            sinks = subscribers[account]
            for sink in list(sinks):
                try:
                    sink(batch)
                except Exception as exc:  # one broken subscriber must not starve the others
                    self.counters["subscriber_errors"] += 1
                    sinks.discard(sink)
                    print(f"gateway: dropped a subscriber of {account}: {exc!r}", file=sys.stderr)

    # ------------------------------------------------------- output stream

    def _retransmit_addr(self, first_seq: int, count: int) -> tuple[str, int]:
        """Where an output re-request goes: the primary's retransmit port."""
        self.counters["retransmit_requests"] += 1
        engine_id = self.desk.primary_id or self.default_primary
        try:
            return HOST, self.cfg.engine(engine_id).retransmit_port
        except Exception:
            return HOST, self.cfg.engine(self.default_primary).retransmit_port

    def _on_output_readable(self, sock: socket.socket) -> None:
        while True:
            try:
                data = sock.recv(transport.RECV_BYTES)
            except (BlockingIOError, InterruptedError, OSError):
                return
            self._on_output_packet(data, sock is self.out_sock)
            self.flush_out()

    def _on_output_packet(self, data: bytes, live: bool) -> None:
        now = time.monotonic_ns()
        delivered = self.output_feed.on_packet(data, now, live)
        if delivered:
            self._carry_out(delivered, now)

    def _carry_out(self, delivered: Sequence[Deliver], now: int) -> None:
        """Hand every delivered output record to the desk, releasing what it lets out."""
        desk = self.desk
        decode = output_codec.decode
        for _, payload in delivered:
            try:
                rec = decode(payload)
            except DecodeError:
                self.counters["bad_output_records"] += 1
                continue
            self._handle(desk.on_output(rec, now))

    # ------------------------------------------------------ status, admin

    def _on_status_readable(self) -> None:
        desk = self.desk
        while True:
            try:
                data = self.status_sock.recv(transport.RECV_BYTES)
            except (BlockingIOError, InterruptedError, OSError):
                return
            try:
                record = status_codec.decode(data)
            except DecodeError:
                self.counters["bad_status"] += 1
                continue
            now = time.monotonic_ns()
            kind = type(record)
            if kind is status_codec.LoggerWatermark:
                self.counters["status_logger"] += 1
                self._handle(desk.on_logger(record, now))
                self.flush_out()
            elif kind is status_codec.EngineStatus:
                self.counters["status_engine"] += 1
                if record.primary:
                    self.output_feed.on_epoch(record.epoch, now)
                self._handle(desk.on_engine(record, now))
                self.flush_out()
            elif kind is status_codec.SequencerStatus:
                self.counters["status_sequencer"] += 1
                desk.on_sequencer(record, now)

    def _on_admin_readable(self) -> None:
        while True:
            try:
                data, addr = self.admin_sock.recvfrom(transport.RECV_BYTES)
            except (BlockingIOError, InterruptedError, OSError):
                return
            process.answer_admin(self.admin_sock, data, addr, self.on_admin)

    def on_admin(self, command: str) -> dict:
        words = command.split()
        verb = words[0] if words else ""
        if verb == "health":
            return {"ok": True, "component": "gateway", "id": self.gw.id,
                    "incarnation": self.incarnation,
                    "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0]}
        if verb == "digest":
            digest = self.desk.digest(time.monotonic_ns())
            digest["counters"].update(self.counters)
            receiver = self.output_feed.receiver
            if receiver is not None:
                digest["receiver"] = {"next_seq": receiver.next_seq, **receiver.counters()}
            digest.update(output_epoch=self.output_feed.epoch, incarnation=self.incarnation, session=self.session, ouch=self.ouch_counters,
                          durability=self.cfg.durability,
                          subscribers={a: len(s) for a, s in self.subscribers.items() if s})
            return digest
        if verb == "stages":
            n = int(words[1]) if len(words) > 1 else STAGES_DEFAULT
            n = max(0, min(n, STAGES_MAX))
            rows = list(self.desk.stages)[-n:] if n else []
            return {"fields": list(Stages._fields), "stages": [list(r) for r in rows]}
        return {"error": f"unknown command {command!r} (health, digest, stages [N])"}

    # ------------------------------------------------------------- running

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic_ns()
            for datagram in self.desk.due_resends(now):
                self._send_request(datagram)
            delivered = self.output_feed.on_tick(now)
            if delivered:
                self._carry_out(delivered, now)
            self.flush_out()

    def start_udp(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_reader(self.out_sock, self._on_output_readable, self.out_sock)
        loop.add_reader(self.recovery_sock, self._on_output_readable, self.recovery_sock)
        loop.add_reader(self.status_sock, self._on_status_readable)
        loop.add_reader(self.admin_sock, self._on_admin_readable)

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        for s in (self.out_sock, self.recovery_sock, self.status_sock, self.admin_sock):
            try:
                loop.remove_reader(s)
            except Exception:
                pass
        for s in (self.out_sock, self.recovery_sock, self.status_sock, self.admin_sock,
                  self.request_sock):
            s.close()

    async def run(self, stop: asyncio.Event, doors: Sequence[Door]) -> None:
        """Serve until ``stop`` is set; the doors (already listening) are closed then."""
        loop = asyncio.get_running_loop()
        # UDP last: an admin ``health`` answer means both doors are listening
        self.start_udp(loop)
        ticker = loop.create_task(self._tick())
        try:
            await stop.wait()
        finally:
            ticker.cancel()
            for door in doors:
                await door.close()
            self.close(loop)
