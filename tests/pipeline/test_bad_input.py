"""Bad input at every door gets a specific reject or a clean disconnect; nothing is sequenced.

Issue 3, Tests, fourth bullet, on a real cluster in both transport modes.
The sequencer's ``next_seq`` and counters are read before and after: the
only seqs used are the good orders this test sends on purpose, one each, so
anything sequenced from a rejected request shows up as a difference. A
logged-in OUCH session and an HTTP client keep trading throughout, proving
the gateway keeps serving its other sessions.
"""

from __future__ import annotations

import json
import socket

import pytest

from reference_impl.config import HOST
from reference_impl.core import sequenced_codec
from reference_impl.core import soupbin_codec as sb
from reference_impl.core.messages import NewOrder, Sequenced, Side
from reference_impl.core.ouch_messages import (
    CancelOrder,
    CancelReject,
    EnterOrder,
    OrderAccepted,
    OrderRejected,
    ReplaceOrder,
)

LOGIN = sb.encode(sb.LoginRequest("DEMO3", "demo3pw"))
U_HEADER = b"\x00\x32U"  # Unsequenced Data of 49 payload bytes (an Enter Order)

#: (name, bytes sent on a fresh connection, half-close after sending)
FRAMING = [
    ("truncated packet, then EOF", LOGIN[:20], True),
    ("truncated length field, then EOF", b"\x00", True),
    ("unknown packet type", b"\x00\x01Q", False),
    ("server-only packet type", b"\x00\x01H", False),
    ("oversized length", b"\xff\xffU" + b"x" * 64, False),
    ("zero length", b"\x00\x00", False),
    ("login of the wrong length", b"\x00\x05Lxxxx", False),
    ("data before login", sb.encode(sb.UnsequencedData(b"O" + b"x" * 48)), False),
    ("non-digit sequence number in login", LOGIN[:-1] + b"x", False),
]
#: after a good login: (name, bytes)
AFTER_LOGIN = [
    ("truncated Enter Order, then EOF", U_HEADER + b"O" + b"x" * 10),
    ("OUCH message of the wrong length", sb.encode(sb.UnsequencedData(b"O" + b"x" * 10))),
    ("unknown OUCH message type", sb.encode(sb.UnsequencedData(b"Q" + b"x" * 48))),
    ("empty OUCH payload", sb.encode(sb.UnsequencedData(b""))),
    ("bad side code", sb.encode(sb.UnsequencedData(b"O" + b"tok1".ljust(14) + b"Q"
                                                   + b"\x00" * 34))),
    ("a second login", LOGIN),
]


def order(token: str, **kw) -> dict:
    return {"token": token, "symbol": "ACME", "side": "B", "qty": 10, "price": 10_000, **kw}


