"""The binary door: a SoupBinTCP 3.0 server carrying OUCH 4.2 messages.

Theory of operation
-------------------
One ``OuchSession`` (an asyncio ``Protocol``) per TCP connection. Bytes go
through ``core.soupbin_codec.SoupBinFramer``; any framing error (a length
above the bound, a packet type a client may not send, a wrong fixed length,
a truncated packet at EOF, an Unsequenced Data payload that is not an OUCH
4.2 client message) ends that connection cleanly: a Debug packet says why,
then the socket is closed. Other sessions never notice.

Login: the first packet must be a Login Request. Username = account and
password from the config's ``accounts``; a wrong pair gets Login Rejected
'A'. A requested session that is neither blank nor the current one (the
gateway's incarnation) gets Login Rejected 'S'. Otherwise Login Accepted
carries the next sequence number: the requested one, clamped to
``1..next``, or ``next`` for 0. Sequenced Data numbering is the account's
outbound sequence (shared with the HTTP door's SSE event ids): the session
first replays the journal from that number, then streams live.

Requests: Enter / Replace / Cancel Order are mapped to the core and
submitted. A stateless failure or backpressure is answered at once with an
OUCH Order Rejected ('C' for backpressure; a Cancel Reject for a cancel)
that is journalled like every server message, so numbering stays gap-free.

Output: what the gateway releases is rendered into a per-session buffer and
sent at the end of the gateway's callback (``GatewayNode.flush_out``): one
``transport.write`` (one ``send``) for all of a session's messages of that
callback, in release order. A login's replay is one write too.

Heartbeats: a Server Heartbeat after 1 s without sending; a client silent
for ``idle_timeout_s`` (15 s per the spec) is dropped. A connection not
logged in ``login_timeout_s`` (15 s) after it opened is dropped whatever it
sends (a Debug packet refreshes the idle clock, not the login deadline). A client whose unsent
output passes ``MAX_WRITE_BUFFER`` is dropped too (it can resume by seq).
"""

from __future__ import annotations

import asyncio
import hmac
import socket
import struct
import time
from typing import TYPE_CHECKING

from reference_impl.core import ouch_codec
from reference_impl.core import soupbin_codec as sb
from reference_impl.core.errors import DecodeError
from reference_impl.core.gateway_desk import Forward
from reference_impl.core.gateway_orders import CANCEL, REPLACE, Outbound
from reference_impl.core.messages import Accepted, Canceled, Executed, Rejected, Replaced, Tif
from reference_impl.core.ouch_messages import (
    MARKET_PRICE,
    TIF_IOC,
    TIF_SYSTEM_HOURS,
    CancelOrder,
    CancelReject,
    EnterOrder,
    OrderAccepted,
    OrderCanceled,
    OrderExecuted,
    OrderRejected,
    OrderReplaced,
    ReplaceOrder,
)

if TYPE_CHECKING:
    from reference_impl.gateway.node import GatewayNode

HEARTBEAT_S = 1.0
LOGIN_TIMEOUT_S = 15.0  #: a connection must log in this soon after it opens
TIMER_S = 0.2
MAX_WRITE_BUFFER = 16 << 20
NS_PER_DAY = 86_400 * 10**9
_SIDE = {**ouch_codec.SIDE_CODES, None: b"B"}
_LEN = struct.Struct(">H")
_HEARTBEAT = sb.encode(sb.ServerHeartbeat())


# ---------------------------------------------------------------- rendering


def _tif(core_tif: int) -> int:
    return TIF_IOC if core_tif == Tif.IOC else TIF_SYSTEM_HOURS


