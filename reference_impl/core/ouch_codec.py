"""OUCH 4.2 codec: message values <-> the exact bytes of the Nasdaq layouts.

Theory of operation. Every OUCH 4.2 message has a fixed length and a fixed
layout chosen by its first byte, so one table (``_TABLE``) lists, per message,
its type byte and its fields in wire order; the ``struct`` formats, the
encoders and the decoders are all derived from that table, which is why a
field order cannot differ between encode and decode. Integers are unsigned
big-endian (u32 quantities, prices with four implied decimals and times in
force; u64 timestamps in ns since midnight, order reference and match
numbers). Text is printable ASCII, left-justified and space-padded; codes are
one byte from the set the specification defines.

Direction resolves the one clash in the protocol: 'U' is Replace Order (47
bytes) from a client and Order Replaced (80 bytes) from the host, so there
are two decoders, ``decode_inbound`` and ``decode_outbound``. A decoder
checks the length first, then every code, then every text field, and raises
``DecodeError`` naming the first field at fault; it raises nothing else.
``encode`` trusts nothing either and raises ``ValueError`` for a value the
layout cannot carry (too long, not ASCII, undefined code, out of range), so
whatever it returns decodes back to an equal message.

The ``*_to_core`` helpers translate a decoded client message into the
engine's vocabulary; business validation (ticks, limits, token format) is
left to ``rules``, which is why they map rather than judge (see
docs/protocols.md for the market-price, time-in-force and side conventions).
"""

from __future__ import annotations

import struct
from operator import attrgetter

from .errors import DecodeError
from .messages import Cancel, CancelReason, NewOrder, OrdType, RejectReason, Replace, Side, Tif
from .ouch_messages import (
    BBO_WEIGHTS,
    CANCEL_REASONS,
    CAPACITIES,
    CROSS_TYPES,
    CUSTOMER_TYPES,
    DISPLAYS_IN,
    DISPLAYS_OUT,
    EVENT_CODES,
    ISO_ELIGIBILITY,
    LIQUIDITY_FLAGS,
    MARKET_PRICE,
    ORDER_STATES,
    REJECT_REASONS,
    SIDES,
    TIF_IOC,
    TIF_MARKET_HOURS,
    TIF_SYSTEM_HOURS,
    CancelOrder,
    CancelReject,
    EnterOrder,
    InboundMessage,
    OrderAccepted,
    OrderCanceled,
    OrderExecuted,
    OrderRejected,
    OrderReplaced,
    OuchMessage,
    OutboundMessage,
    ReplaceOrder,
    SystemEvent,
)

__all__ = [
    "CANCEL_CODES", "MARKET_PRICE", "MESSAGE_SIZES", "REJECT_CODES", "SIDE_CODES", "TIF_INVALID",
    "CancelOrder", "CancelReject", "EnterOrder", "OrderAccepted", "OrderCanceled",
    "OrderExecuted", "OrderRejected", "OrderReplaced", "ReplaceOrder", "SystemEvent",
    "cancel_to_core", "decode_inbound", "decode_outbound", "encode", "enter_to_core",
    "replace_to_core", "tif_to_core",
]

PROTOCOL = "OUCH"

#: What an OUCH time in force other than 0, 99998 and 99999 maps to: not a
#: ``Tif`` value, so ``rules.check_new_order`` rejects it with ``bad_tif``.
TIF_INVALID = -1

