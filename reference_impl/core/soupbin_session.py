"""A sans-I/O SoupBinTCP 3.0 server session: bytes in, decisions and bytes out.

Theory of operation
-------------------
One ``SoupBinSession`` per TCP connection, on the server side. The edge (an
asyncio protocol) hands it what the socket read (``receive_data``), the end of
the stream (``receive_eof``) and the passing of time (``tick``), each with a
monotonic ``now_ns``, then pulls events with ``next_event`` until it returns
None, carrying each out before pulling the next (h11's pattern: packets are
judged one at a time, so a decision the application makes about one packet,
such as ``fail``, takes effect before the next packet is looked at):

- ``Send(data)``: write these bytes;
- ``LoggedIn(account)``: the client is now logged in (the ``Send`` before it
  carried Login Accepted and the replay);
- an ``UnsequencedData`` packet: a client message for the application, as the
  framer decoded it;
- ``Ended(cause, failed)``: close the connection once what was sent before it
  is written (``failed``: a Debug packet said why).

What the server sends of its own accord returns bytes: ``send_sequenced``
frames live journal entries as Sequenced Data. ``fail`` is the application's
verdict on a payload it cannot use (or on a client too slow to read): a Debug
packet, then the end, as events like the rest.

The session never reads a clock, a socket or the gateway. Who may log in comes
in as ``authorize(username, password) -> bool``; the account's outbound
messages as ``open_journal(account)``, called once a login is accepted (it
returns something with ``next_out_seq`` and ``since(seq)``; the gateway
subscribes the session there, so the replay and the live stream meet with no
gap); how an entry becomes a payload as ``render(entry) -> bytes``.

States and transitions
~~~~~~~~~~~~~~~~~~~~~~
AWAITING_LOGIN from the connection's start, LOGGED_IN, ENDED. Each packet,
tick or verdict is named as one input below and looked up in
``TRANSITIONS`` (state, input) -> (next state, action, Debug text); a pair
missing from the table changes nothing (ENDED has no entries: an ended
session ignores everything).

A Login Request is judged only while awaiting login: a wrong username or
password is NOT_AUTHORIZED (Login Rejected 'A'), checked first; then a
requested session that is neither blank nor ``name`` is NO_SESSION ('S');
else LOGIN_OK. Login Accepted carries the number of the next Sequenced Data:
the requested one clamped to ``1..next_out_seq``, or ``next_out_seq`` for 0;
the journal is replayed from exactly that number, then the stream goes live.

Deadlines, checked by ``tick`` in this order: a connection not logged in
``login_timeout_ns`` after it opened ends (LOGIN_DEADLINE), whatever it sent
(a Debug packet refreshes the idle clock, not the login deadline); a client
that sent no byte for ``idle_timeout_ns`` ends quietly (CLIENT_SILENT); a
logged-in session that sent nothing for ``heartbeat_ns`` sends a Server
Heartbeat (HEARTBEAT_DUE).

Bad frames (``SoupBinFramer`` with ``from_client=True``: a length above
``max_payload``, a zero length, a packet type unknown or only a server's, a
wrong length for a fixed-size packet) end the session with a Debug packet
naming the fault; packets that arrived whole before the bad one are judged
first. EOF inside a packet is TRUNCATED, a clean EOF is EOF: both end quietly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from . import soupbin_codec as sb
from .errors import DecodeError

SECOND_NS = 1_000_000_000
LOGIN_TIMEOUT_NS = 15 * SECOND_NS  #: a connection must log in this soon after it opens
IDLE_TIMEOUT_NS = 15 * SECOND_NS  #: the spec's client heartbeat deadline
HEARTBEAT_NS = SECOND_NS  #: a Server Heartbeat after this long without sending
DEBUG_TEXT_MAX = 200

# states
AWAITING_LOGIN, LOGGED_IN, ENDED = "awaiting_login", "logged_in", "ended"
# inputs
LOGIN_OK, NOT_AUTHORIZED, NO_SESSION, LOGIN_AGAIN = (
    "login_ok", "not_authorized", "no_session", "login_again")
DATA, CLIENT_HEARTBEAT, DEBUG, LOGOUT = "data", "client_heartbeat", "debug", "logout"
BAD_FRAME, EOF, TRUNCATED = "bad_frame", "eof", "truncated"
LOGIN_DEADLINE, CLIENT_SILENT, HEARTBEAT_DUE = "login_deadline", "client_silent", "heartbeat_due"
APP_ERROR = "app_error"
# actions
ACCEPT, REFUSE, DELIVER, IGNORE, HEARTBEAT, END, FAIL = (
    "accept", "refuse", "deliver", "ignore", "heartbeat", "end", "fail")

_FIRST = "the first packet must be a Login Request"
_GIVEN = None  #: the Debug text comes with the input (a frame error, a deadline, a verdict)

#: (state, input) -> (next state, action, Debug text for FAIL). Nothing else moves the state.
TRANSITIONS: dict[tuple[str, str], tuple[str, str, str | None]] = {
    (AWAITING_LOGIN, LOGIN_OK): (LOGGED_IN, ACCEPT, ""),
    (AWAITING_LOGIN, NOT_AUTHORIZED): (ENDED, REFUSE, ""),
    (AWAITING_LOGIN, NO_SESSION): (ENDED, REFUSE, ""),
    (AWAITING_LOGIN, DATA): (ENDED, FAIL, _FIRST),
    (AWAITING_LOGIN, CLIENT_HEARTBEAT): (ENDED, FAIL, _FIRST),
    (AWAITING_LOGIN, LOGOUT): (ENDED, FAIL, _FIRST),
    (AWAITING_LOGIN, DEBUG): (AWAITING_LOGIN, IGNORE, ""),
    (AWAITING_LOGIN, BAD_FRAME): (ENDED, FAIL, _GIVEN),
    (AWAITING_LOGIN, EOF): (ENDED, END, ""),
    (AWAITING_LOGIN, TRUNCATED): (ENDED, END, ""),
    (AWAITING_LOGIN, LOGIN_DEADLINE): (ENDED, FAIL, _GIVEN),
    (AWAITING_LOGIN, CLIENT_SILENT): (ENDED, END, ""),
    (LOGGED_IN, DATA): (LOGGED_IN, DELIVER, ""),
    (LOGGED_IN, CLIENT_HEARTBEAT): (LOGGED_IN, IGNORE, ""),
    (LOGGED_IN, DEBUG): (LOGGED_IN, IGNORE, ""),
    (LOGGED_IN, LOGOUT): (ENDED, END, ""),
    (LOGGED_IN, LOGIN_AGAIN): (ENDED, FAIL, "already logged in"),
    (LOGGED_IN, BAD_FRAME): (ENDED, FAIL, _GIVEN),
    (LOGGED_IN, EOF): (ENDED, END, ""),
    (LOGGED_IN, TRUNCATED): (ENDED, END, ""),
    (LOGGED_IN, CLIENT_SILENT): (ENDED, END, ""),
    (LOGGED_IN, HEARTBEAT_DUE): (LOGGED_IN, HEARTBEAT, ""),
    (LOGGED_IN, APP_ERROR): (ENDED, FAIL, _GIVEN),
}

_INPUT_OF = {sb.UnsequencedData: DATA, sb.ClientHeartbeat: CLIENT_HEARTBEAT, sb.Debug: DEBUG,
             sb.LogoutRequest: LOGOUT}
_REJECT_CODE = {NOT_AUTHORIZED: sb.LOGIN_REJECT_NOT_AUTHORIZED,
                NO_SESSION: sb.LOGIN_REJECT_SESSION_UNAVAILABLE}
_HEARTBEAT_FRAME = sb.encode(sb.ServerHeartbeat())
_SEQUENCED = b"S"


class Send(NamedTuple):
    """Write ``data`` to the connection."""

    data: bytes


class LoggedIn(NamedTuple):
    """The client is logged in as ``account``; its replay was the ``Send`` before."""

    account: str


class Ended(NamedTuple):
    """Close the connection: ``cause`` is the input that ended it; ``failed``: a Debug said why."""

    cause: str
    failed: bool


Event = Send | LoggedIn | sb.UnsequencedData | Ended


class Journal(Protocol):
    """An account's outbound messages, numbered from 1, as a session replays them."""

    @property
    def next_out_seq(self) -> int: ...

    def since(self, from_seq: int) -> Sequence[Any]: ...


