"""Tests of the JSON-lines replay format (reference_impl/core/replay_format.py)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.core.messages import (
    Accepted,
    Cancel,
    CancelReason,
    Canceled,
    Executed,
    Heartbeat,
    LeaderChange,
    NewOrder,
    OrdType,
    Rejected,
    RejectReason,
    Replace,
    Replaced,
    Sequenced,
    Side,
    SnapshotRequest,
    Tif,
)
from reference_impl.core.replay_format import (
    End,
    ReplayFormatError,
    end_to_json,
    format_line,
    input_to_json,
    output_from_json,
    output_to_json,
    parse_input_line,
    parse_output_line,
)

NEW = {"seq": 1, "ts": 5, "type": "new", "account": "ACC1", "token": "t1", "symbol": "AAPL",
       "side": "B", "qty": 10, "price": 1_000_000, "ord_type": "limit", "tif": "DAY"}
CANCEL = {"seq": 2, "ts": 6, "type": "cancel", "account": "ACC1", "token": "t1", "qty": 0}
REPLACE = {"seq": 3, "ts": 7, "type": "replace", "account": "ACC1", "token": "t1",
           "new_token": "t2", "qty": 5, "price": 1_000_100}


def line(base: dict, **changes) -> str:
    obj = dict(base)
    for key, value in changes.items():
        if value is ...:
            obj.pop(key)
        else:
            obj[key] = value
    return json.dumps(obj)


def malformed(text: str, lineno: int = 7) -> ReplayFormatError:
    with pytest.raises(ReplayFormatError) as info:
        parse_input_line(text, lineno)
    err = info.value
    assert str(err) == f"line {lineno}: field {err.field}: {err.reason}"
    assert err.lineno == lineno
    return err


# --------------------------------------------------------------- good lines


def test_new_limit_day():
    assert parse_input_line(line(NEW), 1) == Sequenced(
        1, 5, 0, 0, 1, "ACC1", NewOrder("t1", "AAPL", Side.BUY, 10, 1_000_000, OrdType.LIMIT, Tif.DAY, 0)
    )


def test_new_market_has_price_zero():
    msg = parse_input_line(line(NEW, price=..., ord_type="market", tif="IOC", side="S"), 1)
    assert msg.body == NewOrder("t1", "AAPL", Side.SELL, 10, 0, OrdType.MARKET, Tif.IOC, 0)


def test_fok_becomes_ioc_with_min_qty_equal_qty():
    msg = parse_input_line(line(NEW, tif="FOK"), 1)
    assert msg.body.tif is Tif.IOC and msg.body.min_qty == 10


def test_min_qty_passes_through():
    assert parse_input_line(line(NEW, tif="IOC", min_qty=3), 1).body.min_qty == 3
    # min_qty with DAY is a business reject (min_qty_not_ioc), not malformed
    assert parse_input_line(line(NEW, min_qty=3), 1).body.min_qty == 3


def test_cancel_and_replace():
    assert parse_input_line(line(CANCEL), 2) == Sequenced(2, 6, 0, 0, 2, "ACC1", Cancel("t1", 0))
    assert parse_input_line(line(REPLACE), 3) == Sequenced(
        3, 7, 0, 0, 3, "ACC1", Replace("t1", "t2", 5, 1_000_100)
    )


def test_control_extensions():
    assert parse_input_line('{"seq":4,"ts":0,"type":"heartbeat"}', 1).body == Heartbeat()
    msg = parse_input_line('{"seq":4,"ts":0,"type":"leader_change","epoch":2,"engine_id":1}', 1)
    assert msg.body == LeaderChange(2, 1) and msg.account == ""
    msg = parse_input_line('{"seq":4,"ts":0,"type":"snapshot_request","snapshot_id":9}', 1)
    assert msg.body == SnapshotRequest(9)


@pytest.mark.parametrize(
    "changes",
    [
        {"symbol": "aapl"},  # bad characters -> unknown_symbol
        {"symbol": ""},
        {"price": 150},  # off tick -> bad_price
        {"price": -100},
        {"price": 10**30},
        {"qty": 0},  # -> bad_qty
        {"qty": -5},
        {"qty": 10**12},
        {"token": ""},  # -> bad_token
        {"token": "has space"},
        {"token": "x" * 40},
        {"token": "\u00e9"},
        {"tif": "IOC", "min_qty": 99},
        {"tif": "IOC", "min_qty": -1},
    ],
)
def test_business_rule_violations_pass_through(changes):
    msg = parse_input_line(line(NEW, **changes), 1)
    for key, value in changes.items():
        if key != "tif":
            assert getattr(msg.body, key) == value


def test_business_violations_pass_through_on_cancel_and_replace():
    assert parse_input_line(line(CANCEL, qty=2**40, token=""), 1).body == Cancel("", 2**40)
    assert parse_input_line(line(REPLACE, qty=-1, price=7, new_token="a b"), 1).body == Replace(
        "t1", "a b", -1, 7
    )


# ---------------------------------------------------------- malformed lines


@pytest.mark.parametrize(
    "text, field",
    [
        ("", "line"),
        ("   ", "line"),
        ("not json", "line"),
        ('{"seq": 1,', "line"),
        ("[1, 2]", "line"),
        ('"new"', "line"),
        ("null", "line"),
        ('{"seq":1,"seq":2,"ts":0,"type":"heartbeat"}', "line"),  # duplicate key
        ('{"seq":NaN,"ts":0,"type":"heartbeat"}', "seq"),
        ("[" * 100_000, "line"),
    ],
)
def test_not_a_json_object(text, field):
    assert malformed(text).field == field


@pytest.mark.parametrize(
    "base, changes, field",
    [
        (NEW, {"seq": ...}, "seq"),
        (NEW, {"seq": 0}, "seq"),
        (NEW, {"seq": -1}, "seq"),
        (NEW, {"seq": "1"}, "seq"),
        (NEW, {"seq": 1.0}, "seq"),
        (NEW, {"seq": True}, "seq"),
        (NEW, {"seq": 2**64}, "seq"),
        (NEW, {"ts": ...}, "ts"),
        (NEW, {"ts": -1}, "ts"),
        (NEW, {"ts": None}, "ts"),
        (NEW, {"type": ...}, "type"),
        (NEW, {"type": "amend"}, "type"),
        (NEW, {"type": 1}, "type"),
        (NEW, {"account": ...}, "account"),
        (NEW, {"account": ""}, "account"),
        (NEW, {"account": "TOOLONG"}, "account"),
        (NEW, {"account": "a-b"}, "account"),
        (NEW, {"account": "\u00e9"}, "account"),
        (NEW, {"account": 12}, "account"),
        (NEW, {"token": ...}, "token"),
        (NEW, {"token": 5}, "token"),
        (NEW, {"symbol": ...}, "symbol"),
        (NEW, {"symbol": ["AAPL"]}, "symbol"),
        (NEW, {"side": "X"}, "side"),
        (NEW, {"side": "b"}, "side"),
        (NEW, {"side": ...}, "side"),
        (NEW, {"qty": "10"}, "qty"),
        (NEW, {"qty": 10.0}, "qty"),
        (NEW, {"qty": False}, "qty"),
        (NEW, {"qty": ...}, "qty"),
        (NEW, {"price": 1e6}, "price"),
        (NEW, {"price": "1000000"}, "price"),
        (NEW, {"price": ...}, "price"),  # required for limit
        (NEW, {"ord_type": "stop"}, "ord_type"),
        (NEW, {"ord_type": ...}, "ord_type"),
        (NEW, {"ord_type": "market"}, "price"),  # price not allowed for market
        (NEW, {"tif": "GTC"}, "tif"),
        (NEW, {"tif": ...}, "tif"),
        (NEW, {"tif": 0}, "tif"),
        (NEW, {"tif": "FOK", "min_qty": 10}, "min_qty"),
        (NEW, {"tif": "IOC", "min_qty": "3"}, "min_qty"),
        (NEW, {"tif": "IOC", "min_qty": True}, "min_qty"),
        (NEW, {"extra": 1}, "extra"),
        (CANCEL, {"qty": ...}, "qty"),
        (CANCEL, {"qty": 1.5}, "qty"),
        (CANCEL, {"token": None}, "token"),
        (CANCEL, {"price": 100}, "price"),
        (REPLACE, {"new_token": ...}, "new_token"),
        (REPLACE, {"price": ...}, "price"),
        (REPLACE, {"price": True}, "price"),
        (REPLACE, {"account": "bad acct"}, "account"),
    ],
)
def test_malformed_fields(base, changes, field):
    err = malformed(line(base, **changes))
    assert err.field == field


def test_market_price_message():
    err = malformed(line(NEW, ord_type="market"), 3)
    assert str(err) == "line 3: field price: price not allowed for market orders"


def test_first_bad_field_is_named():
    # seq is checked before everything else; type before type-specific fields
    assert malformed(line(NEW, seq="x", qty="y")).field == "seq"
    assert malformed(line(NEW, account="", qty="y")).field == "account"


# ------------------------------------------------------------------- inputs


_token = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=16)
_account = st.text(alphabet="ABCxyz019", min_size=1, max_size=6)
_int = st.integers(min_value=-(2**40), max_value=2**40)


@st.composite
def _new_orders(draw):
    ord_type = draw(st.sampled_from(OrdType))
    price = 0 if ord_type is OrdType.MARKET else draw(_int)
    return NewOrder(draw(_token), draw(st.text(max_size=10)), draw(st.sampled_from(Side)),
                    draw(_int), price, ord_type, draw(st.sampled_from(Tif)), draw(_int))


_bodies = st.one_of(
    _new_orders(),
    st.builds(Cancel, _token, _int),
    st.builds(Replace, _token, _token, _int, _int),
)


@given(st.integers(1, 2**64 - 1), st.integers(0, 2**64 - 1), _account, _bodies)
def test_input_round_trip(seq, ts, account, body):
    msg = Sequenced(seq, ts, 0, 0, seq, account, body)
    text = json.dumps(input_to_json(msg))
    assert parse_input_line(text, 1) == msg


@pytest.mark.parametrize("body", [LeaderChange(3, 2), SnapshotRequest(4), Heartbeat()])
def test_control_round_trip(body):
    msg = Sequenced(9, 1, 0, 0, 9, "", body)
    assert parse_input_line(json.dumps(input_to_json(msg)), 1) == msg


def test_input_to_json_key_order_and_fok_normalisation():
    msg = parse_input_line(line(NEW, tif="FOK", ord_type="market", price=...), 1)
    assert list(input_to_json(msg).items()) == [
        ("seq", 1), ("ts", 5), ("type", "new"), ("account", "ACC1"), ("token", "t1"),
        ("symbol", "AAPL"), ("side", "B"), ("qty", 10), ("ord_type", "market"),
        ("tif", "IOC"), ("min_qty", 10),
    ]


def test_input_to_json_refuses_what_it_cannot_express():
    with pytest.raises(ValueError):
        input_to_json(Sequenced(1, 0, 0, 0, 1, "A", NewOrder("t", "AAPL", Side.BUY, 1, 100, tif=-1)))
    with pytest.raises(ValueError):
        input_to_json(Sequenced(1, 0, 0, 0, 1, "A", NewOrder("t", "AAPL", Side.BUY, 1, 100,
                                                            ord_type=OrdType.MARKET)))


# ------------------------------------------------------------------ outputs

OUTPUTS = [
    (Accepted(1, "ACC1", "t1", "AAPL", Side.BUY, 10, 1_000_000, 1),
     '{"seq":1,"type":"accepted","account":"ACC1","token":"t1","symbol":"AAPL","side":"B",'
     '"qty":10,"price":1000000,"order_ref":1}'),
    (Executed(2, "ACC2", "s1", 4, 1_000_000, 7, "A"),
     '{"seq":2,"type":"executed","account":"ACC2","token":"s1","qty":4,"price":1000000,'
     '"match_id":7,"liquidity":"A"}'),
    (Canceled(3, "ACC1", "t1", 6, CancelReason.IOC),
     '{"seq":3,"type":"canceled","account":"ACC1","token":"t1","qty":6,"reason":"ioc"}'),
    (Replaced(4, "ACC1", "t2", "t1", 5, 1_000_100, 3),
     '{"seq":4,"type":"replaced","account":"ACC1","token":"t2","old_token":"t1","qty":5,'
     '"price":1000100,"order_ref":3}'),
    (Rejected(5, "ACC1", "t1", RejectReason.DUPLICATE_TOKEN),
     '{"seq":5,"type":"rejected","account":"ACC1","token":"t1","reason":"duplicate_token"}'),
]


@pytest.mark.parametrize("output, text", OUTPUTS)
def test_output_exact_text_and_back(output, text):
    obj = output_to_json(output)
    assert format_line(obj) == text
    back = output_from_json(json.loads(text))
    assert back == output and type(back) is type(output)
    assert parse_output_line(text, 1) == output


def test_output_enums_are_values_not_members():
    obj = output_to_json(Rejected(5, "A", "t", RejectReason.BAD_TIF))
    assert type(obj["reason"]) is str
    obj = output_to_json(Accepted(1, "A", "t", "X", Side.SELL, 1, 0, 1))
    assert type(obj["side"]) is str and obj["side"] == "S"


def test_end_line():
    text = format_line(end_to_json(42, "ab12"))
    assert text == '{"type":"end","last_seq":42,"state_hash":"ab12"}'
    assert parse_output_line(text, 9) == End(42, "ab12")
    with pytest.raises(ReplayFormatError):
        output_from_json(json.loads(text))


def test_format_line_is_ascii():
    text = format_line(output_to_json(Rejected(1, "A", "\u00e9t\u00e9", RejectReason.BAD_TOKEN)))
    assert text.isascii()
    assert parse_output_line(text, 1).token == "\u00e9t\u00e9"


@pytest.mark.parametrize(
    "obj, field",
    [
        ({"seq": 1, "type": "accepted"}, "account"),
        ({"seq": 1, "type": "booked", "account": "A", "token": "t"}, "type"),
        ({"seq": "1", "type": "rejected", "account": "A", "token": "t", "reason": "bad_qty"}, "seq"),
        ({"seq": 1, "type": "rejected", "account": "A", "token": "t", "reason": "nope"}, "reason"),
        ({"seq": 1, "type": "canceled", "account": "A", "token": "t", "qty": 1, "reason": "x"},
         "reason"),
        ({"seq": 1, "type": "executed", "account": "A", "token": "t", "qty": 1, "price": 1,
          "match_id": 1, "liquidity": "X"}, "liquidity"),
        ({"seq": 1, "type": "rejected", "account": "A", "token": "t", "reason": "bad_qty",
          "more": 1}, "more"),
        ([1], "line"),
    ],
)
def test_output_from_json_rejects(obj, field):
    with pytest.raises(ReplayFormatError) as info:
        output_from_json(obj, 4)
    assert info.value.field == field and info.value.lineno == 4
