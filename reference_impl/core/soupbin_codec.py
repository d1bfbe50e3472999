"""SoupBinTCP 3.0 codec and a sans-I/O stream framer.

Theory of operation. A SoupBinTCP stream is a sequence of logical packets,
each a big-endian u16 length (counting the type byte and the payload, not
itself), a one-byte packet type and the payload. TCP may split or merge them
anywhere, so ``SoupBinFramer.feed`` buffers bytes and hands back only whole
packets; it never allocates by a declared length, rejects a declared length
above its bound as soon as the two length bytes arrive (and a wrong length
for a fixed-size packet as soon as the type byte arrives), and every loop
iteration either consumes a whole packet or stops, so it always makes
progress.

Packet types are disjoint by direction except Debug ('+'): the server sends
Login Accepted 'A', Login Rejected 'J', Sequenced Data 'S', Server Heartbeat
'H' and End of Session 'Z'; the client sends Login Request 'L', Unsequenced
Data 'U', Client Heartbeat 'R' and Logout Request 'O'. ``from_client`` says
who the peer is (True: a client, False: a server, None: accept either), and
a packet type from the wrong side is a ``DecodeError`` on "packet_type".

Field formats. Username (6) and password (10) are left-justified and padded
on the right with spaces; session ids (10) are right-justified, padded on the
left with spaces (blank = the current session); sequence numbers (20) are
ASCII decimal, padded on the left with spaces. Decoders strip the padding
(both sides of a session, which implementations justify either way) and
insist on printable ASCII and on digits; they raise only ``DecodeError``.
Sequenced and unsequenced payloads are opaque bytes (OUCH messages here).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Union

from .errors import DecodeError

__all__ = [
    "DEFAULT_MAX_PAYLOAD", "LOGIN_REJECT_NOT_AUTHORIZED", "LOGIN_REJECT_SESSION_UNAVAILABLE",
    "ClientHeartbeat", "Debug", "EndOfSession", "LoginAccepted", "LoginRejected",
    "LoginRequest", "LogoutRequest", "SequencedData", "ServerHeartbeat", "SoupBinFramer",
    "UnsequencedData", "decode", "encode",
]

PROTOCOL = "SoupBinTCP"
MAX_LENGTH = 0xFFFF  #: the u16 length field's ceiling (type byte + payload)
#: Default bound on a packet's payload: OUCH 4.2's longest message is 80
#: bytes and a login request 46, so 1 KiB leaves room for debug text while
#: capping what a hostile peer can make a connection buffer.
DEFAULT_MAX_PAYLOAD = 1024
LOGIN_REJECT_NOT_AUTHORIZED = b"A"
LOGIN_REJECT_SESSION_UNAVAILABLE = b"S"
_LOGIN_REJECTS = frozenset((LOGIN_REJECT_NOT_AUTHORIZED, LOGIN_REJECT_SESSION_UNAVAILABLE))
_SEQ_LIMIT = 10**20  # 20 ASCII digits
_PRINTABLE = bytes(range(0x20, 0x7F))
_LEN = struct.Struct(">H")


# ------------------------------------------------------------------- packets


@dataclass(frozen=True, slots=True)
class Debug:
    """'+', either direction: free printable text, ignored by the protocol."""

    text: str


@dataclass(frozen=True, slots=True)
class LoginAccepted:
    """'A': logged in to ``session``; the next Sequenced Data is ``sequence_number``."""

    session: str
    sequence_number: int


@dataclass(frozen=True, slots=True)
class LoginRejected:
    """'J': ``reason`` is b"A" (not authorized) or b"S" (session not available)."""

    reason: bytes


@dataclass(frozen=True, slots=True)
class SequencedData:
    """'S': one server message; its number is implicit (count from Login Accepted)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class ServerHeartbeat:
    """'H': the server is alive and has nothing to send."""


@dataclass(frozen=True, slots=True)
class EndOfSession:
    """'Z': the session is over; the server closes the connection."""


@dataclass(frozen=True, slots=True)
class LoginRequest:
    """'L': credentials plus the session and sequence number to resume from."""

    username: str
    password: str
    requested_session: str = ""  #: blank: the currently active session
    requested_sequence_number: int = 0  #: 0: start with the next new message