#: (name, method, path, raw body, status, code, field)
HTTP_BAD = [
    ("malformed JSON", "POST", "/v1/orders", b"{not json", 400, "malformed_json", "body"),
    ("empty body", "POST", "/v1/orders", b"", 400, "malformed_json", "body"),
    ("not an object", "POST", "/v1/orders", b"[1, 2]", 400, "malformed_json", "body"),
    ("deep nesting", "POST", "/v1/orders", b"[" * 20_000 + b"]" * 20_000, 400,
     "malformed_json", "body"),
    ("missing token", "POST", "/v1/orders",
     json.dumps({k: v for k, v in order("x").items() if k != "token"}), 400, "missing_field",
     "token"),
    ("missing price", "POST", "/v1/orders",
     json.dumps({k: v for k, v in order("x").items() if k != "price"}), 400, "missing_field",
     "price"),
    ("qty as a string", "POST", "/v1/orders", json.dumps(order("x", qty="10")), 400, "wrong_type",
     "qty"),
    ("price as a float", "POST", "/v1/orders", json.dumps(order("x", price=1.5)), 400,
     "wrong_type", "price"),
    ("qty as a bool", "POST", "/v1/orders", json.dumps(order("x", qty=True)), 400, "wrong_type",
     "qty"),
    ("token as a number", "POST", "/v1/orders", json.dumps(order(12)), 400, "wrong_type", "token"),
    ("side as null", "POST", "/v1/orders", json.dumps(order("x", side=None)), 400, "wrong_type",
     "side"),
    ("unknown field", "POST", "/v1/orders", json.dumps(order("x", colour="red")), 400,
     "unknown_field", "colour"),
    ("bad side", "POST", "/v1/orders", json.dumps(order("x", side="X")), 400, "bad_value", "side"),
    ("bad tif", "POST", "/v1/orders", json.dumps(order("x", tif="GTC")), 400, "bad_value", "tif"),
    ("someone else's account", "POST", "/v1/orders", json.dumps(order("x", account="DEMO2")), 400,
     "bad_value", "account"),
    ("huge qty", "POST", "/v1/orders", json.dumps(order("x", qty=10**40)), 400, "bad_qty", "qty"),
    ("huge price", "POST", "/v1/orders", json.dumps(order("x", price=10**30)), 400, "bad_price",
     "price"),
    ("negative qty", "POST", "/v1/orders", json.dumps(order("x", qty=-5)), 400, "bad_qty", "qty"),
    ("huge min_qty", "POST", "/v1/orders", json.dumps(order("x", tif="IOC", min_qty=2**64)), 400,
     "bad_qty", "min_qty"),
    ("a 5000-digit qty", "POST", "/v1/orders",
     b'{"token":"x","symbol":"ACME","side":"B","price":10000,"qty":' + b"9" * 5000 + b"}",
     400, "malformed_json", "body"),  # Python's int parsing limit: refused before any check
    ("off-tick price", "POST", "/v1/orders", json.dumps(order("x", price=10_050)), 400,
     "bad_price", "price"),
    ("unknown symbol", "POST", "/v1/orders", json.dumps(order("x", symbol="NOPE")), 400,
     "unknown_symbol", "symbol"),
    ("token too long", "POST", "/v1/orders", json.dumps(order("x" * 15)), 400, "bad_token",
     "token"),
    ("replace without qty", "POST", "/v1/orders/good1/replace",
     json.dumps({"new_token": "n1", "price": 10_000}), 400, "missing_field", "qty"),
    ("replace with huge qty", "POST", "/v1/orders/good1/replace",
     json.dumps({"new_token": "n1", "qty": 10**20, "price": 10_000}), 400, "bad_qty", "qty"),
    ("cancel qty not a number", "DELETE", "/v1/orders/good1?qty=abc", None, 400, "wrong_type",
     "qty"),
    ("cancel qty huge", "DELETE", "/v1/orders/good1?qty=" + "9" * 30, None, 400, "bad_qty", "qty"),
]


def sequencer_state(p) -> tuple[int, int]:
    d = p.digest("sequencer")
    return d["next_seq"], d["counters"]["garbage"]


