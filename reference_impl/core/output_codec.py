"""Binary codec of the engine's output stream (one MoldUDP64 message per output).

Each engine output travels with the routing a gateway needs to release it:
the input seq it answers, its index among that input's outputs and their
count (so a gateway knows when it has them all), the primary's epoch (stale
epochs are dropped), the input's gateway id, request seq, business timestamp,
and two monotonic stage stamps (sequenced, decided). Stage stamps are
transport metadata: they are never part of engine state or of the replay
format. All integers big-endian; text fields ASCII, space-padded.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from .errors import DecodeError
from .messages import (
    Accepted,
    CancelReason,
    Canceled,
    Executed,
    Output,
    RejectReason,
    Rejected,
    Replaced,
    Side,
)

PROTOCOL = "output"

# input_seq, index, count, epoch, gateway_id, request_seq, ts, sequenced_ns, decided_ns, account, type
HEADER = struct.Struct(">QHHIHQQQQ6sc")
_ACCEPTED = struct.Struct(">14s8scIIQ")
_EXECUTED = struct.Struct(">14sIIQc")
_CANCELED = struct.Struct(">14sIB")
_REPLACED = struct.Struct(">14s14sIIQ")
_REJECTED = struct.Struct(">14sB")

_REJECTS = tuple(RejectReason)
_REJECT_INDEX = {r: i for i, r in enumerate(_REJECTS)}
_CANCELS = tuple(CancelReason)
_CANCEL_INDEX = {r: i for i, r in enumerate(_CANCELS)}


class OutputRecord(NamedTuple):
    """One output plus its routing and stage stamps."""

    index: int
    count: int
    epoch: int
    gateway_id: int
    request_seq: int
    ts: int  #: the input's business timestamp (wall-clock ns, from the sequencer)
    sequenced_ns: int  #: monotonic ns the input was sequenced (see docs/protocols-bus.md)
    decided_ns: int  #: monotonic ns the engine decided it
    output: Output


def _pad(text: str, width: int) -> bytes:
    return text.encode("ascii").ljust(width)


def encode(rec: OutputRecord) -> bytes:
    out = rec.output
    kind = type(out)
    if kind is Accepted:
        tag, body = b"A", _ACCEPTED.pack(_pad(out.token, 14), _pad(out.symbol, 8),
                                         out.side.value.encode(), out.qty, out.price, out.order_ref)
    elif kind is Executed:
        tag, body = b"E", _EXECUTED.pack(_pad(out.token, 14), out.qty, out.price,
                                         out.match_id, out.liquidity.encode())
    elif kind is Canceled:
        tag, body = b"C", _CANCELED.pack(_pad(out.token, 14), out.qty, _CANCEL_INDEX[out.reason])
    elif kind is Replaced:
        tag, body = b"U", _REPLACED.pack(_pad(out.token, 14), _pad(out.old_token, 14),
                                         out.qty, out.price, out.order_ref)
    elif kind is Rejected:
        tag, body = b"J", _REJECTED.pack(_pad(out.token, 14), _REJECT_INDEX[out.reason])
    else:
        raise TypeError(f"not an engine output: {out!r}")
    return HEADER.pack(out.seq, rec.index, rec.count, rec.epoch, rec.gateway_id,
                       rec.request_seq, rec.ts, rec.sequenced_ns, rec.decided_ns,
                       _pad(out.account, 6), tag) + body


def _text(raw: bytes, name: str) -> str:
    if not raw.isascii():
        raise DecodeError(PROTOCOL, name, raw, "not ASCII")
    text = raw.decode("ascii").rstrip(" ")
    if not text.isprintable():
        raise DecodeError(PROTOCOL, name, raw, "not printable")
    return text


_BODIES = {b"A": _ACCEPTED, b"E": _EXECUTED, b"C": _CANCELED, b"U": _REPLACED, b"J": _REJECTED}


def decode(data: bytes) -> OutputRecord:
    n = HEADER.size
    if len(data) < n:
        raise DecodeError(PROTOCOL, "length", len(data), f"shorter than the {n}-byte header")
    seq, index, count, epoch, gw, rseq, ts, s_ns, d_ns, account, tag = HEADER.unpack_from(data)
    layout = _BODIES.get(tag)
    if layout is None:
        raise DecodeError(PROTOCOL, "type", tag, "unknown output type")
    if len(data) != n + layout.size:
        raise DecodeError(PROTOCOL, "length", len(data), f"type {tag!r} needs {n + layout.size}")
    if index >= count:
        raise DecodeError(PROTOCOL, "index", index, f"not below count {count}")
    acct = _text(account, "account")
    f = layout.unpack_from(data, n)
    token = _text(f[0], "token")
    if tag == b"A":
        try:
            side = Side(f[2].decode("latin-1"))
        except ValueError:
            raise DecodeError(PROTOCOL, "side", f[2], "not B or S") from None
        out: Output = Accepted(seq, acct, token, _text(f[1], "symbol"), side, f[3], f[4], f[5])
    elif tag == b"E":
        if f[4] not in (b"A", b"R"):
            raise DecodeError(PROTOCOL, "liquidity", f[4], "not A or R")
        out = Executed(seq, acct, token, f[1], f[2], f[3], f[4].decode())
    elif tag == b"C":
        if f[2] >= len(_CANCELS):
            raise DecodeError(PROTOCOL, "reason", f[2], "unknown cancel reason")
        out = Canceled(seq, acct, token, f[1], _CANCELS[f[2]])
    elif tag == b"U":
        out = Replaced(seq, acct, token, _text(f[1], "old_token"), f[2], f[3], f[4])
    else:
        if f[1] >= len(_REJECTS):
            raise DecodeError(PROTOCOL, "reason", f[1], "unknown reject reason")
        out = Rejected(seq, acct, token, _REJECTS[f[1]])
    return OutputRecord(index, count, epoch, gw, rseq, ts, s_ns, d_ns, out)