@dataclass(frozen=True, slots=True)
class UnsequencedData:
    """'U': one client message (not sequenced; the client resends on doubt)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class ClientHeartbeat:
    """'R': the client is alive."""


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    """'O': the client ends the session."""


ServerPacket = Union[
    Debug, LoginAccepted, LoginRejected, SequencedData, ServerHeartbeat, EndOfSession
]
ClientPacket = Union[Debug, LoginRequest, UnsequencedData, ClientHeartbeat, LogoutRequest]
Packet = Union[ServerPacket, ClientPacket]

_DEBUG, _ACCEPTED, _REJECTED, _SEQUENCED, _SERVER_HB, _END = b"+AJSHZ"
_LOGIN, _UNSEQUENCED, _CLIENT_HB, _LOGOUT = b"LURO"
_SERVER_TYPES = frozenset((_DEBUG, _ACCEPTED, _REJECTED, _SEQUENCED, _SERVER_HB, _END))
_CLIENT_TYPES = frozenset((_DEBUG, _LOGIN, _UNSEQUENCED, _CLIENT_HB, _LOGOUT))
_ALL_TYPES = _SERVER_TYPES | _CLIENT_TYPES
_ALLOWED = {True: _CLIENT_TYPES, False: _SERVER_TYPES, None: _ALL_TYPES}
#: Payload size of every fixed-size packet type (the rest are variable).
_FIXED_PAYLOAD = {
    _ACCEPTED: 30, _REJECTED: 1, _SERVER_HB: 0, _END: 0,
    _LOGIN: 46, _CLIENT_HB: 0, _LOGOUT: 0,
}
_EMPTY = {
    _SERVER_HB: ServerHeartbeat(), _END: EndOfSession(),
    _CLIENT_HB: ClientHeartbeat(), _LOGOUT: LogoutRequest(),
}


# ------------------------------------------------------------------ encoding


def _ascii(value: str, width: int, field: str) -> bytes:
    raw = value.encode("ascii")
    if len(raw) > width or raw.translate(None, _PRINTABLE) or raw[:1] == b" " or raw[-1:] == b" ":
        raise ValueError(f"SoupBinTCP field {field}: {value!r} is not 0-{width} printable "
                         "ASCII characters without edge spaces")
    return raw


def _number(value: int, field: str) -> bytes:
    if type(value) is not int or not 0 <= value < _SEQ_LIMIT:
        raise ValueError(f"SoupBinTCP field {field}: {value!r} is not 0..10**20-1")
    return b"%20d" % value


def _frame(type_byte: bytes, body: bytes) -> bytes:
    length = len(body) + 1
    if length > MAX_LENGTH:
        raise ValueError(f"SoupBinTCP payload of {length - 1} bytes exceeds {MAX_LENGTH - 1}")
    return _LEN.pack(length) + type_byte + body


def encode(packet: Packet) -> bytes:
    """The packet's exact wire bytes, length prefix included."""
    kind = type(packet)
    if kind is SequencedData or kind is UnsequencedData:
        return _frame(b"S" if kind is SequencedData else b"U", bytes(packet.payload))
    if kind is LoginRequest:
        return _frame(b"L", b"".join((
            _ascii(packet.username, 6, "username").ljust(6),
            _ascii(packet.password, 10, "password").ljust(10),
            _ascii(packet.requested_session, 10, "requested_session").rjust(10),
            _number(packet.requested_sequence_number, "requested_sequence_number"),
        )))
    if kind is LoginAccepted:
        return _frame(b"A", _ascii(packet.session, 10, "session").rjust(10)
                      + _number(packet.sequence_number, "sequence_number"))
    if kind is LoginRejected:
        if packet.reason not in _LOGIN_REJECTS:
            raise ValueError(f"SoupBinTCP field reason: {packet.reason!r} is not b'A' or b'S'")
        return _frame(b"J", packet.reason)
    if kind is Debug:
        raw = packet.text.encode("ascii")
        if raw.translate(None, _PRINTABLE):
            raise ValueError(f"SoupBinTCP field text: {packet.text!r} is not printable ASCII")
        return _frame(b"+", raw)
    for type_byte, empty in _EMPTY.items():
        if kind is type(empty):
            return _frame(bytes((type_byte,)), b"")
    raise TypeError(f"not a SoupBinTCP packet: {kind.__name__}")


# ------------------------------------------------------------------ decoding


def _check_head(
    length: int, type_byte: int | None, allowed: frozenset[int], max_payload: int
) -> None:
    """Reject a header as early as its bytes allow: bound, then type, then fixed size."""
    if length == 0:
        raise DecodeError(PROTOCOL, "length", 0, "zero: a packet needs at least its type byte")
    if length - 1 > max_payload:
        raise DecodeError(PROTOCOL, "length", length, f"payload above the {max_payload}-byte bound")
    if type_byte is None:
        return
    if type_byte not in allowed:
        reason = ("a packet type of the other direction" if type_byte in _ALL_TYPES
                  else "not a SoupBinTCP 3.0 packet type")
        raise DecodeError(PROTOCOL, "packet_type", bytes((type_byte,)), reason)
    fixed = _FIXED_PAYLOAD.get(type_byte)
    if fixed is not None and length - 1 != fixed:
        raise DecodeError(PROTOCOL, "length", length,
                          f"packet type {chr(type_byte)!r} has a {fixed}-byte payload")