@pytest.mark.parametrize("transport", ["unicast", "multicast"])
def test_bad_input_at_every_door_is_refused_and_never_sequenced(cluster, transport):
    p = cluster(transport=transport)
    good_ouch = p.ouch("DEMO4")
    good_ouch.logged_in()
    good_http = p.http("DEMO1")
    n_good = 0

    def ouch_round_trip() -> None:
        nonlocal n_good
        n_good += 1
        good_ouch.send_ouch(EnterOrder(f"k{n_good}", b"B", 1, "GLOBEX", 10_000))
        msg = good_ouch.message()
        assert isinstance(msg, OrderAccepted) and msg.order_token == f"k{n_good}", msg

    def http_round_trip() -> None:
        nonlocal n_good
        n_good += 1
        r = good_http.order(f"h{n_good}", qty=1, price=9_000)
        assert r.status == 200 and r.body["outputs"][0]["type"] == "accepted", r.body

    http_round_trip()
    assert good_http.order("good1", qty=5, price=9_500).status == 200  # a live order to replace
    n_good += 1
    seq0, garbage0 = sequencer_state(p)
    gw0 = p.digest("gateway-1")

    # ---------------------------------------------------------------- OUCH door
    for name, data, half_close in FRAMING:
        c = p.ouch()
        try:
            c.send_raw(data)
            if half_close:
                c.shutdown()
            seen = c.until_closed()
        finally:
            c.close()
        assert all(isinstance(x, sb.Debug) for x in seen), (name, seen)
        ouch_round_trip()
    for name, data in AFTER_LOGIN:
        c = p.ouch("DEMO3")
        try:
            c.logged_in()
            c.send_raw(data)
            if name.endswith("then EOF"):
                c.shutdown()
            seen = c.until_closed()
        finally:
            c.close()
        assert all(isinstance(x, sb.Debug) for x in seen), (name, seen)
        assert seen or name.endswith("then EOF"), f"{name}: no Debug packet says why"
        ouch_round_trip()
    for account, password in [("DEMO3", "wrong"), ("NOBODY", "demo3pw"), ("DEMO3", "")]:
        c = p.ouch(account, password)
        try:
            assert c.packet() == sb.LoginRejected(b"A"), (account, password)
            assert c.until_closed() == []
        finally:
            c.close()
    c = p.ouch("DEMO3", session="NOSUCHSESS")
    try:
        assert c.packet() == sb.LoginRejected(b"S")
    finally:
        c.close()
    # stateless rejects keep the session: an OUCH reject code each, at once
    c = p.ouch("DEMO3")
    try:
        c.logged_in()
        for msg, code in [(EnterOrder("e1", b"B", 10, "NOPE", 10_000), b"S"),
                          (EnterOrder("e2", b"B", 10, "ACME", 10_050), b"X"),
                          (EnterOrder("e3", b"B", 0, "ACME", 10_000), b"Z"),
                          (EnterOrder("e4", b"B", 0xFFFF_FFFF, "ACME", 10_000), b"Z"),
                          (EnterOrder("e5", b"B", 10, "ACME", 10_000, time_in_force=5), b"O"),
                          (EnterOrder("e6", b"B", 10, "ACME", 10_000, min_qty=5), b"N"),
                          (ReplaceOrder("e1", "e7", 0, 10_000), b"Z")]:
            c.send_ouch(msg)
            got = c.message()
            assert isinstance(got, OrderRejected) and got.reason == code, (msg, got)
        c.send_ouch(CancelOrder("bad token", 0))
        assert isinstance(c.message(), CancelReject)
    finally:
        c.close()
    ouch_round_trip()

    # ---------------------------------------------------------------- HTTP door
    bad = p.http("DEMO1")
    try:
        for name, method, path, raw, status, code, field in HTTP_BAD:
            body = raw.encode() if isinstance(raw, str) else raw
            r = bad.request(method, path, raw=body)
            assert r.status == status, (name, r.status, r.body)
            assert isinstance(r.body, dict), (name, r.status, r.body[:200])
            err = r.body["error"]
            assert set(err) == {"code", "field", "message"} and err["message"], (name, r.body)
            assert (err["code"], err["field"]) == (code, field), (name, err)
    finally:
        bad.close()
    for account, password in [("DEMO1", "wrong"), ("NOBODY", "x"), (None, None)]:
        c = p.http(account, password)
        try:
            r = c.order("a1")
            assert r.status == 401 and r.body["error"]["code"] == "unauthorized", (account, r.body)
            assert r.headers["WWW-Authenticate"].startswith("Basic")
            assert c.request("GET", "/v1/events").status == 401
        finally:
            c.close()
    r = good_http.request("POST", "/v1/orders", raw=b"x" * 200_000)  # past the body limit
    assert r.status == 413 and r.body["error"]["code"] == "too_large", (r.status, r.body)
    good_http.close()  # the server may close after a refused body
    http_round_trip()

    # ------------------------------------------------- the sequencer's own door
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        frame = sequenced_codec.encode(Sequenced(0, 0, 9, 1, 1, "DEMO1",
                                                 NewOrder("u1", "ACME", Side.BUY, 1, 10_000)))
        for junk in (b"", b"\x00" * 3, frame[:-1], frame + b"x", b"\xff" * len(frame),
                     sequenced_codec.encode(Sequenced(5, 0, 9, 1, 2, "DEMO1",
                                                      NewOrder("u2", "ACME", Side.BUY, 1, 1)))):
            s.sendto(junk, (HOST, p.cfg.sequencer.request_port))
    finally:
        s.close()
    ouch_round_trip()  # after the junk: the sequencer has read it all

    # ------------------------------------------------------------ the verdict
    seq1, garbage1 = sequencer_state(p)
    assert seq1 - seq0 == n_good - 2, "a rejected request was sequenced"
    assert garbage1 - garbage0 == 6  # only what was sent straight to the sequencer
    gw1 = p.digest("gateway-1")
    assert gw1["counters"]["forwarded"] - gw0["counters"]["forwarded"] == n_good - 2
    assert gw1["ouch"]["login_rejected"] - gw0["ouch"]["login_rejected"] == 4
    assert gw1["counters"]["rejected_stateless"] > gw0["counters"]["rejected_stateless"]
    good_ouch.close()
