"""HTTP and OUCH clients: the history ops they record, against fakes and a real cluster.

Two layers:

- the HTTP client's ok / fail / info rules against tiny in-process servers
  (a refused port, a server that hangs up, one that never answers, canned
  statuses), the wire client's raw modes and its NotSent / NoAnswer, and
  ``settle.open_orders`` on a literal history;
- both clients against the reference cluster (``ReferenceSut``, ports
  shifted by +8000, or any free block if another run holds it), skipped with
  the reason when the nodes are missing or the cluster does not start.
  Place, cancel and replace through each door give the right ops; the bare
  SoupBinTCP client logs in, is refused, and sends malformed bytes; a gateway
  killed while a request waits for its ack gives ``info``, never ``ok``, and
  ``settle`` then finds the order.

Every test stops what it starts.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time

import pytest

from harness.checkers.exactly_once import check_history_once
from harness.checkers.zero_loss import acknowledged_orders
from harness.clients import (
    HttpClient,
    HttpConnection,
    LoginRejectedError,
    NoAnswer,
    NotSent,
    OuchClient,
    SoupBinClient,
    open_orders,
    settle,
)
from harness.history import FAIL, INFO, OK, History, pairs
from reference_impl.core import soupbin_codec as sb
from reference_impl.core.ouch_messages import EnterOrder, OrderAccepted

OFFSET = 8000


# ------------------------------------------------------------------ fakes


class _Canned(http.server.BaseHTTPRequestHandler):
    """Answers by path: /status/N -> N with a JSON error, /hang -> never, /close -> hang up."""

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path.startswith("/hang"):
            time.sleep(2.0)
            return
        if self.path.startswith("/close"):
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        status = int(self.path.split("/")[2]) if self.path.startswith("/status/") else 200
        if status == 200:
            body = {"outputs": [{"seq": 1, "type": "accepted", "account": "A1", "token": "T1",
                                 "symbol": "ACME", "side": "B", "qty": 1, "price": 100,
                                 "order_ref": 1}]}
        else:
            body = {"error": {"code": "x", "field": None, "message": "canned"}}
        data = json.dumps(body).encode()
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_DELETE = do_GET = _answer


@pytest.fixture
def canned():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


@pytest.mark.parametrize("path, expected", [
    ("", OK), ("/status/400", FAIL), ("/status/429", FAIL), ("/status/401", FAIL),
    ("/status/504", INFO), ("/status/500", INFO), ("/status/503", INFO),
    ("/close", INFO), ("/hang", INFO),
])
def test_http_outcome_rules(canned, path, expected):
    h = History()
    client = HttpClient(canned + path, "A1", "pw", h, process=7, timeout_s=0.5)
    try:
        r = client.new_order("T1", "ACME", "B", 1, 100)
    finally:
        client.close()
    assert r.type == expected, r.value
    inv, done = next(pairs(h.ops))
    assert (inv.process, inv.f, inv.value["account"], inv.value["token"]) == (7, "new", "A1", "T1")
    assert done is not None and done.type == expected and done.value["outputs"] == r.outputs


def test_http_429_and_401_are_fail_and_429_keeps_retry_after(canned):
    h = History()
    with HttpClient(canned + "/status/429", "A1", "pw", h) as client:
        busy = client.new_order("T1", "ACME", "B", 1, 100)
    with HttpClient(canned + "/status/401", "A1", "pw", h) as client:
        refused = client.new_order("T2", "ACME", "B", 1, 100)
    assert (busy.type, busy.value["status"], busy.value["retry_after"]) == (FAIL, 429, "1")
    assert (refused.type, refused.value["status"]) == (FAIL, 401)
    assert refused.value["error"]["code"] == "x"


def test_wire_http_raw_modes_and_what_went_wrong(canned):
    host, port = canned.removeprefix("http://").split(":")
    with HttpConnection(host, int(port), timeout_s=0.5) as conn:
        reply = conn.send_raw(b"GET /status/401 HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
        assert (reply.status, reply.doc()["error"]["message"]) == (401, "canned")
        again = conn.request("POST", "/status/200", {"a": 1})  # same keep-alive connection
        assert again.status == 200 and again.body["outputs"][0]["token"] == "T1"
        conn.send_garbage(b"\x00\xff not http\r\n\r\n")  # returns once the server closes
        with pytest.raises(NoAnswer, match="timeout"):
            conn.request("GET", "/hang")
    with pytest.raises(NotSent):
        HttpConnection("127.0.0.1", _refused_port()).request("GET", "/")


def test_http_refused_connection_is_fail_because_nothing_was_sent():
    h = History()
    r = HttpClient(f"http://127.0.0.1:{_refused_port()}", "A1", "pw", h).cancel("T1")
    assert r.type == FAIL and "not sent" in r.value["reason"]


def test_open_orders_are_info_and_unfinished_order_ops():
    h = History()
    for f, value, end in [("new", {"account": "A", "token": "T1"}, OK),
                          ("new", {"account": "A", "token": "T2"}, INFO),
                          ("replace", {"account": "A", "token": "T1", "new_token": "T3"}, None),
                          ("cancel", {"account": "B", "token": "T9"}, FAIL),
                          ("query", {"account": "A", "token": "T4"}, INFO)]:
        inv = h.invoke(1, f, value)
        if end is not None:
            h.complete(inv, end, {"outputs": []})
    assert open_orders(h.ops) == [("A", "T2"), ("A", "T3")]


# ------------------------------------------------------------------ a real cluster


@pytest.fixture(scope="module")
def sut(tmp_path_factory):
    from harness.sut import SutError
    from harness.sut.ports import NoFreePorts
    from harness.sut.reference import ReferenceSut

    run_dir = tmp_path_factory.mktemp("clients-cluster")
    s = ReferenceSut(run_dir, port_offset=OFFSET)
    try:
        try:
            s.start()
        except NoFreePorts:  # another run holds +8000: any free block will do
            s = ReferenceSut(run_dir)
            s.start()
    except (SutError, NoFreePorts) as exc:
        pytest.skip(f"the reference cluster does not start: {exc}")
    try:
        yield s
    finally:
        s.stop()


def _client(sut, account, history, process, **kw) -> HttpClient:
    return HttpClient(sut.endpoints()["http"], account, sut.accounts()[account], history,
                      process, **kw)


def _ouch(sut, account, history, process, **kw) -> OuchClient:
    host, port = sut.endpoints()["ouch"]
    c = OuchClient(host, port, account, sut.accounts()[account], history, process, **kw)
    c.connect()
    return c


def _outcome(result) -> tuple[str, list[tuple[str, str, str | None]]]:
    return result.type, [(o["type"], o["token"], o.get("reason")) for o in result.outputs]


def test_http_place_replace_cancel(sut):
    h = History()
    with _client(sut, "DEMO1", h, 1) as c:
        assert _outcome(c.new_order("HP1", "ACME", "B", 10, 10000)) == (
            OK, [("accepted", "HP1", None)])
        assert _outcome(c.new_order("HP1", "ACME", "B", 10, 10000)) == (
            FAIL, [("rejected", "HP1", "duplicate_token")])
        assert _outcome(c.replace("HP1", "HP2", 5, 10100)) == (OK, [("replaced", "HP2", None)])
        assert _outcome(c.cancel("HP2", 2)) == (OK, [("canceled", "HP2", "user")])
        assert _outcome(c.cancel("HP2")) == (OK, [("canceled", "HP2", "user")])
        assert _outcome(c.cancel("HP2")) == (FAIL, [("rejected", "HP2", "unknown_order")])
        bad = c.new_order("HP3", "ACME", "B", 10, 10050)  # off tick: stateless, never sequenced
        assert bad.type == FAIL and bad.value["status"] == 400
        assert bad.value["error"]["code"] == "bad_price"
        assert c.order("HP2")["state"] == "canceled"
        assert c.order("NOSUCH") is None
    ops = h.ops
    assert [(i.f, d.type) for i, d in pairs(ops)] == [
        ("new", OK), ("new", FAIL), ("replace", OK), ("cancel", OK), ("cancel", OK),
        ("cancel", FAIL), ("new", FAIL), ("query", OK), ("query", OK)]
    acked, still_open = acknowledged_orders(ops)
    assert set(acked) == {("DEMO1", "HP1"), ("DEMO1", "HP2")} and still_open == []
    assert check_history_once(ops).status == "pass"


def test_ouch_place_replace_cancel_and_a_passive_fill(sut):
    h = History()
    buyer, seller = _ouch(sut, "DEMO2", h, 2), _ouch(sut, "DEMO3", h, 3)
    try:
        assert _outcome(buyer.new_order("OP1", "GLOBEX", "B", 10, 20000)) == (
            OK, [("accepted", "OP1", None)])
        assert _outcome(buyer.replace("OP1", "OP2", 8, 20100)) == (
            OK, [("replaced", "OP2", None)])
        assert _outcome(seller.new_order("OS1", "GLOBEX", "S", 3, 20100, tif="IOC")) == (
            OK, [("accepted", "OS1", None)])
        # intended size 6 of which 3 executed: 3 stay open, 2 are canceled
        reduce = buyer.cancel("OP2", 6)
        assert _outcome(reduce) == (OK, [("canceled", "OP2", "user")])
        assert reduce.outputs[0]["qty"] == 2
        assert _outcome(buyer.cancel("OP2")) == (OK, [("canceled", "OP2", "user")])
        assert _outcome(buyer.cancel("OP2")) == (FAIL, [("rejected", "OP2", "cancel_reject")])
        assert _outcome(buyer.new_order("OP3", "NOSUCH", "B", 1, 100)) == (
            FAIL, [("rejected", "OP3", "unknown_symbol")])
        # the passive side's fill reached the buyer's session as a stream event
        fills = [o for _, o in buyer.stream() if o["type"] == "executed"]
        assert [(o["token"], o["qty"], o["price"], o["liquidity"]) for o in fills] == [
            ("OP2", 3, 20100, "A")]
        assert [s for s, _ in buyer.stream()] == list(range(1, len(buyer.stream()) + 1))
        assert buyer.stream()[0][1]["seq"] is None  # OUCH carries no input seq
    finally:
        buyer.close()
        seller.close()
    assert [(i.value["door"], i.f, d.type) for i, d in pairs(h.ops)] == [
        ("ouch", "new", OK), ("ouch", "replace", OK), ("ouch", "new", OK), ("ouch", "cancel", OK),
        ("ouch", "cancel", OK), ("ouch", "cancel", FAIL), ("ouch", "new", FAIL)]
    acked, _ = acknowledged_orders(h.ops)
    assert set(acked) == {("DEMO2", "OP1"), ("DEMO2", "OP2"), ("DEMO3", "OS1")}


def test_ouch_bad_password_and_resume(sut):
    host, port = sut.endpoints()["ouch"]
    with pytest.raises(LoginRejectedError) as info:
        OuchClient(host, port, "DEMO4", "wrong").connect()
    assert info.value.reason == b"A"
    h = History()
    c = _ouch(sut, "DEMO4", h, 4)
    try:
        assert c.new_order("RS1", "INITECH", "B", 1, 100).type == OK
        seen = c.stream()
        c.close()
        assert c.connect(c.session, 1) == 1  # resume from the start: the journal replays
        deadline = time.monotonic() + 5
        while len(c.stream()) < 2 * len(seen) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert c.stream()[len(seen):] == seen
    finally:
        c.close()


def test_bare_soupbin_client_login_round_trip_refusal_and_raw_bytes(sut):
    host, port = sut.endpoints()["ouch"]
    with SoupBinClient(host, port) as c:
        accepted = c.login("DEMO3", sut.accounts()["DEMO3"])
        assert isinstance(accepted, sb.LoginAccepted)
        c.send_ouch(EnterOrder("RAW1", b"B", 2, "INITECH", 100))
        msg = c.message()
        assert isinstance(msg, OrderAccepted) and msg.order_token == "RAW1"
        assert (c.sent["O"], c.received["A"]) == (1, 1)
    with SoupBinClient(host, port) as c:
        assert c.login("DEMO3", "wrong") == sb.LoginRejected(b"A")
        assert c.packet() is None  # and the server closes
    with SoupBinClient(host, port) as c:
        c.send(sb.LoginRequest("DEMO3", "wrong"))
        with pytest.raises(LoginRejectedError):
            c.logged_in()
    with SoupBinClient(host, port) as c:
        c.send_raw(b"\x00\x01Q")  # an unknown packet type: the server says why and closes
        seen = c.until_closed()
        assert seen and all(isinstance(p, sb.Debug) for p in seen)
    with SoupBinClient(host, port) as c:
        c.send_raw(sb.encode(sb.LoginRequest("DEMO3", sut.accounts()["DEMO3"]))[:20])
        c.shutdown()  # a truncated login, then EOF
        assert all(isinstance(p, sb.Debug) for p in c.until_closed())


def test_killed_gateway_mid_request_is_info_and_settles(sut):
    """Hold acks by pausing the logger (fsync policy), kill the gateway, expect info."""
    assert sut.durability == "fsync"
    gateway, logger = sut.role("gateway"), sut.role("logger")
    h = History()
    ouch = _ouch(sut, "DEMO1", h, 11)
    http_result = {}
    sut.pause(logger)
    try:
        ticket = ouch.submit_new("KG1", "UMBRELLA", "B", 5, 5000)
        http_client = _client(sut, "DEMO2", h, 12)
        t = threading.Thread(target=lambda: http_result.setdefault(
            "r", http_client.new_order("KG2", "UMBRELLA", "S", 5, 5100)))
        t.start()
        deadline = time.monotonic() + 3
        while sut.digest(gateway)["pending_requests"] < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        sut.kill(gateway)
        t.join(10)
        assert ouch.wait(ticket, 5).type == INFO
        assert http_result["r"].type == INFO, http_result["r"].value
        # nothing listens now: a new request surely did not reach the SUT
        assert http_client.new_order("KG3", "UMBRELLA", "S", 5, 5100).type == FAIL
        http_client.close()
    finally:
        sut.resume(logger)
        ouch.close()
        sut.restart(gateway)
    kinds = {i.value["token"]: d.type for i, d in pairs(h.ops)}
    assert kinds == {"KG1": INFO, "KG2": INFO, "KG3": FAIL}
    acked, still_open = acknowledged_orders(h.ops)
    assert not acked and {k for k, _ in still_open} == {("DEMO1", "KG1"), ("DEMO2", "KG2")}
    # both requests were sequenced before the kill: the restarted gateway knows them
    assert settle(sut, h.ops, history=h) == {("DEMO1", "KG1"): "open", ("DEMO2", "KG2"): "open"}
