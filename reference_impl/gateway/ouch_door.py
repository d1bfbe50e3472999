"""The binary door: SoupBinTCP 3.0 carrying OUCH 4.2, a thin asyncio protocol.

Theory of operation
-------------------
One ``OuchConnection`` (an asyncio ``Protocol``) per TCP connection, around
one ``core.soupbin_session.SoupBinSession``, which decides everything
SoupBinTCP: login ('A' for a wrong account or password, 'S' for a session
other than the gateway's), deadlines, heartbeats, the replay from a requested
sequence number, bad frames, logout. The connection feeds it bytes and clock
readings and carries out its events (write, close); other connections never
notice what one does.

Its own part is OUCH. An Unsequenced Data payload is decoded
(``ouch_codec.decode_inbound``; one that is not an OUCH 4.2 client message
ends the session with a Debug packet), mapped to the core and submitted
through the ``GatewayPort``. A refusal (a stateless check or backpressure)
comes back like any output: the gateway journals it and delivers it to the
account's subscribers, this one included, as an Order Rejected ('C' for
backpressure) or a Cancel Reject, numbered like every server message.

Output: the gateway hands a connection each batch of its account's journal
entries once (``deliver``); they are rendered (``core.ouch_render``) and sent
with one ``transport.write``. While the connection handles its own input the
writes are corked, so what one read causes goes out in one write at its end.
A client whose unsent output passes ``MAX_WRITE_BUFFER`` after a delivery is
dropped (it can log in again and resume by seq). A timer ticks every
session each ``TIMER_S``.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass

from reference_impl.core import ouch_codec
from reference_impl.core import soupbin_codec as sb
from reference_impl.core import soupbin_session as ss
from reference_impl.core.errors import DecodeError
from reference_impl.core.gateway_desk import Forward
from reference_impl.core.gateway_orders import Account, Outbound
from reference_impl.core.ouch_messages import CancelOrder, EnterOrder, ReplaceOrder
from reference_impl.core.ouch_render import render
from reference_impl.gateway.port import GatewayPort

LOGIN_TIMEOUT_S = ss.LOGIN_TIMEOUT_NS / ss.SECOND_NS
IDLE_TIMEOUT_S = ss.IDLE_TIMEOUT_NS / ss.SECOND_NS
TIMER_S = 0.2
MAX_WRITE_BUFFER = 16 << 20
_TO_CORE = {EnterOrder: ouch_codec.enter_to_core, ReplaceOrder: ouch_codec.replace_to_core,
            CancelOrder: ouch_codec.cancel_to_core}
#: the door counter an ending counts in, besides ``protocol_errors`` for a Debug-ended one
_END_COUNTERS = {ss.NOT_AUTHORIZED: "login_rejected", ss.NO_SESSION: "login_rejected",
                 ss.LOGIN_DEADLINE: "login_timeout", ss.CLIENT_SILENT: "idle_dropped",
                 ss.TRUNCATED: "truncated"}


@dataclass(frozen=True)
class OuchSettings:
    """What the door is told when it is built (``main``)."""

    session: str  #: the SoupBinTCP session name: the gateway's incarnation
    idle_timeout_s: float = IDLE_TIMEOUT_S
    login_timeout_s: float = LOGIN_TIMEOUT_S
    #: test-only variant ``soupbin_resume_after``: replay from the requested number + 1
    resume_after: bool = False


class OuchConnection(asyncio.Protocol):
    """One TCP connection: its SoupBinTCP session, OUCH requests in, its account's stream out."""

    def __init__(self, door: OuchDoor) -> None:
        self.door = door
        self.gateway = door.gateway
        settings = door.settings
        self.session = ss.SoupBinSession(
            settings.session, self.gateway.check_login, self._open_journal, render,
            time.monotonic_ns(), login_timeout_ns=int(settings.login_timeout_s * ss.SECOND_NS),
            idle_timeout_ns=int(settings.idle_timeout_s * ss.SECOND_NS))
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._cork: list[bytes] | None = None  #: writes held while handling our own input
        self._delivered_corked = False

    # ------------------------------------------------------- asyncio events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.door.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._detach()

    def eof_received(self) -> bool:
        self.session.receive_eof()
        self._drain()
        return False

    def data_received(self, data: bytes) -> None:
        self.session.receive_data(data, time.monotonic_ns())
        self._cork = cork = []
        try:
            self._drain()
        finally:
            self._cork = None
            if cork and not self.closed:
                self._put(cork[0] if len(cork) == 1 else b"".join(cork))
            if self._delivered_corked:
                self._delivered_corked = False
                self._check_backlog()

    def on_timer(self, now_ns: int) -> None:
        self.session.tick(now_ns)
        self._drain()

    # --------------------------------------------------- the session's events

    def _drain(self) -> None:
        """Carry out the session's events, in order, until it has none."""
        session = self.session
        while (event := session.next_event()) is not None:
            kind = type(event)
            if kind is sb.UnsequencedData:
                try:
                    self._on_message(event.payload)  # type: ignore[union-attr]
                except Exception as exc:  # a bug must cost this session, never the gateway
                    self.door.counters["internal_errors"] += 1
                    session.fail(f"internal error: {type(exc).__name__}", time.monotonic_ns())
            elif kind is ss.Send:
                self._write(event.data)  # type: ignore[union-attr]
            elif kind is ss.LoggedIn:
                self.door.counters["logins"] += 1
            else:
                self._end(event)  # type: ignore[arg-type]

    def _on_message(self, payload: bytes) -> None:
        try:
            msg = ouch_codec.decode_inbound(payload)
        except DecodeError as exc:
            self.session.fail(str(exc), time.monotonic_ns())
            return
        body = _TO_CORE[type(msg)](msg)  # type: ignore[operator]
        if type(self.gateway.submit(self.session.account, body)) is not Forward:  # type: ignore[arg-type]
            self.door.counters["rejected"] += 1

    def _end(self, event: ss.Ended) -> None:
        counters = self.door.counters
        if event.failed:
            counters["protocol_errors"] += 1
        counter = _END_COUNTERS.get(event.cause)
        if counter is not None:
            counters[counter] += 1
        self.close()

    def _open_journal(self, account: str) -> Account:
        """The session accepted a login: subscribe, and replay from the journal returned."""
        journal = self.gateway.subscribe(account, self.deliver)
        return _AfterRequested(journal) if self.door.settings.resume_after else journal

    # --------------------------------------------------------------- output

    def deliver(self, entries: list[Outbound]) -> None:
        """A batch of this account's journal entries: one write (the port's ``Subscriber``)."""
        if self.closed:
            return
        data = self.session.send_sequenced(entries, time.monotonic_ns())
        if not data:
            return
        if self._cork is not None:
            self._cork.append(data)
            self._delivered_corked = True
        else:
            self._put(data)
            self._check_backlog()

    def _write(self, data: bytes) -> None:
        if self._cork is not None:
            self._cork.append(data)
        elif not self.closed:
            self._put(data)

    def _put(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def _check_backlog(self) -> None:
        transport = self.transport
        if (transport is not None and not self.closed
                and transport.get_write_buffer_size() > MAX_WRITE_BUFFER):
            self.door.counters["slow_consumer"] += 1
            self.session.fail("slow consumer: output buffer full, log in again to resume",
                              time.monotonic_ns())
            self._drain()

    # -------------------------------------------------------------- closing

    def close(self) -> None:
        """Write what is corked, then close (the transport flushes its buffer, then FIN)."""
        if self.closed:
            return
        cork = self._cork
        if cork:
            data = b"".join(cork)
            cork.clear()
            self._put(data)
        if self.transport is not None:
            self.transport.close()
        self._detach()

    def _detach(self) -> None:
        if self.closed:
            return
        self.closed = True
        account = self.session.account
        if account is not None:
            self.gateway.unsubscribe(account, self.deliver)
        self.door.connections.discard(self)


class _AfterRequested:
    """Test-only broken variant ``soupbin_resume_after``: the requested sequence number read as
    the last one the client has (SSE's meaning), so the replay starts one later than announced."""

    def __init__(self, journal: Account) -> None:
        self.journal = journal

    @property
    def next_out_seq(self) -> int:
        return self.journal.next_out_seq

    def since(self, from_seq: int) -> list[Outbound]:
        return self.journal.since(from_seq + 1)


class OuchDoor:
    """The listening server, its connections and the timer that ticks their sessions."""

    def __init__(self, gateway: GatewayPort, settings: OuchSettings) -> None:
        self.gateway = gateway
        self.settings = settings
        self.connections: set[OuchConnection] = set()
        self.server: asyncio.base_events.Server | None = None
        self._timer: asyncio.Task | None = None
        self.counters = {"logins": 0, "login_rejected": 0, "protocol_errors": 0,
                         "truncated": 0, "rejected": 0, "idle_dropped": 0, "slow_consumer": 0,
                         "internal_errors": 0, "login_timeout": 0}

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TIMER_S)
            now = time.monotonic_ns()
            for connection in list(self.connections):
                connection.on_timer(now)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.server is not None:
            self.server.close()
        for connection in list(self.connections):
            connection.close()


async def start(gateway: GatewayPort, settings: OuchSettings, host: str, port: int) -> OuchDoor:
    """Serve SoupBinTCP on ``host:port`` for ``gateway``."""
    door = OuchDoor(gateway, settings)
    loop = asyncio.get_running_loop()
    door.server = await loop.create_server(lambda: OuchConnection(door), host, port,
                                           reuse_address=True)
    door._timer = loop.create_task(door._tick())
    return door
