"""MoldUDP64 framing: downstream packets, re-request packets, and batching.

Layouts follow Nasdaq's MoldUDP64 1.00 specification, big-endian:

- downstream packet: session (10 bytes, alphanumeric) | sequence number (u64,
  the seq of the first message; for a heartbeat or end of session, the next
  seq the stream will use) | message count (u16) | ``count`` message blocks,
  each ``length u16 | data``. Count 0 is a heartbeat, 0xFFFF end of session;
  both carry no blocks.
- request packet: session (10) | sequence number (u64) | requested count (u16).

Decoding is strict because a datagram is a peer's claim, not a fact: every
length is checked against what the datagram holds, and bytes left over after
the last block are an error (they would mean sender and receiver disagree on
the count). A session is 1-10 letters or digits, right-padded with spaces to
10 bytes (Nasdaq's convention for alphanumeric fields).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import DecodeError

PROTOCOL = "moldudp64"

HEADER = struct.Struct(">10sQH")  #: downstream header and request packet share this layout
HEADER_SIZE = HEADER.size  # 20
BLOCK_OVERHEAD = 2  #: the u16 length in front of each message
HEARTBEAT_COUNT = 0
END_OF_SESSION = 0xFFFF
MAX_COUNT = 0xFFFE  #: most messages one data packet can carry (0xFFFF means end of session)
MAX_MESSAGE_LEN = 0xFFFF
MAX_REQUEST_COUNT = 0xFFFF
SESSION_LEN = 10
U64_MAX = 0xFFFF_FFFF_FFFF_FFFF

_U16 = struct.Struct(">H")
_SESSION_RE = re.compile(rb"[A-Za-z0-9]+ *")


@dataclass(frozen=True, slots=True)
class MoldPacket:
    """One downstream packet.

    ``seq`` is the first message's sequence number; for a heartbeat or end of
    session (no messages) it is the next sequence number the stream will use.
    """

    session: bytes
    seq: int
    messages: tuple[bytes, ...] = ()
    end_of_session: bool = False

    @property
    def is_heartbeat(self) -> bool:
        return not self.messages and not self.end_of_session

    @property
    def next_seq(self) -> int:
        """The seq after this packet's last message (what a receiver expects next)."""
        return self.seq + len(self.messages)


@dataclass(frozen=True, slots=True)
class MoldRequest:
    """A re-request for ``count`` messages starting at ``seq``."""

    session: bytes
    seq: int
    count: int


def valid_session(session: object) -> bool:
    """10 bytes: 1-10 ASCII letters or digits, then space padding."""
    return (
        type(session) is bytes
        and len(session) == SESSION_LEN
        and _SESSION_RE.fullmatch(session) is not None
    )


def _check_session(session: bytes) -> None:
    if not valid_session(session):
        raise ValueError(f"session must be 10 bytes of A-Z a-z 0-9 (space padded), got {session!r}")


def _check_seq(seq: int, count: int) -> None:
    if type(seq) is not int or seq < 0 or seq + count > U64_MAX:
        raise ValueError(f"sequence number {seq!r} with {count} messages does not fit a u64")


def encode_packet(session: bytes, seq: int, messages: Sequence[bytes]) -> bytes:
    """A data packet (an empty ``messages`` is a heartbeat: count 0 means exactly that)."""
    _check_session(session)
    n = len(messages)
    if n > MAX_COUNT:
        raise ValueError(f"{n} messages: a packet carries at most {MAX_COUNT}")
    _check_seq(seq, n)
    if n and seq == 0:
        raise ValueError("sequence numbers start at 1")
    parts = [HEADER.pack(session, seq, n)]
    append = parts.append
    pack_len = _U16.pack
    for message in messages:
        size = len(message)
        if size > MAX_MESSAGE_LEN:
            raise ValueError(f"message of {size} bytes: a block holds at most {MAX_MESSAGE_LEN}")
        append(pack_len(size))
        append(message)
    return b"".join(parts)


def encode_heartbeat(session: bytes, next_seq: int) -> bytes:
    _check_session(session)
    _check_seq(next_seq, 0)
    return HEADER.pack(session, next_seq, HEARTBEAT_COUNT)


def encode_end_of_session(session: bytes, next_seq: int) -> bytes:
    _check_session(session)
    _check_seq(next_seq, 0)
    return HEADER.pack(session, next_seq, END_OF_SESSION)


