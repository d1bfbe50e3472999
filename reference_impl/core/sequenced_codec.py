"""Binary codec of the input stream's ``Sequenced`` message (one per MoldUDP64 block).

Layout (big-endian; see docs/protocols-bus.md): a 37-byte header
``seq u64 | ts u64 | gateway_id u16 | incarnation u32 | request_seq u64 |
account 6 | body_type 1`` and a fixed body per type. Text is printable ASCII,
right-padded with spaces.

The codec checks structure, not business rules: a zero quantity, an off-tick
price or an unknown time in force must cross the bus intact, because the
engine rejects them deterministically and every replica must see the same
bytes to reach the same reject. Hence ``tif`` is a signed byte (so
``TIF_INVALID = -1`` survives). What the layout cannot hold (a string longer
than its field, a number outside its width, a trailing space that padding
would swallow) is a ``ValueError`` at encode time; bytes that are not a valid
frame are a ``DecodeError`` naming the field.

One ``struct.Struct`` per body type covers header and body, so encode and
decode are a single pack/unpack plus text checks: this is the per-message path
of the sequencer, every engine and the logger. ``poisoned_block`` is the one
check the engines and the logger make of a whole MoldUDP64 packet of these.
"""

from __future__ import annotations

import struct

from .errors import DecodeError
from .messages import (
    Body,
    Cancel,
    Heartbeat,
    LeaderChange,
    NewOrder,
    OrdType,
    Replace,
    Sequenced,
    Side,
    SnapshotRequest,
    Tif,
)

PROTOCOL = "sequenced"

_HEAD = ">QQHIQ6sc"
HEADER = struct.Struct(_HEAD)
HEADER_SIZE = HEADER.size  # 37
_TYPE_OFFSET = HEADER_SIZE - 1

_NEW_ORDER = struct.Struct(_HEAD + "14s8scIIcbI")
_CANCEL = struct.Struct(_HEAD + "14sI")
_REPLACE = struct.Struct(_HEAD + "14s14sII")
_LEADER = struct.Struct(_HEAD + "IH")
_SNAPSHOT = struct.Struct(_HEAD + "Q")
_HEARTBEAT = HEADER

LAYOUTS: dict[bytes, struct.Struct] = {
    b"O": _NEW_ORDER, b"X": _CANCEL, b"U": _REPLACE,
    b"L": _LEADER, b"P": _SNAPSHOT, b"H": _HEARTBEAT,
}

_SIDE_OUT = {Side.BUY: b"B", Side.SELL: b"S"}
_SIDE_IN = {b"B": Side.BUY, b"S": Side.SELL}
_ORD_OUT = {OrdType.LIMIT: b"L", OrdType.MARKET: b"M"}
_ORD_IN = {b"L": OrdType.LIMIT, b"M": OrdType.MARKET}
_TIF_IN = {int(t): t for t in Tif}
_HEARTBEAT_BODY = Heartbeat()  # frozen and field-less: one instance serves every decode

# (field, lowest, highest) for diagnosing a failed pack: which number does not fit.
_U8, _U16, _U32, _U64 = 0xFF, 0xFFFF, 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF
_HEADER_RANGES = (("seq", 0, _U64), ("ts", 0, _U64), ("gateway_id", 0, _U16),
                  ("incarnation", 0, _U32), ("request_seq", 0, _U64))
_BODY_RANGES: dict[type, tuple[tuple[str, int, int], ...]] = {
    NewOrder: (("qty", 0, _U32), ("price", 0, _U32), ("tif", -128, 127), ("min_qty", 0, _U32)),
    Cancel: (("qty", 0, _U32),),
    Replace: (("qty", 0, _U32), ("price", 0, _U32)),
    LeaderChange: (("epoch", 0, _U32), ("engine_id", 0, _U16)),
    SnapshotRequest: (("snapshot_id", 0, _U64),),
    Heartbeat: (),
}


# Accounts and symbols repeat on nearly every message: remember their checked
# forms (bounded; cleared when full). Tokens are unique, so they are not cached.
_CACHE_MAX = 4096
_ACCOUNT_OUT: dict[str, bytes] = {}
_SYMBOL_OUT: dict[str, bytes] = {}
_ACCOUNT_IN: dict[bytes, str] = {}
_SYMBOL_IN: dict[bytes, str] = {}


def _text(value: str, width: int, field: str) -> bytes:
    """``value`` as exactly ``width`` space-padded ASCII bytes, or ValueError."""
    if len(value) > width:
        raise ValueError(f"{field}: {value!r} is longer than its {width}-byte field")
    if not (value.isascii() and value.isprintable()):
        raise ValueError(f"{field}: {value!r} is not printable ASCII")
    if value and value[-1] == " ":
        raise ValueError(f"{field}: {value!r} ends in a space, which the padding would drop")
    return value.ljust(width).encode("ascii")


def _cached_text(value: str, width: int, field: str, cache: dict[str, bytes]) -> bytes:
    raw = _text(value, width, field)
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[value] = raw
    return raw


def _fail_pack(msg: Sequenced) -> ValueError:
    """Name the number that did not fit its field (struct.error does not say which)."""
    checks = [(name, getattr(msg, name), lo, hi) for name, lo, hi in _HEADER_RANGES]
    ranges = _BODY_RANGES.get(type(msg.body), ())
    checks += [(name, getattr(msg.body, name), lo, hi) for name, lo, hi in ranges]
    for name, value, lo, hi in checks:
        if not isinstance(value, int) or not lo <= value <= hi:
            return ValueError(f"{name}: {value!r} does not fit {lo}..{hi}")
    return ValueError(f"cannot encode {msg!r}")