def render(entry: Outbound) -> bytes:
    """The OUCH 4.2 bytes of one journal entry (timestamps: ns since UTC midnight)."""
    out, ts = entry.output, entry.ts % NS_PER_DAY
    kind = type(out)
    if kind is Accepted:
        live = b"D" if entry.tif == Tif.IOC else b"L"
        msg = OrderAccepted(ts, out.token, _SIDE[out.side], out.qty, out.symbol,
                            out.price or MARKET_PRICE, _tif(entry.tif), "", b"Y", out.order_ref,
                            b"A", b"N", entry.min_qty, b"N", live)
    elif kind is Executed:
        msg = OrderExecuted(ts, out.token, out.qty, out.price, out.liquidity.encode(),
                            out.match_id)
    elif kind is Canceled:
        msg = OrderCanceled(ts, out.token, out.qty, ouch_codec.CANCEL_CODES[out.reason])
    elif kind is Replaced:
        msg = OrderReplaced(ts, out.token, _SIDE[entry.side], out.qty, entry.symbol, out.price,
                            _tif(entry.tif), "", b"Y", out.order_ref, b"A", b"N", 0, b"N", b"L",
                            out.old_token)
    elif kind is Rejected:
        if entry.kind == CANCEL:
            msg = CancelReject(ts, out.token)
        else:
            msg = OrderRejected(ts, out.token, ouch_codec.REJECT_CODES[out.reason])
    else:
        raise TypeError(f"not an output: {out!r}")
    return ouch_codec.encode(msg)


def sequenced_frame(payload: bytes) -> bytes:
    return _LEN.pack(len(payload) + 1) + b"S" + payload


# ------------------------------------------------------------------ session


