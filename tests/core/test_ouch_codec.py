"""OUCH 4.2 codec: round trips, hand-built golden bytes, malformed input, core mapping.

The layouts below are written out again from the specification (field, width)
rather than taken from the codec, so a field out of order in the codec fails
the golden tests and the per-field malformed tests point at the wrong bytes.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.core import ouch_codec as oc
from reference_impl.core import ouch_messages as om
from reference_impl.core.errors import DecodeError
from reference_impl.core.messages import (
    CancelReason, NewOrder, OrdType, RejectReason, Side, Tif,
)
from reference_impl.core.rules import Instruments, check_new_order

# ------------------------------------------------------------ spec layouts
# (field, width, kind): kind "a" text, "c" one-byte code, "n" binary integer.
SPEC = {
    om.EnterOrder: (b"O", [
        ("order_token", 14, "a"), ("side", 1, "c"), ("shares", 4, "n"), ("stock", 8, "a"),
        ("price", 4, "n"), ("time_in_force", 4, "n"), ("firm", 4, "a"), ("display", 1, "c"),
        ("capacity", 1, "c"), ("intermarket_sweep", 1, "c"), ("min_qty", 4, "n"),
        ("cross_type", 1, "c"), ("customer_type", 1, "c")]),
    om.ReplaceOrder: (b"U", [
        ("existing_order_token", 14, "a"), ("replacement_order_token", 14, "a"),
        ("shares", 4, "n"), ("price", 4, "n"), ("time_in_force", 4, "n"), ("display", 1, "c"),
        ("intermarket_sweep", 1, "c"), ("min_qty", 4, "n")]),
    om.CancelOrder: (b"X", [("order_token", 14, "a"), ("shares", 4, "n")]),
    om.SystemEvent: (b"S", [("timestamp", 8, "n"), ("event_code", 1, "c")]),
    om.OrderAccepted: (b"A", [
        ("timestamp", 8, "n"), ("order_token", 14, "a"), ("side", 1, "c"), ("shares", 4, "n"),
        ("stock", 8, "a"), ("price", 4, "n"), ("time_in_force", 4, "n"), ("firm", 4, "a"),
        ("display", 1, "c"), ("order_reference_number", 8, "n"), ("capacity", 1, "c"),
        ("intermarket_sweep", 1, "c"), ("min_qty", 4, "n"), ("cross_type", 1, "c"),
        ("order_state", 1, "c"), ("bbo_weight", 1, "c")]),
    om.OrderReplaced: (b"U", [
        ("timestamp", 8, "n"), ("replacement_order_token", 14, "a"), ("side", 1, "c"),
        ("shares", 4, "n"), ("stock", 8, "a"), ("price", 4, "n"), ("time_in_force", 4, "n"),
        ("firm", 4, "a"), ("display", 1, "c"), ("order_reference_number", 8, "n"),
        ("capacity", 1, "c"), ("intermarket_sweep", 1, "c"), ("min_qty", 4, "n"),
        ("cross_type", 1, "c"), ("order_state", 1, "c"), ("previous_order_token", 14, "a"),
        ("bbo_weight", 1, "c")]),
    om.OrderCanceled: (b"C", [
        ("timestamp", 8, "n"), ("order_token", 14, "a"), ("decrement_shares", 4, "n"),
        ("reason", 1, "c")]),
    om.OrderExecuted: (b"E", [
        ("timestamp", 8, "n"), ("order_token", 14, "a"), ("executed_shares", 4, "n"),
        ("execution_price", 4, "n"), ("liquidity_flag", 1, "c"), ("match_number", 8, "n")]),
    om.OrderRejected: (b"J", [("timestamp", 8, "n"), ("order_token", 14, "a"), ("reason", 1, "c")]),
    om.CancelReject: (b"I", [("timestamp", 8, "n"), ("order_token", 14, "a")]),
}
SPEC_SIZES = {
    om.EnterOrder: 49, om.ReplaceOrder: 47, om.CancelOrder: 19, om.SystemEvent: 10,
    om.OrderAccepted: 66, om.OrderReplaced: 80, om.OrderCanceled: 28, om.OrderExecuted: 40,
    om.OrderRejected: 24, om.CancelReject: 23,
}
INBOUND = (om.EnterOrder, om.ReplaceOrder, om.CancelOrder)
OUTBOUND = tuple(c for c in SPEC if c not in INBOUND)


def decoder(cls):
    return oc.decode_inbound if cls in INBOUND else oc.decode_outbound


def offsets(cls) -> dict[str, tuple[int, int, str]]:
    """field -> (offset, width, kind), counted from the type byte at 0."""
    out, at = {}, 1
    for field, width, kind in SPEC[cls][1]:
        out[field] = (at, width, kind)
        at += width
    return out


# -------------------------------------------------------------- strategies
PRINTABLE = "".join(map(chr, range(0x20, 0x7F)))


def text(width: int):
    return st.text(PRINTABLE, max_size=width).map(lambda s: s.rstrip(" "))


def code(values):
    return st.sampled_from(sorted(values))


u32, u64 = st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1)
token, stock, firm = text(14), text(8), text(4)

STRATEGIES = {
    om.EnterOrder: st.builds(
        om.EnterOrder, token, code(om.SIDES), u32, stock, u32, u32, firm, code(om.DISPLAYS_IN),
        code(om.CAPACITIES), code(om.ISO_ELIGIBILITY), u32, code(om.CROSS_TYPES),
        code(om.CUSTOMER_TYPES)),
    om.ReplaceOrder: st.builds(
        om.ReplaceOrder, token, token, u32, u32, u32, code(om.DISPLAYS_IN),
        code(om.ISO_ELIGIBILITY), u32),
    om.CancelOrder: st.builds(om.CancelOrder, token, u32),
    om.SystemEvent: st.builds(om.SystemEvent, u64, code(om.EVENT_CODES)),
    om.OrderAccepted: st.builds(
        om.OrderAccepted, u64, token, code(om.SIDES), u32, stock, u32, u32, firm,
        code(om.DISPLAYS_OUT), u64, code(om.CAPACITIES), code(om.ISO_ELIGIBILITY), u32,
        code(om.CROSS_TYPES), code(om.ORDER_STATES), code(om.BBO_WEIGHTS)),
    om.OrderReplaced: st.builds(
        om.OrderReplaced, u64, token, code(om.SIDES), u32, stock, u32, u32, firm,
        code(om.DISPLAYS_OUT), u64, code(om.CAPACITIES), code(om.ISO_ELIGIBILITY), u32,
        code(om.CROSS_TYPES), code(om.ORDER_STATES), token, code(om.BBO_WEIGHTS)),
    om.OrderCanceled: st.builds(om.OrderCanceled, u64, token, u32, code(om.CANCEL_REASONS)),
    om.OrderExecuted: st.builds(
        om.OrderExecuted, u64, token, u32, u32, code(om.LIQUIDITY_FLAGS), u64),
    om.OrderRejected: st.builds(om.OrderRejected, u64, token, code(om.REJECT_REASONS)),
    om.CancelReject: st.builds(om.CancelReject, u64, token),
}
any_message = st.one_of(*STRATEGIES.values())

SAMPLES = {
    om.EnterOrder: om.EnterOrder("ORD1", b"B", 100, "AAPL", 1_500_000),
    om.ReplaceOrder: om.ReplaceOrder("ORD1", "ORD2", 50, 1_490_000),
    om.CancelOrder: om.CancelOrder("ORD1", 0),
    om.SystemEvent: om.SystemEvent(1, b"S"),
    om.OrderAccepted: om.OrderAccepted(
        2, "ORD1", b"B", 100, "AAPL", 1_500_000, 99_998, "FIRM", b"Y", 7, b"A", b"N", 0, b"N",
        b"L"),
    om.OrderReplaced: om.OrderReplaced(
        3, "ORD2", b"S", 50, "AAPL", 1_490_000, 99_998, "", b"Y", 8, b"A", b"N", 0, b"N", b"L",
        "ORD1"),
    om.OrderCanceled: om.OrderCanceled(4, "ORD2", 50, b"U"),
    om.OrderExecuted: om.OrderExecuted(5, "ORD2", 10, 1_490_000, b"A", 9),
    om.OrderRejected: om.OrderRejected(6, "ORD3", b"X"),
    om.CancelReject: om.CancelReject(7, "ORD4"),
}


# ------------------------------------------------------------- round trips


@given(any_message)
def test_every_message_round_trips(msg):
    raw = oc.encode(msg)
    assert len(raw) == SPEC_SIZES[type(msg)]
    assert raw[:1] == SPEC[type(msg)][0]
    assert decoder(type(msg))(raw) == msg


@pytest.mark.parametrize("cls", list(SPEC), ids=lambda c: c.__name__)
def test_sizes_match_the_spec(cls):
    assert oc.MESSAGE_SIZES[cls] == SPEC_SIZES[cls] == 1 + sum(w for _, w, _ in SPEC[cls][1])
    assert list(cls.__dataclass_fields__) == [f for f, _, _ in SPEC[cls][1]]


@pytest.mark.parametrize("cls", list(SPEC), ids=lambda c: c.__name__)
def test_decoders_accept_any_bytes_like(cls):
    raw = oc.encode(SAMPLES[cls])
    assert decoder(cls)(bytearray(raw)) == decoder(cls)(memoryview(raw)) == SAMPLES[cls]


# ------------------------------------------------------------ golden bytes


def be(value: int, width: int) -> bytes:
    return value.to_bytes(width, "big")


def test_golden_enter_order():
    msg = om.EnterOrder("TOK-1", b"S", 300, "MSFT", 4_123_400, 0, "GSCO", b"P", b"R", b"Y",
                        100, b"O", b"R")
    golden = (b"O" + b"TOK-1         " + b"S" + be(300, 4) + b"MSFT    " + be(4_123_400, 4)
              + be(0, 4) + b"GSCO" + b"P" + b"R" + b"Y" + be(100, 4) + b"O" + b"R")
    assert len(golden) == 49
    assert oc.encode(msg) == golden
    assert oc.decode_inbound(golden) == msg


def test_golden_replace_and_cancel():
    rep = om.ReplaceOrder("OLD", "NEW", 7, 99, 99_999, b"N", b"N", 0)
    assert oc.encode(rep) == (b"U" + b"OLD".ljust(14) + b"NEW".ljust(14) + be(7, 4) + be(99, 4)
                              + be(99_999, 4) + b"N" + b"N" + be(0, 4))
    assert oc.encode(om.CancelOrder("OLD", 3)) == b"X" + b"OLD".ljust(14) + be(3, 4)


def test_golden_order_accepted():
    msg = om.OrderAccepted(34_200_000_000_001, "TOK-1", b"B", 500, "ZVZZT", 0x7FFFFFFF, 0,
                           "", b"Y", 123456789, b"A", b"N", 500, b"N", b"L", b"3")
    golden = (b"A" + be(34_200_000_000_001, 8) + b"TOK-1".ljust(14) + b"B" + be(500, 4)
              + b"ZVZZT   " + b"\x7f\xff\xff\xff" + be(0, 4) + b"    " + b"Y"
              + be(123456789, 8) + b"A" + b"N" + be(500, 4) + b"N" + b"L" + b"3")
    assert len(golden) == 66
    assert oc.encode(msg) == golden
    assert oc.decode_outbound(golden) == msg


def test_golden_replaced_executed_canceled_rejected():
    rep = om.OrderReplaced(1, "NEW", b"B", 5, "AB", 100, 99_998, "F", b"Z", 2, b"P", b"Y", 0,
                           b"N", b"D", "OLD", b" ")
    assert oc.encode(rep) == (
        b"U" + be(1, 8) + b"NEW".ljust(14) + b"B" + be(5, 4) + b"AB".ljust(8) + be(100, 4)
        + be(99_998, 4) + b"F   " + b"Z" + be(2, 8) + b"P" + b"Y" + be(0, 4) + b"N" + b"D"
        + b"OLD".ljust(14) + b" ")
    assert oc.encode(om.OrderExecuted(9, "T", 10, 2500, b"R", 77)) == (
        b"E" + be(9, 8) + b"T".ljust(14) + be(10, 4) + be(2500, 4) + b"R" + be(77, 8))
    assert oc.encode(om.OrderCanceled(9, "T", 10, b"I")) == (
        b"C" + be(9, 8) + b"T".ljust(14) + be(10, 4) + b"I")
    assert oc.encode(om.OrderRejected(9, "T", b"S")) == b"J" + be(9, 8) + b"T".ljust(14) + b"S"
    assert oc.encode(om.CancelReject(9, "T")) == b"I" + be(9, 8) + b"T".ljust(14)
    assert oc.encode(om.SystemEvent(9, b"E")) == b"S" + be(9, 8) + b"E"


# ---------------------------------------------------------- malformed input


def field_of(call) -> str:
    with pytest.raises(DecodeError) as info:
        call()
    assert info.value.protocol == "OUCH"
    return info.value.field


@pytest.mark.parametrize("cls", list(SPEC), ids=lambda c: c.__name__)
def test_truncated_and_oversized_are_length_errors(cls):
    raw = oc.encode(SAMPLES[cls])
    for cut in range(len(raw)):
        assert field_of(lambda: decoder(cls)(raw[:cut])) == "length"
    assert field_of(lambda: decoder(cls)(raw + b" ")) == "length"


def test_unknown_and_wrong_direction_types():
    assert field_of(lambda: oc.decode_inbound(b"Q" + bytes(48))) == "message_type"
    assert field_of(lambda: oc.decode_inbound(b"\xff")) == "message_type"
    assert field_of(lambda: oc.decode_outbound(oc.encode(SAMPLES[om.EnterOrder]))) == "message_type"
    accepted = oc.encode(SAMPLES[om.OrderAccepted])
    assert field_of(lambda: oc.decode_inbound(accepted)) == "message_type"
    # 'U' is Replace Order inbound (47 bytes) but Order Replaced outbound (80 bytes)
    assert field_of(lambda: oc.decode_inbound(oc.encode(SAMPLES[om.OrderReplaced]))) == "length"
    assert field_of(lambda: oc.decode_outbound(oc.encode(SAMPLES[om.ReplaceOrder]))) == "length"
    # a 4.1 Enter Order (48 bytes, no customer type) is not 4.2
    assert field_of(lambda: oc.decode_inbound(oc.encode(SAMPLES[om.EnterOrder])[:48])) == "length"


CODE_FIELDS = [(c, f) for c in SPEC for f, (_, _, k) in offsets(c).items() if k == "c"]
ALPHA_FIELDS = [(c, f) for c in SPEC for f, (_, _, k) in offsets(c).items() if k == "a"]


@pytest.mark.parametrize("cls,field", CODE_FIELDS, ids=lambda x: getattr(x, "__name__", x))
@pytest.mark.parametrize("bad", [b"?", b"\x00", b"\x80", b"\xff", b"~"])
def test_undefined_code_names_its_field(cls, field, bad):
    at, _, _ = offsets(cls)[field]
    raw = bytearray(oc.encode(SAMPLES[cls]))
    raw[at:at + 1] = bad
    assert field_of(lambda: decoder(cls)(bytes(raw))) == field


@pytest.mark.parametrize("cls,field", ALPHA_FIELDS, ids=lambda x: getattr(x, "__name__", x))
@pytest.mark.parametrize("bad", [b"\x80", b"\xe9", b"\x00", b"\x07", b"\x7f", b"\t"])
@pytest.mark.parametrize("where", ["first", "last"])
def test_non_printable_text_names_its_field(cls, field, bad, where):
    at, width, _ = offsets(cls)[field]
    raw = bytearray(oc.encode(SAMPLES[cls]))
    raw[at if where == "first" else at + width - 1] = bad[0]
    assert field_of(lambda: decoder(cls)(bytes(raw))) == field


def test_numeric_fields_are_binary_so_any_bytes_are_a_number():
    # OUCH 4.x integers are binary: ASCII letters in "shares" are just a big number.
    at, _, _ = offsets(om.EnterOrder)["shares"]
    raw = bytearray(oc.encode(SAMPLES[om.EnterOrder]))
    raw[at:at + 4] = b"ABCD"
    assert oc.decode_inbound(bytes(raw)).shares == 0x41424344


def test_decoders_strip_padding_only_on_the_right():
    raw = bytearray(oc.encode(om.CancelOrder("  X Y", 1)))
    assert raw[1:15] == b"  X Y         "
    assert oc.decode_inbound(bytes(raw)).order_token == "  X Y"
    assert oc.decode_inbound(b"X" + b" " * 14 + be(1, 4)).order_token == ""


# ---------------------------------------------------------- encode refusals


@pytest.mark.parametrize("msg", [
    om.CancelOrder("X" * 15, 1),  # token too long
    om.CancelOrder("caf\u00e9", 1),  # not ASCII
    om.CancelOrder("A\x01", 1),  # control character
    om.CancelOrder("AB ", 1),  # trailing space would read back as padding
    om.CancelOrder("AB", -1),  # u32 out of range
    om.CancelOrder("AB", 2**32),
    om.EnterOrder("T", "B", 1, "S", 1),  # a code given as str, not bytes
    om.EnterOrder("T", b"X", 1, "S", 1),  # undefined side
    om.EnterOrder("T", b"B", 1, "S", 1, display=b"Z"),  # host-only display code inbound
    om.SystemEvent(2**64, b"S"),
])
def test_encode_refuses_what_the_layout_cannot_carry(msg):
    with pytest.raises(ValueError):
        oc.encode(msg)


def test_encode_refuses_non_messages():
    with pytest.raises(TypeError):
        oc.encode(NewOrder("T", "S", Side.BUY, 1, 1))


# ---------------------------------------------------------- core mapping


def enter(**kw) -> om.EnterOrder:
    return om.EnterOrder(**{"order_token": "T1", "side": b"B", "shares": 100, "stock": "AAPL",
                            "price": 1_500_000, **kw})


def test_enter_to_core_limit_order():
    core = oc.enter_to_core(enter(min_qty=100, time_in_force=0))
    assert core == NewOrder("T1", "AAPL", Side.BUY, 100, 1_500_000, OrdType.LIMIT, Tif.IOC, 100)


def test_market_price_is_a_market_order_with_price_zero():
    assert oc.MARKET_PRICE == 0x7FFFFFFF
    core = oc.enter_to_core(enter(price=oc.MARKET_PRICE))
    assert (core.ord_type, core.price) == (OrdType.MARKET, 0)
    assert check_new_order(core, Instruments()) is None


@pytest.mark.parametrize("tif,expected", [
    (0, Tif.IOC), (99_998, Tif.DAY), (99_999, Tif.DAY),
    (1, oc.TIF_INVALID), (86_399, oc.TIF_INVALID), (100_000, oc.TIF_INVALID),
    (2**32 - 1, oc.TIF_INVALID),
])
def test_tif_mapping(tif, expected):
    assert oc.tif_to_core(tif) == expected
    assert oc.enter_to_core(enter(time_in_force=tif)).tif == expected


def test_timed_tif_is_rejected_as_bad_tif_by_the_rules():
    assert oc.TIF_INVALID == -1
    core = oc.enter_to_core(enter(time_in_force=60))
    assert check_new_order(core, Instruments()) is RejectReason.BAD_TIF


@pytest.mark.parametrize("side,expected", [
    (b"B", Side.BUY), (b"S", Side.SELL), (b"T", Side.SELL), (b"E", Side.SELL),
])
def test_side_mapping_short_sales_are_sells(side, expected):
    assert oc.enter_to_core(enter(side=side)).side is expected


def test_replace_and_cancel_to_core():
    core = oc.replace_to_core(om.ReplaceOrder("OLD", "NEW", 20, 1_000_000, 0, b"N", b"Y", 5))
    assert (core.token, core.new_token, core.qty, core.price) == ("OLD", "NEW", 20, 1_000_000)
    core = oc.cancel_to_core(om.CancelOrder("OLD", 0))
    assert (core.token, core.qty) == ("OLD", 0)


def test_reject_codes_cover_every_reason_with_spec_codes():
    assert set(oc.REJECT_CODES) == set(RejectReason)
    assert all(code in om.REJECT_REASONS for code in oc.REJECT_CODES.values())
    backpressure = oc.REJECT_CODES[RejectReason.BACKPRESSURE]
    others = [c for r, c in oc.REJECT_CODES.items() if r is not RejectReason.BACKPRESSURE]
    assert backpressure not in others
    assert oc.REJECT_CODES[RejectReason.UNKNOWN_SYMBOL] == b"S"
    assert oc.REJECT_CODES[RejectReason.BAD_PRICE] == b"X"


def test_cancel_codes():
    assert oc.CANCEL_CODES == {CancelReason.USER: b"U", CancelReason.IOC: b"I"}
    assert all(code in om.CANCEL_REASONS for code in oc.CANCEL_CODES.values())
    assert oc.SIDE_CODES == {Side.BUY: b"B", Side.SELL: b"S"}


def test_core_rejected_maps_to_a_decodable_ouch_rejected():
    for reason, code_ in oc.REJECT_CODES.items():
        raw = oc.encode(om.OrderRejected(1, "T", code_))
        assert oc.decode_outbound(raw).reason == code_, reason
