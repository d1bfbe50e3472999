"""OUCH 4.2 messages as values: one frozen dataclass per message, in wire order.

Field order in every class is the order of the fields on the wire, so a
class doubles as the layout's documentation and ``ouch_codec`` derives its
``struct`` formats from the same table. Conventions, chosen so that a decoded
message compares equal to the one that was encoded:

* text fields (order tokens, stock, firm) are ``str`` without their padding;
  on the wire they are left-justified and padded on the right with spaces;
* one-character code fields (side, display, capacity, reasons, ...) are
  1-byte ``bytes`` exactly as on the wire, so validating one is a set lookup
  and the reason tables (``REJECT_CODES``, ``CANCEL_CODES``) hold the same
  objects the messages carry;
* prices are ``int`` with four implied decimals (1 = $0.0001), timestamps
  ``int`` nanoseconds since midnight, quantities plain ``int``.

The value sets below are the codes the OUCH 4.2 specification defines (the
Wireshark OUCH 4.x dissector's tables agree); a decoder rejects anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

#: Price meaning "market" (OUCH 4.2: the market/cross special price). Our door
#: treats it as a market order; see ``ouch_codec.enter_to_core``.
MARKET_PRICE = 0x7FFF_FFFF
#: OUCH time-in-force values with a special meaning; others are seconds to live.
TIF_IOC = 0
TIF_MARKET_HOURS = 99_998
TIF_SYSTEM_HOURS = 99_999

SIDES = frozenset((b"B", b"S", b"T", b"E"))  # buy, sell, sell short, sell short exempt
#: Display codes a client may enter; 'Z' (changed to non-displayed) is host-only.
DISPLAYS_IN = frozenset((b"A", b"Y", b"N", b"P", b"I", b"M", b"W", b"L", b"O", b"T", b"Q"))
DISPLAYS_OUT = DISPLAYS_IN | {b"Z"}
CAPACITIES = frozenset((b"A", b"P", b"R", b"O"))  # agency, principal, riskless, other
ISO_ELIGIBILITY = frozenset((b"Y", b"N"))
CROSS_TYPES = frozenset((b"N", b"O", b"C", b"H", b"S", b"R"))
CUSTOMER_TYPES = frozenset((b"R", b"N", b" "))  # retail, not retail, port default
ORDER_STATES = frozenset((b"L", b"D"))  # live, dead
BBO_WEIGHTS = frozenset((b"0", b"1", b"2", b"3", b" ", b"S", b"N"))
EVENT_CODES = frozenset((b"S", b"E"))  # start of day, end of day
CANCEL_REASONS = frozenset(
    (b"U", b"I", b"T", b"S", b"D", b"Q", b"Z", b"C", b"E", b"H", b"K", b"X")
)
REJECT_REASONS = frozenset(
    (b"T", b"H", b"Z", b"S", b"D", b"C", b"L", b"M", b"R", b"X", b"N", b"O", b"W")
    + tuple(bytes((c,)) for c in b"abcdefghijklmn")
)
LIQUIDITY_FLAGS = frozenset(
    bytes((c,)) for c in b"045678ACHJKLMNORW" b"abcdefghjkmrtxy"
)

# ------------------------------------------------------------------ inbound


@dataclass(frozen=True, slots=True)
class EnterOrder:
    """'O', 49 bytes: a new order (customer type is the 4.1+ trailing field)."""

    order_token: str
    side: bytes
    shares: int
    stock: str
    price: int
    time_in_force: int = TIF_MARKET_HOURS
    firm: str = ""
    display: bytes = b"Y"
    capacity: bytes = b"A"
    intermarket_sweep: bytes = b"N"
    min_qty: int = 0
    cross_type: bytes = b"N"
    customer_type: bytes = b" "


@dataclass(frozen=True, slots=True)
class ReplaceOrder:
    """'U' from the client, 47 bytes: cancel-replace under a new token."""

    existing_order_token: str
    replacement_order_token: str
    shares: int
    price: int
    time_in_force: int = TIF_MARKET_HOURS
    display: bytes = b"Y"
    intermarket_sweep: bytes = b"N"
    min_qty: int = 0


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """'X', 19 bytes: reduce an order to ``shares`` (0 cancels it)."""

    order_token: str
    shares: int


# ----------------------------------------------------------------- outbound


@dataclass(frozen=True, slots=True)
class SystemEvent:
    """'S', 10 bytes: start or end of day."""

    timestamp: int
    event_code: bytes


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    """'A', 66 bytes (4.2 adds the BBO weight indicator)."""

    timestamp: int
    order_token: str
    side: bytes
    shares: int
    stock: str
    price: int
    time_in_force: int
    firm: str
    display: bytes
    order_reference_number: int
    capacity: bytes
    intermarket_sweep: bytes
    min_qty: int
    cross_type: bytes
    order_state: bytes
    bbo_weight: bytes = b" "


@dataclass(frozen=True, slots=True)
class OrderReplaced:
    """'U' from the host, 80 bytes: the replacement is live under its new token."""

    timestamp: int
    replacement_order_token: str
    side: bytes
    shares: int
    stock: str
    price: int
    time_in_force: int
    firm: str
    display: bytes
    order_reference_number: int
    capacity: bytes
    intermarket_sweep: bytes
    min_qty: int
    cross_type: bytes
    order_state: bytes
    previous_order_token: str
    bbo_weight: bytes = b" "


@dataclass(frozen=True, slots=True)
class OrderCanceled:
    """'C', 28 bytes: ``decrement_shares`` left the order (incremental, not cumulative)."""

    timestamp: int
    order_token: str
    decrement_shares: int
    reason: bytes


@dataclass(frozen=True, slots=True)
class OrderExecuted:
    """'E', 40 bytes: one fill."""

    timestamp: int
    order_token: str
    executed_shares: int
    execution_price: int
    liquidity_flag: bytes
    match_number: int


@dataclass(frozen=True, slots=True)
class OrderRejected:
    """'J', 24 bytes: an Enter (or Replace, under the new token) was refused."""

    timestamp: int
    order_token: str
    reason: bytes


@dataclass(frozen=True, slots=True)
class CancelReject:
    """'I', 23 bytes: a cancel for this token could not be applied."""

    timestamp: int
    order_token: str


InboundMessage = Union[EnterOrder, ReplaceOrder, CancelOrder]
OutboundMessage = Union[
    SystemEvent, OrderAccepted, OrderReplaced, OrderCanceled, OrderExecuted,
    OrderRejected, CancelReject,
]
OuchMessage = Union[InboundMessage, OutboundMessage]
