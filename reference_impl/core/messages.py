"""Values that cross the core's boundary: sequenced inputs and engine outputs.

Everything is integers and short ASCII strings (ticks of 1/10,000, lots,
nanoseconds); no floats. Inputs are what the sequencer stamps and the engine
applies; outputs are what the engine decides. Both are immutable so that a
replica, a replay and a checker can hold the same object without copying.

Outputs are ``NamedTuple`` rather than dataclasses: the engine allocates one
or more per message on its hot path and tuple construction is the cheapest
immutable record CPython has.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import NamedTuple, Union


class Side(str, Enum):
    BUY = "B"
    SELL = "S"


class OrdType(str, Enum):
    LIMIT = "limit"
    MARKET = "market"


class Tif(IntEnum):
    """Time in force as the engine sees it. FOK is IOC with ``min_qty = qty``."""

    DAY = 0
    IOC = 1


class RejectReason(str, Enum):
    """Deterministic business rejects; the value is the replay-format code."""

    UNKNOWN_SYMBOL = "unknown_symbol"
    BAD_PRICE = "bad_price"
    BAD_QTY = "bad_qty"
    MIN_QTY_NOT_IOC = "min_qty_not_ioc"
    BAD_TIF = "bad_tif"
    BAD_TOKEN = "bad_token"
    DUPLICATE_TOKEN = "duplicate_token"
    UNKNOWN_ORDER = "unknown_order"
    #: Gateway-only: the core's in-flight depth is past its limit (never sequenced).
    BACKPRESSURE = "backpressure"


class CancelReason(str, Enum):
    USER = "user"  #: a client's cancel (or a reduce)
    IOC = "ioc"  #: unfilled remainder of an IOC, FOK or market order


# Limits shared by every door and the engine (OUCH field widths allow more).
MAX_QTY = 1_000_000
MIN_PRICE = 1
MAX_PRICE = 1_999_999_900
DEFAULT_TICK = 100
TOKEN_LEN = 14
ACCOUNT_LEN = 6
SYMBOL_LEN = 8
U32_MAX = 0xFFFF_FFFF


# ---------------------------------------------------------------- input bodies


@dataclass(frozen=True, slots=True)
class NewOrder:
    token: str
    symbol: str
    side: Side
    qty: int
    price: int  #: 0 for a market order
    ord_type: OrdType = OrdType.LIMIT
    tif: int = Tif.DAY  #: a ``Tif`` value; other ints are rejected with ``bad_tif``
    min_qty: int = 0  #: 0 means none


@dataclass(frozen=True, slots=True)
class Cancel:
    token: str
    qty: int  #: OUCH "new intended order size"; 0 cancels all


@dataclass(frozen=True, slots=True)
class Replace:
    token: str
    new_token: str
    qty: int
    price: int


@dataclass(frozen=True, slots=True)
class LeaderChange:
    epoch: int
    engine_id: int


@dataclass(frozen=True, slots=True)
class SnapshotRequest:
    snapshot_id: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    pass


Body = Union[NewOrder, Cancel, Replace, LeaderChange, SnapshotRequest, Heartbeat]
CLIENT_BODIES = (NewOrder, Cancel, Replace)


@dataclass(frozen=True, slots=True)
class Sequenced:
    """One message of the input stream: the sequencer's header plus a body.

    ``ts`` is wall-clock ns stamped by the sequencer and is the engine's only
    clock. Control messages carry ``gateway_id = 0`` and an empty account.
    """

    seq: int
    ts: int
    gateway_id: int
    incarnation: int
    request_seq: int
    account: str
    body: Body


# --------------------------------------------------------------------- outputs


class Accepted(NamedTuple):
    seq: int
    account: str
    token: str
    symbol: str
    side: Side
    qty: int
    price: int  #: 0 for a market order
    order_ref: int


class Executed(NamedTuple):
    seq: int
    account: str
    token: str
    qty: int
    price: int
    match_id: int
    liquidity: str  #: "A" resting (added liquidity), "R" aggressor (removed)


class Canceled(NamedTuple):
    seq: int
    account: str
    token: str
    qty: int  #: the decrement
    reason: CancelReason


class Replaced(NamedTuple):
    seq: int
    account: str
    token: str  #: the new token
    old_token: str
    qty: int
    price: int
    order_ref: int


class Rejected(NamedTuple):
    seq: int
    account: str
    token: str  #: for a replace, the new token (as OUCH reports it)
    reason: RejectReason


Output = Union[Accepted, Executed, Canceled, Replaced, Rejected]