def _header(data: bytes, what: str) -> tuple[bytes, int, int]:
    if len(data) < HEADER_SIZE:
        raise DecodeError(PROTOCOL, "header", data, f"{what} of {len(data)} bytes, needs {HEADER_SIZE}")
    session, seq, count = HEADER.unpack_from(data)
    if _SESSION_RE.fullmatch(session) is None:
        raise DecodeError(PROTOCOL, "session", session, "not 1-10 letters or digits, space padded")
    return session, seq, count


def decode_packet(data: bytes) -> MoldPacket:
    """Parse one downstream datagram; raises ``DecodeError`` naming the bad field."""
    if type(data) is not bytes:
        data = bytes(data)
    session, seq, count = _header(data, "packet")
    size = len(data)
    if count == HEARTBEAT_COUNT or count == END_OF_SESSION:
        if size != HEADER_SIZE:
            raise DecodeError(PROTOCOL, "message_count", count,
                              f"heartbeat/end of session followed by {size - HEADER_SIZE} bytes")
        return MoldPacket(session, seq, (), count == END_OF_SESSION)
    if seq == 0:
        raise DecodeError(PROTOCOL, "sequence", seq, "data packet with sequence number 0")
    if seq + count > U64_MAX:
        raise DecodeError(PROTOCOL, "sequence", seq, f"next seq after {count} messages overflows a u64")
    messages = []
    append = messages.append
    off = HEADER_SIZE
    last = size - BLOCK_OVERHEAD  # the last offset where a block length still fits
    for i in range(count):
        if off > last:
            if off == size:
                raise DecodeError(PROTOCOL, "message_count", count,
                                  f"datagram holds only {i} message blocks")
            raise DecodeError(PROTOCOL, f"message_length[{i}]", data[off:],
                              "datagram ends inside the block length")
        start = off + BLOCK_OVERHEAD
        off = start + (data[off] << 8 | data[off + 1])  # big-endian u16, without a struct call
        if off > size:
            raise DecodeError(PROTOCOL, f"message_length[{i}]", off - start,
                              f"block runs past the datagram end ({size - start} bytes left)")
        append(data[start:off])
    if off != size:
        raise DecodeError(PROTOCOL, "message_count", count,
                          f"{size - off} bytes left after {count} message blocks")
    return MoldPacket(session, seq, tuple(messages))


def encode_request(session: bytes, seq: int, count: int) -> bytes:
    _check_session(session)
    if type(count) is not int or not 1 <= count <= MAX_REQUEST_COUNT:
        raise ValueError(f"requested count {count!r} not in 1..{MAX_REQUEST_COUNT}")
    _check_seq(seq, 0)
    if seq == 0:
        raise ValueError("sequence numbers start at 1")
    return HEADER.pack(session, seq, count)


def decode_request(data: bytes) -> MoldRequest:
    if type(data) is not bytes:
        data = bytes(data)
    session, seq, count = _header(data, "request")
    if len(data) != HEADER_SIZE:
        raise DecodeError(PROTOCOL, "length", len(data), f"a request is exactly {HEADER_SIZE} bytes")
    if seq == 0:
        raise DecodeError(PROTOCOL, "sequence", seq, "sequence numbers start at 1")
    if count == 0:
        raise DecodeError(PROTOCOL, "requested_count", count, "requests no messages")
    return MoldRequest(session, seq, count)


def plan_packets(messages: Sequence[bytes], max_payload: int = 1400) -> list[list[bytes]]:
    """Split ``messages`` greedily, in order, into packets of at most ``max_payload`` bytes.

    ``max_payload`` bounds the whole MoldUDP64 datagram (header + blocks); 1400
    keeps a packet inside one Ethernet frame. A message that cannot fit even
    alone is the caller's bug, not something to fragment: ``ValueError``.
    """
    if max_payload < HEADER_SIZE + BLOCK_OVERHEAD:
        raise ValueError(f"max_payload {max_payload} leaves no room for a message block")
    room = max_payload - HEADER_SIZE
    packets: list[list[bytes]] = []
    current: list[bytes] = []
    used = 0
    for message in messages:
        need = len(message) + BLOCK_OVERHEAD
        if need > room or len(message) > MAX_MESSAGE_LEN:
            raise ValueError(f"message of {len(message)} bytes does not fit a "
                             f"{max_payload}-byte packet")
        if used + need > room or len(current) == MAX_COUNT:
            packets.append(current)
            current = []
            used = 0
        current.append(message)
        used += need
    if current:
        packets.append(current)
    return packets