#: Core reject -> OUCH 4.2 Rejected Order reason (closest defined meaning).
#: The spec has no code for a bad time in force, a malformed token, a
#: duplicate token or an unknown order, so those share 'O' (Other); the
#: gateway's backpressure reject has a code of its own ('C', the host is not
#: accepting orders now) so a client can tell "retry later" from a bad order.
REJECT_CODES: dict[RejectReason, bytes] = {
    RejectReason.UNKNOWN_SYMBOL: b"S",  # invalid stock
    RejectReason.BAD_PRICE: b"X",  # invalid price
    RejectReason.BAD_QTY: b"Z",  # shares exceed the configured safety threshold
    RejectReason.MIN_QTY_NOT_IOC: b"N",  # invalid minimum quantity
    RejectReason.BAD_TIF: b"O",  # other
    RejectReason.BAD_TOKEN: b"O",  # other
    RejectReason.DUPLICATE_TOKEN: b"O",  # other (Nasdaq ignores duplicates silently)
    RejectReason.UNKNOWN_ORDER: b"O",  # other
    RejectReason.BACKPRESSURE: b"C",  # the host is closed to new orders (for now)
}

#: Core cancel reason -> OUCH 4.2 Order Canceled reason.
CANCEL_CODES: dict[CancelReason, bytes] = {
    CancelReason.USER: b"U",  # user requested cancel
    CancelReason.IOC: b"I",  # immediate or cancel
}

#: Core side -> OUCH buy/sell indicator (for the outbound messages).
SIDE_CODES: dict[Side, bytes] = {Side.BUY: b"B", Side.SELL: b"S"}

# --------------------------------------------------------------- the layouts

_ALPHA, _CODE, _U32, _U64 = "alpha", "code", "u32", "u64"
_PRINTABLE = bytes(range(0x20, 0x7F))

#: (class, type byte, ((field, kind, width-or-allowed-codes), ...)) in wire order.
_TABLE: tuple[tuple[type, bytes, tuple[tuple[str, str, object], ...]], ...] = (
    (EnterOrder, b"O", (
        ("order_token", _ALPHA, 14), ("side", _CODE, SIDES), ("shares", _U32, None),
        ("stock", _ALPHA, 8), ("price", _U32, None), ("time_in_force", _U32, None),
        ("firm", _ALPHA, 4), ("display", _CODE, DISPLAYS_IN), ("capacity", _CODE, CAPACITIES),
        ("intermarket_sweep", _CODE, ISO_ELIGIBILITY), ("min_qty", _U32, None),
        ("cross_type", _CODE, CROSS_TYPES), ("customer_type", _CODE, CUSTOMER_TYPES),
    )),
    (ReplaceOrder, b"U", (
        ("existing_order_token", _ALPHA, 14), ("replacement_order_token", _ALPHA, 14),
        ("shares", _U32, None), ("price", _U32, None), ("time_in_force", _U32, None),
        ("display", _CODE, DISPLAYS_IN), ("intermarket_sweep", _CODE, ISO_ELIGIBILITY),
        ("min_qty", _U32, None),
    )),
    (CancelOrder, b"X", (("order_token", _ALPHA, 14), ("shares", _U32, None))),
    (SystemEvent, b"S", (("timestamp", _U64, None), ("event_code", _CODE, EVENT_CODES))),
    (OrderAccepted, b"A", (
        ("timestamp", _U64, None), ("order_token", _ALPHA, 14), ("side", _CODE, SIDES),
        ("shares", _U32, None), ("stock", _ALPHA, 8), ("price", _U32, None),
        ("time_in_force", _U32, None), ("firm", _ALPHA, 4), ("display", _CODE, DISPLAYS_OUT),
        ("order_reference_number", _U64, None), ("capacity", _CODE, CAPACITIES),
        ("intermarket_sweep", _CODE, ISO_ELIGIBILITY), ("min_qty", _U32, None),
        ("cross_type", _CODE, CROSS_TYPES), ("order_state", _CODE, ORDER_STATES),
        ("bbo_weight", _CODE, BBO_WEIGHTS),
    )),
    (OrderReplaced, b"U", (
        ("timestamp", _U64, None), ("replacement_order_token", _ALPHA, 14),
        ("side", _CODE, SIDES), ("shares", _U32, None), ("stock", _ALPHA, 8),
        ("price", _U32, None), ("time_in_force", _U32, None), ("firm", _ALPHA, 4),
        ("display", _CODE, DISPLAYS_OUT), ("order_reference_number", _U64, None),
        ("capacity", _CODE, CAPACITIES), ("intermarket_sweep", _CODE, ISO_ELIGIBILITY),
        ("min_qty", _U32, None), ("cross_type", _CODE, CROSS_TYPES),
        ("order_state", _CODE, ORDER_STATES), ("previous_order_token", _ALPHA, 14),
        ("bbo_weight", _CODE, BBO_WEIGHTS),
    )),
    (OrderCanceled, b"C", (
        ("timestamp", _U64, None), ("order_token", _ALPHA, 14),
        ("decrement_shares", _U32, None), ("reason", _CODE, CANCEL_REASONS),
    )),
    (OrderExecuted, b"E", (
        ("timestamp", _U64, None), ("order_token", _ALPHA, 14), ("executed_shares", _U32, None),
        ("execution_price", _U32, None), ("liquidity_flag", _CODE, LIQUIDITY_FLAGS),
        ("match_number", _U64, None),
    )),
    (OrderRejected, b"J", (
        ("timestamp", _U64, None), ("order_token", _ALPHA, 14),
        ("reason", _CODE, REJECT_REASONS),
    )),
    (CancelReject, b"I", (("timestamp", _U64, None), ("order_token", _ALPHA, 14))),
)

