"""The OUCH 4.2 rendering of journal entries: decoded back, field by field."""

from __future__ import annotations

from reference_impl.core import ouch_codec
from reference_impl.core.gateway_orders import CANCEL, NEW, REPLACE, Outbound
from reference_impl.core.messages import (
    Accepted,
    Canceled,
    CancelReason,
    Executed,
    Rejected,
    RejectReason,
    Replaced,
    Side,
    Tif,
)
from reference_impl.core.ouch_messages import (
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
from reference_impl.core.ouch_render import NS_PER_DAY, render

TS = 3 * NS_PER_DAY + 1234  #: the sequencer's wall-clock stamp, three days after the epoch


def entry(output, kind=NEW, side=None, symbol="", tif=-1, min_qty=0) -> Outbound:
    return Outbound(1, output, TS, kind, side, symbol, tif, min_qty)


def test_an_ioc_market_order_is_accepted_at_the_market_price_and_dead_on_arrival() -> None:
    out = Accepted(5, "A", "t1", "ACME", Side.SELL, 10, 0, 9)
    msg = ouch_codec.decode_outbound(render(entry(out, tif=Tif.IOC, min_qty=10)))
    assert msg == OrderAccepted(1234, "t1", b"S", 10, "ACME", MARKET_PRICE, TIF_IOC, "", b"Y", 9,
                                b"A", b"N", 10, b"N", b"D")


def test_a_day_order_fill_cancel_and_replace() -> None:
    accepted = ouch_codec.decode_outbound(render(entry(
        Accepted(5, "A", "t1", "ACME", Side.BUY, 10, 10_000, 9), tif=Tif.DAY)))
    assert (accepted.time_in_force, accepted.order_state) == (TIF_SYSTEM_HOURS, b"L")
    assert ouch_codec.decode_outbound(render(entry(Executed(6, "A", "t1", 4, 10_000, 3, "A")))) \
        == OrderExecuted(1234, "t1", 4, 10_000, b"A", 3)
    assert ouch_codec.decode_outbound(render(entry(
        Canceled(7, "A", "t1", 2, CancelReason.IOC), CANCEL))) == OrderCanceled(1234, "t1", 2, b"I")
    replaced = ouch_codec.decode_outbound(render(entry(
        Replaced(8, "A", "t2", "t1", 6, 10_100, 10), REPLACE, Side.BUY, "ACME", Tif.DAY)))
    assert isinstance(replaced, OrderReplaced)
    assert (replaced.replacement_order_token, replaced.previous_order_token, replaced.side,
            replaced.stock, replaced.shares) == ("t2", "t1", b"B", "ACME", 6)


def test_a_rejected_cancel_is_a_cancel_reject_and_backpressure_is_reason_c() -> None:
    rejected = Rejected(0, "A", "t1", RejectReason.UNKNOWN_ORDER)
    assert ouch_codec.decode_outbound(render(entry(rejected, CANCEL))) == CancelReject(1234, "t1")
    busy = Rejected(0, "A", "t3", RejectReason.BACKPRESSURE)
    assert ouch_codec.decode_outbound(render(entry(busy))) == OrderRejected(1234, "t3", b"C")