def _alpha(raw: bytes, field: str, both_sides: bool) -> str:
    text = raw.strip(b" ") if both_sides else raw.rstrip(b" ")
    if text.translate(None, _PRINTABLE):
        raise DecodeError(PROTOCOL, field, raw, "not printable ASCII")
    return text.decode("ascii")


def _digits(raw: bytes, field: str) -> int:
    text = raw.strip(b" ")
    if not text.isdigit():  # bytes.isdigit is ASCII-only; rejects blank, signs, inner spaces
        raise DecodeError(PROTOCOL, field, raw, "not a space-padded ASCII decimal number")
    return int(text)


def _decode_body(type_byte: int, body: bytes) -> Packet:
    """Build the packet once the header checks passed and the payload is whole."""
    if type_byte == _SEQUENCED:
        return SequencedData(body)
    if type_byte == _UNSEQUENCED:
        return UnsequencedData(body)
    empty = _EMPTY.get(type_byte)
    if empty is not None:
        return empty
    if type_byte == _LOGIN:
        return LoginRequest(
            _alpha(body[0:6], "username", False),
            _alpha(body[6:16], "password", False),
            _alpha(body[16:26], "requested_session", True),
            _digits(body[26:46], "requested_sequence_number"),
        )
    if type_byte == _ACCEPTED:
        return LoginAccepted(_alpha(body[0:10], "session", True),
                             _digits(body[10:30], "sequence_number"))
    if type_byte == _REJECTED:
        if body not in _LOGIN_REJECTS:
            raise DecodeError(PROTOCOL, "reason", body, "not A (not authorized) or S (no session)")
        return LoginRejected(body)
    # Debug: free text, no padding to strip
    if body.translate(None, _PRINTABLE):
        raise DecodeError(PROTOCOL, "text", body, "not printable ASCII")
    return Debug(body.decode("ascii"))


def decode(
    frame: bytes, from_client: bool | None = None, max_payload: int = MAX_LENGTH - 1
) -> Packet:
    """One whole packet, length prefix included; ``from_client`` names the sender."""
    size = len(frame)
    if size < 3:
        raise DecodeError(PROTOCOL, "length", size, "a packet is at least 3 bytes")
    length = (frame[0] << 8) | frame[1]
    _check_head(length, frame[2], _ALLOWED[from_client], max_payload)
    if length != size - 2:
        raise DecodeError(PROTOCOL, "length", length, f"declared, but the frame carries {size - 2}")
    return _decode_body(frame[2], bytes(frame[3:]))


# -------------------------------------------------------------------- framer


class SoupBinFramer:
    """Splits a TCP byte stream into packets (sans-I/O: bytes in, packets out).

    After a malformed packet the stream cannot be resynchronised, so the
    framer keeps the error in ``error`` and raises it from every later
    ``feed``. Packets that preceded the bad one are still returned, exactly as
    under any other split of the stream: the call that meets the bad packet
    raises at once if it has nothing to return, else returns what it has and
    the next call (``feed(b"")`` will do) raises.
    """

    __slots__ = ("_buf", "_allowed", "max_payload", "error")

    def __init__(
        self, max_payload: int = DEFAULT_MAX_PAYLOAD, *, from_client: bool | None = None
    ) -> None:
        if not 0 <= max_payload <= MAX_LENGTH - 1:
            raise ValueError(f"max_payload must be 0..{MAX_LENGTH - 1}")
        self._buf = bytearray()
        self._allowed = _ALLOWED[from_client]
        self.max_payload = max_payload
        self.error: DecodeError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held back: the start of a packet not yet complete."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Packet]:
        """Every packet completed by ``data``, in stream order."""
        if self.error is not None:
            raise self.error
        buf = self._buf
        buf += data
        packets: list[Packet] = []
        pos, size, allowed, bound = 0, len(buf), self._allowed, self.max_payload
        try:
            with memoryview(buf) as view:
                while size - pos >= 2:
                    length = (buf[pos] << 8) | buf[pos + 1]
                    _check_head(length, buf[pos + 2] if size - pos >= 3 else None, allowed, bound)
                    end = pos + 2 + length
                    if end > size:
                        break
                    packets.append(_decode_body(buf[pos + 2], bytes(view[pos + 3:end])))
                    pos = end
        except DecodeError as exc:
            self.error = exc
            buf.clear()
            if not packets:
                raise
            return packets
        del buf[:pos]
        return packets