_FORMAT = {_U32: "I", _U64: "Q", _CODE: "c"}


class _Layout:
    """One message's compiled layout: its struct, its getters and its checks."""

    __slots__ = ("cls", "name", "type_byte", "struct", "size", "get", "alphas", "codes")

    def __init__(self, cls: type, type_byte: bytes, fields: tuple) -> None:
        self.cls = cls
        self.name = cls.__name__
        self.type_byte = type_byte
        fmt = "".join(f"{width}s" if kind == _ALPHA else _FORMAT[kind] for _, kind, width in fields)
        self.struct = struct.Struct(">c" + fmt)
        self.size = self.struct.size
        names = [name for name, _, _ in fields]
        assert names == list(cls.__dataclass_fields__), f"{self.name}: table != class"
        self.get = attrgetter(*names)
        # (index among the message's fields, field name, width or allowed codes)
        self.alphas = tuple((i, n, w) for i, (n, k, w) in enumerate(fields) if k == _ALPHA)
        self.codes = tuple((i, n, w) for i, (n, k, w) in enumerate(fields) if k == _CODE)


_LAYOUTS = {cls: _Layout(cls, tb, fields) for cls, tb, fields in _TABLE}
_INBOUND = {_LAYOUTS[c].type_byte[0]: _LAYOUTS[c] for c in (EnterOrder, ReplaceOrder, CancelOrder)}
_OUTBOUND = {
    _LAYOUTS[c].type_byte[0]: _LAYOUTS[c]
    for c in (SystemEvent, OrderAccepted, OrderReplaced, OrderCanceled, OrderExecuted,
              OrderRejected, CancelReject)
}
#: Message length by class: what a framer or a test needs without encoding.
MESSAGE_SIZES: dict[type, int] = {cls: layout.size for cls, layout in _LAYOUTS.items()}


# ------------------------------------------------------------------ encoding


def _pad(value: str, width: int, field: str) -> bytes:
    raw = value.encode("ascii")
    if len(raw) > width:
        raise ValueError(f"OUCH field {field}: {value!r} is longer than {width}")
    if raw.translate(None, _PRINTABLE) or raw[-1:] == b" ":
        raise ValueError(f"OUCH field {field}: {value!r} is not printable ASCII "
                         "without trailing spaces (they would be read as padding)")
    return raw.ljust(width)


