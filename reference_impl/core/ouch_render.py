"""The OUCH 4.2 rendering of the gateway's outbound journal entries.

``ouch_codec`` parses what a client sends into the engine's vocabulary; this
module is the other half: an engine output, as journalled for an account
(``gateway_orders.Outbound``), becomes the OUCH 4.2 host message a client
reads. It is a pure function of the entry, so a replay renders the same
bytes as the live stream did.

Conventions (docs/gateway.md, "Outbound rendering"): timestamps are ns since
UTC midnight of the sequencer's stamp; a market order's Accepted price is
``MARKET_PRICE``; time in force is echoed as 0 for IOC and 99999 (system
hours) for DAY; order state is ``D`` for IOC and ``L`` otherwise; firm blank,
display ``Y``, capacity ``A``. An engine reject of a cancel this gateway sent
becomes a Cancel Reject; every other reject an Order Rejected.
"""

from __future__ import annotations

from . import ouch_codec
from .gateway_orders import CANCEL, Outbound
from .messages import Accepted, Canceled, Executed, Rejected, Replaced, Tif
from .ouch_messages import (
    MARKET_PRICE,
    TIF_IOC,
    TIF_SYSTEM_HOURS,
    CancelReject,
    OrderAccepted,
    OrderCanceled,
    OrderExecuted,
    OrderRejected,
    OrderReplaced,
)

NS_PER_DAY = 86_400 * 10**9
#: an entry of an order this gateway never saw has no side: rendered as a buy
_SIDE = {**ouch_codec.SIDE_CODES, None: b"B"}


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