class OuchSession(asyncio.Protocol):
    """One SoupBinTCP connection: login, requests in, the account's stream out."""

    def __init__(self, door: OuchDoor) -> None:
        self.door = door
        self.node = door.node
        self.framer = sb.SoupBinFramer(from_client=True)
        self.transport: asyncio.Transport | None = None
        self.account: str | None = None
        self.closed = False
        self.opened = self.last_recv = self.last_send = time.monotonic()
        self._out: list[bytes] = []  #: rendered frames waiting for ``flush``

    # -------------------------------------------------------------- events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.door.sessions.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._detach()

    def eof_received(self) -> bool:
        if self.framer.buffered:
            self.door.counters["truncated"] += 1
        self.close()
        return False

    def data_received(self, data: bytes) -> None:
        self.last_recv = time.monotonic()
        try:
            packets = self.framer.feed(data)
        except DecodeError as exc:
            self.fail(exc)
            return
        try:
            for packet in packets:
                if self.closed:
                    break
                self.on_packet(packet)
        except Exception as exc:  # a bug must cost this session, never the gateway
            self.door.counters["internal_errors"] += 1
            self.fail(None, f"internal error: {type(exc).__name__}")
        else:
            if self.framer.error is not None and not self.closed:
                self.fail(self.framer.error)
        self.node.flush_out()  # local rejects (this session's or any other's)

    # ------------------------------------------------------------- packets

    def on_packet(self, packet: object) -> None:
        kind = type(packet)
        if self.account is None:
            if kind is sb.LoginRequest:
                self.on_login(packet)  # type: ignore[arg-type]
            elif kind is not sb.Debug:
                self.fail(None, "the first packet must be a Login Request")
            return
        if kind is sb.UnsequencedData:
            self.on_message(packet.payload)  # type: ignore[attr-defined]
        elif kind is sb.LogoutRequest:
            self.close()
        elif kind is sb.LoginRequest:
            self.fail(None, "already logged in")
        # Client Heartbeat and Debug: only refresh last_recv

    def on_login(self, req: sb.LoginRequest) -> None:
        node = self.node
        password = node.cfg.accounts.get(req.username)
        if password is None or not hmac.compare_digest(password.encode(), req.password.encode()):
            self.door.counters["login_rejected"] += 1
            self.send_and_close(sb.encode(sb.LoginRejected(sb.LOGIN_REJECT_NOT_AUTHORIZED)))
            return
        if req.requested_session and req.requested_session != node.session:
            self.door.counters["login_rejected"] += 1
            self.send_and_close(sb.encode(sb.LoginRejected(sb.LOGIN_REJECT_SESSION_UNAVAILABLE)))
            return
        account = node.book.account(req.username)
        nxt = account.next_out_seq
        start = req.requested_sequence_number
        start = nxt if start == 0 else min(max(start, 1), nxt)
        self.account = req.username
        frames = [sb.encode(sb.LoginAccepted(node.session, start))]
        frames.extend(sequenced_frame(render(entry)) for entry in account.since(start))
        self.write(b"".join(frames))
        node.subscribe(self.account, self.on_outbound)
        self.door.counters["logins"] += 1

    def on_message(self, payload: bytes) -> None:
        try:
            msg = ouch_codec.decode_inbound(payload)
        except DecodeError as exc:
            self.fail(exc)
            return
        kind = type(msg)
        if kind is EnterOrder:
            body, token, what = ouch_codec.enter_to_core(msg), msg.order_token, ""
        elif kind is ReplaceOrder:
            body, token, what = ouch_codec.replace_to_core(msg), msg.replacement_order_token, REPLACE
        else:
            assert kind is CancelOrder
            body, token, what = ouch_codec.cancel_to_core(msg), msg.order_token, CANCEL
        node = self.node
        result = node.submit(self.account, body)  # type: ignore[arg-type]
        if type(result) is not Forward:
            self.door.counters["rejected"] += 1
            entry = node.book.local_reject(self.account, body, result,  # type: ignore[arg-type]
                                           time.time_ns())
            node.publish(entry)

    # -------------------------------------------------------------- output

    def on_outbound(self, entry: Outbound) -> None:
        if self.closed:
            return
        out = self._out
        if not out:
            self.node.defer_flush(self.flush)
        out.append(sequenced_frame(render(entry)))

    def flush(self) -> None:
        """One write for everything buffered since the last flush."""
        out = self._out
        if not out:
            return
        self._out = []
        if self.closed:
            return
        self.write(out[0] if len(out) == 1 else b"".join(out))
        transport = self.transport
        if transport is not None and transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            self.door.counters["slow_consumer"] += 1
            self.fail(None, "slow consumer: output buffer full, log in again to resume")

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)
            self.last_send = time.monotonic()

    def on_timer(self, now: float) -> None:
        if self.closed:
            return
        if self.account is None and now - self.opened >= self.door.login_timeout_s:
            self.door.counters["login_timeout"] += 1
            self.fail(None, f"no Login Request within {self.door.login_timeout_s:g} s")
        elif now - self.last_recv >= self.door.idle_timeout_s:
            self.door.counters["idle_dropped"] += 1
            self.close()
        elif self.account is not None and now - self.last_send >= HEARTBEAT_S:
            self.write(_HEARTBEAT)

    # ------------------------------------------------------------- closing

    def fail(self, exc: DecodeError | None, reason: str = "") -> None:
        """A protocol error: say why in a Debug packet, then close (never raise)."""
        self.door.counters["protocol_errors"] += 1
        text = str(exc) if exc is not None else reason
        text = "".join(c if " " <= c <= "~" else "?" for c in text)[:200]
        self.send_and_close(sb.encode(sb.Debug(text)))

    def send_and_close(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)
        self.close()

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.transport.close()  # flushes what is buffered, then FIN
        self._detach()

    def _detach(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.account is not None:
            self.node.unsubscribe(self.account, self.on_outbound)
        self.door.sessions.discard(self)


# --------------------------------------------------------------------- door


class OuchDoor:
    """The listening server, its sessions and a timer for heartbeats and idle drops."""

    def __init__(self, node: GatewayNode, idle_timeout_s: float,
                 login_timeout_s: float = LOGIN_TIMEOUT_S) -> None:
        self.node = node
        self.idle_timeout_s = idle_timeout_s
        self.login_timeout_s = login_timeout_s
        self.sessions: set[OuchSession] = set()
        self.server: asyncio.base_events.Server | None = None
        self._timer: asyncio.Task | None = None
        self.counters = {"logins": 0, "login_rejected": 0, "protocol_errors": 0,
                         "truncated": 0, "rejected": 0, "idle_dropped": 0, "slow_consumer": 0,
                         "internal_errors": 0, "login_timeout": 0}

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TIMER_S)
            now = time.monotonic()
            for session in list(self.sessions):
                session.on_timer(now)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.server is not None:
            self.server.close()
        for session in list(self.sessions):
            session.close()


async def start(node: GatewayNode, host: str, port: int,
                login_timeout_s: float | None = None) -> OuchDoor:
    """Serve on ``host:port``; ``login_timeout_s`` defaults to the node's, else ``LOGIN_TIMEOUT_S``."""
    if login_timeout_s is None:
        login_timeout_s = getattr(node, "ouch_login_timeout_s", LOGIN_TIMEOUT_S)
    door = OuchDoor(node, node.ouch_idle_timeout_s, login_timeout_s)
    loop = asyncio.get_running_loop()
    door.server = await loop.create_server(lambda: OuchSession(door), host, port,
                                           reuse_address=True)
    door._timer = loop.create_task(door._tick())
    return door