def encode(msg: OuchMessage) -> bytes:
    """The message's exact wire bytes; ``ValueError`` if a field cannot be carried."""
    layout = _LAYOUTS.get(type(msg))
    if layout is None:
        raise TypeError(f"not an OUCH message: {type(msg).__name__}")
    values = list(layout.get(msg))
    for i, field, width in layout.alphas:
        values[i] = _pad(values[i], width, field)
    for i, field, allowed in layout.codes:
        if values[i] not in allowed:
            raise ValueError(f"OUCH field {field}: {values[i]!r} is not a defined code")
    try:
        return layout.struct.pack(layout.type_byte, *values)
    except struct.error as exc:
        raise ValueError(f"OUCH {layout.name}: {exc}") from None


# ------------------------------------------------------------------ decoding


def _decode(layouts: dict[int, _Layout], data: bytes, direction: str) -> OuchMessage:
    if not data:
        raise DecodeError(PROTOCOL, "length", 0, "empty message")
    layout = layouts.get(data[0])
    if layout is None:
        raise DecodeError(PROTOCOL, "message_type", bytes(data[:1]),
                          f"not an OUCH 4.2 {direction} message type we accept")
    if len(data) != layout.size:
        raise DecodeError(PROTOCOL, "length", len(data),
                          f"{layout.name} is {layout.size} bytes")
    values = list(layout.struct.unpack_from(data))
    del values[0]  # the type byte
    for i, field, allowed in layout.codes:
        if values[i] not in allowed:
            raise DecodeError(PROTOCOL, field, values[i], "not a code OUCH 4.2 defines here")
    for i, field, _ in layout.alphas:
        raw = values[i]
        text = raw.rstrip(b" ")
        if text.translate(None, _PRINTABLE):
            raise DecodeError(PROTOCOL, field, raw, "not printable ASCII")
        values[i] = text.decode("ascii")
    return layout.cls(*values)


def decode_inbound(data: bytes) -> InboundMessage:
    """One whole client message (Enter, Replace or Cancel Order)."""
    return _decode(_INBOUND, data, "inbound")  # type: ignore[return-value]


def decode_outbound(data: bytes) -> OutboundMessage:
    """One whole host message (System Event, Accepted, Replaced, Canceled, ...)."""
    return _decode(_OUTBOUND, data, "outbound")  # type: ignore[return-value]


# --------------------------------------------------------- mapping to the core

#: Short sales are sells to the matching engine: we model no locate or
#: short-sale price test, so 'T' and 'E' match exactly as 'S' does.
_CORE_SIDE = {b"B": Side.BUY, b"S": Side.SELL, b"T": Side.SELL, b"E": Side.SELL}
_CORE_TIF = {TIF_IOC: Tif.IOC, TIF_MARKET_HOURS: Tif.DAY, TIF_SYSTEM_HOURS: Tif.DAY}


def tif_to_core(time_in_force: int) -> int:
    """0 -> IOC; market or system hours -> DAY; a timed order -> ``TIF_INVALID``."""
    return _CORE_TIF.get(time_in_force, TIF_INVALID)


def enter_to_core(msg: EnterOrder) -> NewOrder:
    """The engine's order; ``MARKET_PRICE`` makes a market order with price 0."""
    if msg.price == MARKET_PRICE:
        price, ord_type = 0, OrdType.MARKET
    else:
        price, ord_type = msg.price, OrdType.LIMIT
    return NewOrder(
        token=msg.order_token,
        symbol=msg.stock,
        side=_CORE_SIDE[msg.side],
        qty=msg.shares,
        price=price,
        ord_type=ord_type,
        tif=_CORE_TIF.get(msg.time_in_force, TIF_INVALID),
        min_qty=msg.min_qty,
    )


def replace_to_core(msg: ReplaceOrder) -> Replace:
    """The engine's replace: new token, size and price (TIF, display, min qty unused)."""
    return Replace(
        token=msg.existing_order_token,
        new_token=msg.replacement_order_token,
        qty=msg.shares,
        price=msg.price,
    )


def cancel_to_core(msg: CancelOrder) -> Cancel:
    """The engine's cancel: ``shares`` is the intended remaining size, 0 = all."""
    return Cancel(token=msg.order_token, qty=msg.shares)
