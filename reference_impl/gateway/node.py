"""The gateway process: ``python -m reference_impl.gateway --config F --run-dir D --id N``.

Theory of operation
-------------------
One asyncio event loop (uvloop unless ``cluster.event_loop`` says
``asyncio`` or uvloop is not installed: see ``gateway_main``) runs
everything: the two client doors (``ouch_door``: SoupBinTCP 3.0 + OUCH 4.2;
``http_door``: aiohttp), the UDP sockets of the pipeline, and a 10 ms timer.
All decisions are made by ``core.gateway_desk.GatewayDesk``; this module
only moves bytes and clocks in and out of it.

- Requests: a door calls ``submit(account, body)``; the book checks it and
  either refuses (a ``RejectReason``: never sequenced) or returns the
  datagram, sent at once to ``sequencer.request_port``. The timer re-sends
  unsequenced requests after ``cluster.resend_ms``.
- Output stream: MoldUDP64 on ``gateways[i].output_port`` (or the group),
  checked, ordered and gap-filled by ``edges.mold_intake.MoldIntake``
  (which joins a live stream); re-requests leave from a recovery socket to
  the primary's ``retransmit_port`` (the engine whose EngineStatus says
  primary; until one does, the config's primary).
- Status channel on ``status_port``: logger watermarks, engine status,
  sequencer status feed the ack gate and the backpressure depth.
- Release: whatever the book releases is journalled per account and handed
  to every subscriber of that account (OUCH sessions, SSE streams); an answer
  to an HTTP request resolves that request's future (the HTTP handler stamps
  gateway-out), other answers are stamped here.
- Batched output: a subscriber may buffer what it is handed and ask for a
  ``flush`` (``defer_flush``); after each datagram that can release (an
  output packet, a status record), at the end of the tick and of a door's
  input, ``flush_out`` runs those flushes (an OUCH session: one ``send`` for
  all its messages that datagram released) and only then stamps gateway-out
  on the answers, so the stamp still follows all of an input's writes. Per
  datagram, not per drain: an answer never waits behind unrelated datagrams.
- Admin (UDP ``admin_port``): ``health``, ``digest``, ``stages [N]``.

The process around this (command line, event loop, garbage collector) is
``gateway_main``'s, and so is the incarnation passed in: a u32 that grows
with every start of this gateway id. It also names the SoupBinTCP session,
since outbound numbering restarts with the process.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import Callable, Sequence

from reference_impl.config import HOST, ClusterConfig
from reference_impl.core import output_codec, status_codec
from reference_impl.core.errors import DecodeError
from reference_impl.core.gateway_desk import Answer, Forward, GatewayDesk, Released, Stages
from reference_impl.core.gateway_orders import Outbound
from reference_impl.core.messages import RejectReason
from reference_impl.core.receiver import Deliver
from reference_impl.edges import process, transport
from reference_impl.edges.mold_intake import MoldIntake

TICK_S = 0.01
REQUEST_TIMEOUT_S = 5.0
STAGES_DEFAULT = 100
STAGES_MAX = 400  #: keeps the admin reply inside one datagram (~110 bytes a row)
Subscriber = Callable[[Outbound], None]


class GatewayNode:
    """Sockets, timers and subscribers around one ``GatewayDesk``."""

    def __init__(self, cfg: ClusterConfig, gateway_id: int, incarnation: int,
                 request_timeout_s: float = REQUEST_TIMEOUT_S,
                 ouch_idle_timeout_s: float = 15.0) -> None:
        self.cfg = cfg
        self.gw = cfg.gateway(gateway_id)
        self.incarnation = incarnation
        self.session = str(self.incarnation)
        self.request_timeout_s = request_timeout_s
        self.ouch_idle_timeout_s = ouch_idle_timeout_s
        has_secondary = any(e.role == "secondary" for e in cfg.engines)
        self.book = GatewayDesk(
            gateway_id, self.incarnation, cfg.durability, cfg.instrument_table(),
            capacity=cfg.capacity, ratio=cfg.backpressure_ratio,
            resend_ns=cfg.resend_ms * 1_000_000,
            ack_before_durable="ack_before_durable" in cfg.faults,
            has_secondary=has_secondary)
        self.default_primary = next(e.id for e in cfg.engines if e.role == "primary")
        self.out_session = cfg.output_stream.session.encode("ascii")
        self.subscribers: dict[str, set[Subscriber]] = {}
        self.waiters: dict[int, asyncio.Future] = {}
        self._flushes: list[Callable[[], None]] = []  #: buffered subscribers to flush
        self._unstamped: list[Stages] = []  #: answers to stamp once flushed
        self.ouch_counters: dict[str, int] = {}  #: the OUCH door's, once it runs
        self.counters = {"bad_output_records": 0, "bad_status": 0,
                         "retransmit_requests": 0, "send_errors": 0, "subscriber_errors": 0,
                         "status_logger": 0, "status_engine": 0, "status_sequencer": 0}
        self.out_sock = transport.stream_subscriber(cfg, cfg.output_stream, self.gw.output_port)
        self.recovery_sock = transport.bind_udp(0)
        # Joins the live stream: from 1 while the primary's ring still holds all of it.
        self.output_intake = MoldIntake(self.out_session, self.recovery_sock, self._retransmit_addr,
                                        self.counters, join_within=cfg.capacity,
                                        stream="output stream")
        self.status_sock = transport.bind_udp(self.gw.status_port)
        self.admin_sock = process.admin_socket(self.gw.admin_port)
        self.request_sock = transport.bind_udp(0)
        self.sequencer_addr = (HOST, cfg.sequencer.request_port)
        for s in (self.out_sock, self.recovery_sock, self.status_sock, self.admin_sock,
                  self.request_sock):
            s.setblocking(False)

    # ------------------------------------------------------------ requests

    def submit(self, account: str, body: object) -> Forward | RejectReason:
        """Check and forward a client request (the doors' one entry point)."""
        result = self.book.admit(account, body, time.monotonic_ns())
        if type(result) is Forward:
            self._send_request(result.datagram)
        return result

    def wait_for(self, request_seq: int) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self.waiters[request_seq] = fut
        return fut

    def forget(self, request_seq: int) -> None:
        self.waiters.pop(request_seq, None)

    def _send_request(self, datagram: bytes) -> None:
        try:
            self.request_sock.sendto(datagram, self.sequencer_addr)
        except OSError:  # the sequencer is down or the buffer full: the resend covers it
            self.counters["send_errors"] += 1

    # --------------------------------------------------------- subscribers

    def subscribe(self, account: str, sink: Subscriber) -> None:
        self.subscribers.setdefault(account, set()).add(sink)

    def unsubscribe(self, account: str, sink: Subscriber) -> None:
        sinks = self.subscribers.get(account)
        if sinks is not None:
            sinks.discard(sink)

    def publish(self, entry: Outbound) -> None:
        sinks = self.subscribers.get(entry.output.account)
        if sinks:
            for sink in list(sinks):
                try:
                    sink(entry)
                except Exception as exc:  # one broken subscriber must not starve the others
                    self.counters["subscriber_errors"] += 1
                    sinks.discard(sink)
                    print(f"gateway: dropped a subscriber of {entry.output.account}: {exc!r}",
                          file=sys.stderr)

    def defer_flush(self, flush: Callable[[], None]) -> None:
        """Have ``flush`` called at the end of this callback (``flush_out``)."""
        self._flushes.append(flush)

    def flush_out(self) -> None:
        """Send what subscribers buffered, then stamp gateway-out on what was answered."""
        flushes = self._flushes
        if flushes:
            self._flushes = []
            for flush in flushes:
                try:
                    flush()
                except Exception as exc:  # as in publish: one broken subscriber only
                    self.counters["subscriber_errors"] += 1
                    print(f"gateway: a subscriber's flush failed: {exc!r}", file=sys.stderr)
        unstamped = self._unstamped
        if unstamped:
            self._unstamped = []
            now = time.monotonic_ns()
            finish = self.book.finish
            for stages in unstamped:
                finish(stages, now)

    def _handle(self, released: Released) -> None:
        if not released.published and not released.answers:
            return
        for entry in released.published:
            self.publish(entry)
        for answer in released.answers:
            fut = self.waiters.pop(answer.pending.request_seq, None)
            if fut is not None and not fut.done():
                fut.set_result(answer)
            else:
                self._unstamped.append(answer.stages)

    def finish(self, answer: Answer) -> Stages:
        """Stamp gateway-out for an answer a door is about to send."""
        return self.book.finish(answer.stages, time.monotonic_ns())

    # ------------------------------------------------------- output stream

    def _retransmit_addr(self, first_seq: int, count: int) -> tuple[str, int]:
        """Where an output re-request goes: the primary's retransmit port."""
        self.counters["retransmit_requests"] += 1
        engine_id = self.book.primary_id or self.default_primary
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
            self._on_output_packet(data)
            self.flush_out()

    def _on_output_packet(self, data: bytes) -> None:
        now = time.monotonic_ns()
        delivered = self.output_intake.on_packet(data, now)
        if delivered:
            self._carry_out(delivered, now)

    def _carry_out(self, delivered: Sequence[Deliver], now: int) -> None:
        """Hand every delivered output record to the desk, releasing what it lets out."""
        book = self.book
        decode = output_codec.decode
        for _, payload in delivered:
            try:
                rec = decode(payload)
            except DecodeError:
                self.counters["bad_output_records"] += 1
                continue
            self._handle(book.on_output(rec, now))

    # ------------------------------------------------------ status, admin

    def _on_status_readable(self) -> None:
        book = self.book
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
                self._handle(book.on_logger(record, now))
                self.flush_out()
            elif kind is status_codec.EngineStatus:
                self.counters["status_engine"] += 1
                self._handle(book.on_engine(record, now))
                self.flush_out()
            elif kind is status_codec.SequencerStatus:
                self.counters["status_sequencer"] += 1
                book.on_sequencer(record, now)

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
            digest = self.book.digest(time.monotonic_ns())
            digest["counters"].update(self.counters)
            receiver = self.output_intake.receiver
            if receiver is not None:
                digest["receiver"] = {"next_seq": receiver.next_seq, **receiver.counters()}
            digest.update(incarnation=self.incarnation, session=self.session, ouch=self.ouch_counters,
                          durability=self.cfg.durability,
                          subscribers={a: len(s) for a, s in self.subscribers.items() if s})
            return digest
        if verb == "stages":
            n = int(words[1]) if len(words) > 1 else STAGES_DEFAULT
            n = max(0, min(n, STAGES_MAX))
            rows = list(self.book.stages)[-n:] if n else []
            return {"fields": list(Stages._fields), "stages": [list(r) for r in rows]}
        return {"error": f"unknown command {command!r} (health, digest, stages [N])"}

    # ------------------------------------------------------------- running

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic_ns()
            for datagram in self.book.due_resends(now):
                self._send_request(datagram)
            self.output_intake.on_tick(now)
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

    async def run(self, stop: asyncio.Event) -> None:
        from reference_impl.gateway import (
            http_door,
            ouch_door,  # the doors import this module's types
        )

        loop = asyncio.get_running_loop()
        ouch = await ouch_door.start(self, HOST, self.gw.ouch_port)
        self.ouch_counters = ouch.counters
        http = await http_door.start(self, HOST, self.gw.http_port)
        # UDP last: an admin ``health`` answer means both doors are listening
        self.start_udp(loop)
        ticker = loop.create_task(self._tick())
        try:
            await stop.wait()
        finally:
            ticker.cancel()
            await ouch.close()
            await http.close()
            self.close(loop)