def encode(msg: Sequenced) -> bytes:
    """The wire form of ``msg``; ValueError if a field cannot be represented."""
    body = msg.body
    kind = type(body)
    account = _ACCOUNT_OUT.get(msg.account) or _cached_text(msg.account, 6, "account",
                                                            _ACCOUNT_OUT)
    head = (msg.seq, msg.ts, msg.gateway_id, msg.incarnation, msg.request_seq, account)
    try:
        if kind is NewOrder:
            side = _SIDE_OUT.get(body.side)
            if side is None:
                raise ValueError(f"side: {body.side!r} is not a Side")
            ord_type = _ORD_OUT.get(body.ord_type)
            if ord_type is None:
                raise ValueError(f"ord_type: {body.ord_type!r} is not an OrdType")
            return _NEW_ORDER.pack(*head, b"O", _text(body.token, 14, "token"),
                                   _SYMBOL_OUT.get(body.symbol)
                                   or _cached_text(body.symbol, 8, "symbol", _SYMBOL_OUT), side, body.qty,
                                   body.price, ord_type, body.tif, body.min_qty)
        if kind is Cancel:
            return _CANCEL.pack(*head, b"X", _text(body.token, 14, "token"), body.qty)
        if kind is Replace:
            return _REPLACE.pack(*head, b"U", _text(body.token, 14, "token"),
                                 _text(body.new_token, 14, "new_token"), body.qty, body.price)
        if kind is LeaderChange:
            return _LEADER.pack(*head, b"L", body.epoch, body.engine_id)
        if kind is SnapshotRequest:
            return _SNAPSHOT.pack(*head, b"P", body.snapshot_id)
        if kind is Heartbeat:
            return _HEARTBEAT.pack(*head, b"H")
    except struct.error:
        raise _fail_pack(msg) from None
    raise ValueError(f"body: {body!r} is not an input body")


def _read_text(raw: bytes, field: str) -> str:
    if not raw.isascii():
        raise DecodeError(PROTOCOL, field, raw, "not ASCII")
    text = raw.decode("ascii")
    if not text.isprintable():
        raise DecodeError(PROTOCOL, field, raw, "not printable ASCII")
    return text.rstrip(" ")


def _cached_read(raw: bytes, field: str, cache: dict[bytes, str]) -> str:
    text = _read_text(raw, field)
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[raw] = text
    return text


def decode(data: bytes) -> Sequenced:
    """Parse one message; ``DecodeError`` names the first structurally bad field."""
    if type(data) is not bytes:
        data = bytes(data)
    size = len(data)
    if size < HEADER_SIZE:
        raise DecodeError(PROTOCOL, "length", size, f"shorter than the {HEADER_SIZE}-byte header")
    tag = data[_TYPE_OFFSET:HEADER_SIZE]
    layout = LAYOUTS.get(tag)
    if layout is None:
        raise DecodeError(PROTOCOL, "body_type", tag, "unknown body type")
    if size != layout.size:
        raise DecodeError(PROTOCOL, "length", size, f"body type {tag!r} needs {layout.size} bytes")
    f = layout.unpack(data)
    account = _ACCOUNT_IN.get(f[5])
    if account is None:
        account = _cached_read(f[5], "account", _ACCOUNT_IN)
    body: Body
    if tag == b"O":
        side = _SIDE_IN.get(f[9])
        if side is None:
            raise DecodeError(PROTOCOL, "side", f[9], "not B or S")
        ord_type = _ORD_IN.get(f[12])
        if ord_type is None:
            raise DecodeError(PROTOCOL, "ord_type", f[12], "not L or M")
        symbol = _SYMBOL_IN.get(f[8])
        if symbol is None:
            symbol = _cached_read(f[8], "symbol", _SYMBOL_IN)
        body = NewOrder(_read_text(f[7], "token"), symbol, side,
                        f[10], f[11], ord_type, _TIF_IN.get(f[13], f[13]), f[14])
    elif tag == b"X":
        body = Cancel(_read_text(f[7], "token"), f[8])
    elif tag == b"U":
        body = Replace(_read_text(f[7], "token"), _read_text(f[8], "new_token"), f[9], f[10])
    elif tag == b"L":
        body = LeaderChange(f[7], f[8])
    elif tag == b"P":
        body = SnapshotRequest(f[7])
    else:
        body = _HEARTBEAT_BODY
    return Sequenced(f[0], f[1], f[2], f[3], f[4], account, body)


def poisoned_block(first_seq: int, messages) -> str | None:
    """Why a packet's blocks are not the stream's ``first_seq..``, or None if they are.

    Each block must decode and carry ``first_seq + i`` in its header. A
    receiver accepts the first copy of a seq and drops every later one as a
    duplicate, so a damaged copy let through would be the only one ever
    applied (or logged): the engines and the logger drop a packet with any bad
    block whole, before their receiver sees it, and its seqs stay a gap that is
    re-requested until a good copy arrives.
    """
    parse = decode
    for i, block in enumerate(messages):
        try:
            carried = parse(block).seq
        except DecodeError as exc:
            return f"block {i} (seq {first_seq + i}) does not decode: {exc}"
        if carried != first_seq + i:
            return f"block {i} (seq {first_seq + i}) carries seq {carried} in its header"
    return None