def frame_sequenced(payload: bytes) -> bytes:
    """One Sequenced Data packet (the hot path: no packet object built)."""
    return (len(payload) + 1).to_bytes(2, "big") + _SEQUENCED + payload


def _printable(text: str) -> str:
    return "".join(c if " " <= c <= "~" else "?" for c in text)[:DEBUG_TEXT_MAX]


class SoupBinSession:
    """One server-side SoupBinTCP connection's state machine (see the module doc)."""

    __slots__ = ("_authorize", "_eof", "_events", "_frame_error", "_framer", "_open_journal",
                 "_packets", "_render", "account", "heartbeat_ns", "idle_timeout_ns",
                 "last_recv_ns", "last_send_ns", "login_timeout_ns", "name", "next_seq",
                 "opened_ns", "state")

    def __init__(self, name: str, authorize: Callable[[str, str], bool],
                 open_journal: Callable[[str], Journal], render: Callable[[Any], bytes],
                 now_ns: int, *, login_timeout_ns: int = LOGIN_TIMEOUT_NS,
                 idle_timeout_ns: int = IDLE_TIMEOUT_NS, heartbeat_ns: int = HEARTBEAT_NS,
                 max_payload: int = sb.DEFAULT_MAX_PAYLOAD) -> None:
        self.name = name
        self._authorize = authorize
        self._open_journal = open_journal
        self._render = render
        self.state = AWAITING_LOGIN
        self.account: str | None = None
        self.next_seq = 0  #: the number of the next Sequenced Data (set at login)
        self.opened_ns = self.last_recv_ns = self.last_send_ns = now_ns
        self.login_timeout_ns = login_timeout_ns
        self.idle_timeout_ns = idle_timeout_ns
        self.heartbeat_ns = heartbeat_ns
        self._framer = sb.SoupBinFramer(max_payload, from_client=True)
        self._packets: deque[sb.ClientPacket] = deque()
        self._frame_error: DecodeError | None = None
        self._eof = False
        self._events: deque[Event] = deque()

    @property
    def ended(self) -> bool:
        return self.state is ENDED

    # --------------------------------------------------------------- inputs

    def receive_data(self, data: bytes, now_ns: int) -> None:
        """Bytes the client sent (any split); pull the consequences with ``next_event``."""
        if self.state is ENDED or self._frame_error is not None:
            return
        self.last_recv_ns = now_ns
        try:
            self._packets.extend(self._framer.feed(data))
        except DecodeError:
            pass
        self._frame_error = self._framer.error

    def receive_eof(self) -> None:
        """The client closed its side: judged after the packets already received."""
        self._eof = True

    def tick(self, now_ns: int) -> None:
        """Let time pass: the login deadline, the client's silence, the server's heartbeat."""
        state = self.state
        if state is ENDED:
            return
        if state is AWAITING_LOGIN and now_ns - self.opened_ns >= self.login_timeout_ns:
            self._step(LOGIN_DEADLINE, now_ns,
                       f"no Login Request within {self.login_timeout_ns / SECOND_NS:g} s")
        elif now_ns - self.last_recv_ns >= self.idle_timeout_ns:
            self._step(CLIENT_SILENT, now_ns)
        elif state is LOGGED_IN and now_ns - self.last_send_ns >= self.heartbeat_ns:
            self._step(HEARTBEAT_DUE, now_ns)

    def fail(self, reason: str, now_ns: int) -> None:
        """The application's verdict: end the session with a Debug packet saying ``reason``."""
        self._step(APP_ERROR, now_ns, reason)

    def next_event(self) -> Event | None:
        """The next thing to carry out, or None when everything received has been judged."""
        events = self._events
        while not events and self.state is not ENDED:
            packets = self._packets
            if packets:
                self._on_packet(packets.popleft())
            elif self._frame_error is not None:
                self._step(BAD_FRAME, self.last_recv_ns, str(self._frame_error))
            elif self._eof:
                self._step(TRUNCATED if self._framer.buffered else EOF, self.last_recv_ns)
            else:
                break
        return events.popleft() if events else None

    # ---------------------------------------------------------------- sends

    def send_sequenced(self, entries: Sequence[Any], now_ns: int) -> bytes:
        """Sequenced Data frames for live journal entries (nothing once ended)."""
        if self.state is not LOGGED_IN or not entries:
            return b""
        render = self._render
        self.next_seq += len(entries)
        self.last_send_ns = now_ns
        if len(entries) == 1:
            return frame_sequenced(render(entries[0]))
        return b"".join([frame_sequenced(render(e)) for e in entries])

    # ------------------------------------------------------------- machine

    def _on_packet(self, packet: sb.ClientPacket) -> None:
        kind = type(packet)
        if kind is sb.LoginRequest:
            if self.state is AWAITING_LOGIN:
                self._step(self._judge(packet), self.last_recv_ns, packet=packet)  # type: ignore[arg-type]
            else:
                self._step(LOGIN_AGAIN, self.last_recv_ns)
        else:
            self._step(_INPUT_OF[kind], self.last_recv_ns, packet=packet)

    def _judge(self, req: sb.LoginRequest) -> str:
        if not self._authorize(req.username, req.password):
            return NOT_AUTHORIZED
        if req.requested_session and req.requested_session != self.name:
            return NO_SESSION
        return LOGIN_OK

    def _step(self, what: str, now_ns: int, text: str = "", packet: object = None) -> None:
        """Look ``what`` up in ``TRANSITIONS`` and do what it says."""
        entry = TRANSITIONS.get((self.state, what))
        if entry is None:
            return
        self.state, action, fixed = entry
        events = self._events
        if action is DELIVER:
            events.append(packet)  # type: ignore[arg-type]
        elif action is ACCEPT:
            self._accept(packet, now_ns)  # type: ignore[arg-type]
        elif action is HEARTBEAT:
            self._send(_HEARTBEAT_FRAME, now_ns)
        elif action is REFUSE:
            self._send(sb.encode(sb.LoginRejected(_REJECT_CODE[what])), now_ns)
            events.append(Ended(what, False))
        elif action is FAIL:
            message = _printable(text if fixed is _GIVEN else fixed)
            self._send(sb.encode(sb.Debug(message)), now_ns)
            events.append(Ended(what, True))
        elif action is END:
            events.append(Ended(what, False))

    def _accept(self, req: sb.LoginRequest, now_ns: int) -> None:
        journal = self._open_journal(req.username)
        nxt = journal.next_out_seq
        start = req.requested_sequence_number
        start = nxt if start == 0 else min(max(start, 1), nxt)
        backlog = journal.since(start)
        render = self._render
        frames = [sb.encode(sb.LoginAccepted(self.name, start))]
        frames.extend(frame_sequenced(render(entry)) for entry in backlog)
        self.account = req.username
        self.next_seq = start + len(backlog)
        self._send(b"".join(frames), now_ns)
        self._events.append(LoggedIn(req.username))

    def _send(self, data: bytes, now_ns: int) -> None:
        self.last_send_ns = now_ns
        self._events.append(Send(data))
