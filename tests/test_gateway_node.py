"""The gateway process alone, on real sockets; the test plays sequencer, engine and logger.

Ports: the default config shifted by 8000 (unique to this module). The fake
sequencer is a UDP socket on ``sequencer.request_port``; the fake primary
engine sends MoldUDP64 output packets to the gateway's ``output_port``; the
fake logger, engines and sequencer send status records to ``status_port``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.clients import HttpConnection, SoupBinClient
from reference_impl import config
from reference_impl.core import mold_codec, ouch_codec, output_codec, sequenced_codec, status_codec
from reference_impl.core import soupbin_codec as sb
from reference_impl.core.messages import (
    Accepted,
    Cancel,
    Canceled,
    CancelReason,
    Executed,
    NewOrder,
    Sequenced,
    Side,
)
from reference_impl.core.ouch_messages import EnterOrder, OrderAccepted, OrderRejected
from reference_impl.edges.process import admin_query

OFFSET = 8000  #: unique per test module (ports 23000-26080 here, below the ephemeral range)
HOST = "127.0.0.1"
REQUEST_TIMEOUT_S = 1.5


class FakeCore:
    """Sequencer, primary engine and logger, as far as one gateway can tell."""

    def __init__(self, cfg: config.ClusterConfig) -> None:
        self.cfg = cfg
        self.gw = cfg.gateways[0]
        self.seq_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.seq_sock.bind((HOST, cfg.sequencer.request_port))
        self.send_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.session = cfg.output_stream.session.encode()
        self.next_in = 1
        self.next_out = 1

    def requests(self, timeout: float = 3.0, expect: int = 1) -> list[Sequenced]:
        """Gateway requests received within ``timeout`` (stops early at ``expect``)."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < expect and time.monotonic() < deadline:
            self.seq_sock.settimeout(max(deadline - time.monotonic(), 0.001))
            try:
                data = self.seq_sock.recv(65535)
            except (TimeoutError, socket.timeout):
                break
            out.append(sequenced_codec.decode(data))
        return out

    def drain(self) -> list[Sequenced]:
        return self.requests(timeout=0.05, expect=10**6)

    def sequence(self, req: Sequenced) -> int:
        seq = self.next_in
        self.next_in += 1
        return seq

    def emit(self, req: Sequenced, outputs: list) -> None:
        """Send ``outputs`` (already carrying the input seq) as one packet."""
        records = [output_codec.encode(output_codec.OutputRecord(
            i, len(outputs), 1, req.gateway_id, req.request_seq, time.time_ns(),
            time.monotonic_ns(), time.monotonic_ns(), out)) for i, out in enumerate(outputs)]
        packet = mold_codec.encode_packet(self.session, self.next_out, records)
        self.next_out += len(records)
        self.send_sock.sendto(packet, (HOST, self.gw.output_port))

    def status(self, record) -> None:
        self.send_sock.sendto(status_codec.encode(record), (HOST, self.gw.status_port))

    def durable(self, seq: int) -> None:
        self.status(status_codec.LoggerWatermark(1, seq, seq, time.monotonic_ns()))

    def close(self) -> None:
        self.seq_sock.close()
        self.send_sock.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    run_dir: Path = tmp_path_factory.mktemp("gateway")
    cfg = config.load().shifted(OFFSET)
    path = run_dir / "cluster.yaml"
    path.write_text(config.dump(cfg))
    core = FakeCore(cfg)
    proc = subprocess.Popen(
        [sys.executable, "-m", "reference_impl.gateway", "--config", str(path),
         "--run-dir", str(run_dir), "--id", "1", "--request-timeout-s", str(REQUEST_TIMEOUT_S)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if admin_query(cfg.gateways[0].admin_port, "health", 0.2)["ok"]:
                    with HttpConnection(HOST, cfg.gateways[0].http_port, timeout_s=1) as conn:
                        if conn.request("GET", "/v1/health").status == 200:
                            break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gateway did not start: {proc.stdout.read().decode()}")
            time.sleep(0.05)
        yield cfg, core, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        core.close()
    assert proc.returncode == 0, proc.stdout.read().decode()


# ----------------------------------------------------------------- HTTP helpers


def call(cfg, method: str, path: str, body=None, user="DEMO1", password="demo1pw",
         raw: bytes | None = None, timeout: float = 10):
    """One request on a connection of its own: ``(status, headers, JSON body or None)``."""
    auth = (user, password) if user else None
    with HttpConnection(HOST, cfg.gateways[0].http_port, auth, timeout, keep_alive=False) as conn:
        reply = conn.request(method, path, body, raw)
    return reply.status, reply.headers, reply.body


def _order(token: str, **kw) -> dict:
    return {"token": token, "symbol": "ACME", "side": "B", "qty": 10, "price": 10_000, **kw}


# ------------------------------------------------------------------- HTTP door


def test_health_and_auth(cluster) -> None:
    cfg, core, _ = cluster
    assert call(cfg, "GET", "/v1/health", user=None)[0] == 200
    # the default config's ``event_loop: auto`` runs uvloop, a dependency on Linux
    from reference_impl.gateway.main import event_loop_name

    health = admin_query(cfg.gateways[0].admin_port, "health", 1.0)
    assert health["event_loop"] == event_loop_name("auto")
    status, headers, body = call(cfg, "GET", "/v1/orders", password="wrong")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert headers["WWW-Authenticate"].startswith("Basic")
    assert call(cfg, "POST", "/v1/orders", _order("x1"), user=None)[0] == 401
    assert call(cfg, "POST", "/v1/orders", _order("x1"), user="NOBODY", password="x")[0] == 401
    assert core.drain() == []


def test_http_order_is_answered_only_after_the_durable_watermark(cluster) -> None:
    cfg, core, _ = cluster
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(call, cfg, "POST", "/v1/orders", _order("h1"))
        (req,) = core.requests()
        assert (req.seq, req.gateway_id, req.account) == (0, 1, "DEMO1")
        assert req.body == NewOrder("h1", "ACME", Side.BUY, 10, 10_000)
        seq = core.sequence(req)
        core.emit(req, [Accepted(seq, "DEMO1", "h1", "ACME", Side.BUY, 10, 10_000, 1)])
        time.sleep(0.3)
        assert not fut.done()  # outputs are in, but not durable
        core.status(status_codec.LoggerWatermark(1, seq, seq - 1, time.monotonic_ns()))
        time.sleep(0.2)
        assert not fut.done()  # written, not fsynced
        core.durable(seq)
        status, _, body = fut.result(timeout=5)
    assert status == 200
    assert body["outputs"] == [{"seq": seq, "type": "accepted", "account": "DEMO1",
                                "token": "h1", "symbol": "ACME", "side": "B", "qty": 10,
                                "price": 10_000, "order_ref": 1}]
    stages = body["stages"]
    assert stages["input_seq"] == seq
    assert 0 < stages["gateway_in_ns"] <= stages["durable_ns"] <= stages["gateway_out_ns"]
    assert call(cfg, "GET", "/v1/orders/h1")[2]["state"] == "open"
    opened = call(cfg, "GET", "/v1/orders?state=open")[2]["orders"]
    assert [o["token"] for o in opened] == ["h1"]
    reply = admin_query(cfg.gateways[0].admin_port, "stages 5")
    assert reply["stages"][-1][reply["fields"].index("input_seq")] == seq


@pytest.mark.parametrize("raw, code, field", [
    (b"{not json", "malformed_json", "body"),
    (b"[1, 2]", "malformed_json", "body"),
    (json.dumps({"symbol": "ACME", "side": "B", "qty": 1, "price": 100}).encode(),
     "missing_field", "token"),
    (json.dumps(_order("b1", qty="10")).encode(), "wrong_type", "qty"),
    (json.dumps(_order("b1", price=100.0)).encode(), "wrong_type", "price"),
    (json.dumps(_order("b1", qty=True)).encode(), "wrong_type", "qty"),
    (json.dumps(_order("b1", colour="red")).encode(), "unknown_field", "colour"),
    (json.dumps(_order("b1", side="X")).encode(), "bad_value", "side"),
    (json.dumps(_order("b1", qty=10**40)).encode(), "bad_qty", "qty"),
    (json.dumps(_order("b1", price=10**40)).encode(), "bad_price", "price"),
    (json.dumps(_order("b1", price=10_050)).encode(), "bad_price", "price"),
    (json.dumps(_order("b1", symbol="NOPE")).encode(), "unknown_symbol", "symbol"),
    (json.dumps(_order("b" * 15)).encode(), "bad_token", "token"),
    (json.dumps(_order("b1", min_qty=5)).encode(), "min_qty_not_ioc", "min_qty"),
])
def test_bad_http_requests_get_400_and_are_never_sequenced(cluster, raw, code, field) -> None:
    cfg, core, _ = cluster
    core.drain()
    status, _, body = call(cfg, "POST", "/v1/orders", raw=raw)
    assert status == 400
    assert body["error"]["code"] == code and body["error"]["field"] == field
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert core.requests(timeout=0.2) == []


def test_backpressure_gives_429_at_once_and_cancels_still_pass(cluster) -> None:
    cfg, core, _ = cluster
    core.drain()
    now = time.monotonic_ns()
    core.status(status_codec.SequencerStatus(0, 10**6, now))
    core.status(status_codec.EngineStatus(2, False, 1, 0, 0, now))
    time.sleep(0.1)
    try:
        t0 = time.monotonic()
        status, headers, body = call(cfg, "POST", "/v1/orders", _order("bp1"))
        assert status == 429 and headers["Retry-After"] == "1"
        assert body["error"]["code"] == "backpressure"
        assert time.monotonic() - t0 < 0.5
        assert call(cfg, "POST", "/v1/orders/h1/replace",
                    {"new_token": "h2", "qty": 5, "price": 10_000})[0] == 429
        assert core.requests(timeout=0.2) == []
        with ThreadPoolExecutor(1) as pool:
            fut = pool.submit(call, cfg, "DELETE", "/v1/orders/h1?qty=0")
            (req,) = core.requests()
            assert req.body == Cancel("h1", 0)
            seq = core.sequence(req)
            core.emit(req, [Canceled(seq, "DEMO1", "h1", 10, CancelReason.USER)])
            core.durable(seq)
            status, _, body = fut.result(timeout=5)
        assert status == 200 and body["outputs"][0]["type"] == "canceled"
        assert call(cfg, "GET", "/v1/orders/h1")[2]["state"] == "canceled"
    finally:
        core.status(status_codec.EngineStatus(2, False, 1, 10**6, 0, time.monotonic_ns()))
        # the logger's lag counts too (written only: the fsync gate keeps its durable seq)
        core.status(status_codec.LoggerWatermark(1, 10**6, 0, time.monotonic_ns()))
        time.sleep(0.1)


def test_unsequenced_request_is_resent_then_504_and_settled_by_get(cluster) -> None:
    cfg, core, _ = cluster
    core.drain()
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(call, cfg, "POST", "/v1/orders", _order("t504"))
        first, again = core.requests(timeout=1.0, expect=2)
        assert sequenced_codec.encode(first) == sequenced_codec.encode(again)  # a resend
        status, _, body = fut.result(timeout=5)
    assert status == 504 and body["error"]["code"] == "timeout"
    assert "GET /v1/orders/t504" in body["error"]["message"]
    assert call(cfg, "GET", "/v1/orders/t504")[2] == {"token": "t504", "state": "pending"}
    seq = core.sequence(first)
    core.emit(first, [Accepted(seq, "DEMO1", "t504", "ACME", Side.BUY, 10, 10_000, 2)])
    core.durable(seq)
    time.sleep(0.2)
    assert call(cfg, "GET", "/v1/orders/t504")[2]["state"] == "open"
    assert call(cfg, "GET", "/v1/orders/nope")[0] == 404
    core.drain()


def test_sse_delivers_the_passive_fill_to_the_other_account(cluster) -> None:
    cfg, core, _ = cluster
    door = HttpConnection(HOST, cfg.gateways[0].http_port, ("DEMO2", "demo2pw"), timeout_s=5)
    events = door.events()
    assert events.resp.getheader("Content-Type").startswith("text/event-stream")
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(call, cfg, "POST", "/v1/orders", _order("agg1", side="S", qty=3))
        (req,) = core.requests()
        seq = core.sequence(req)
        core.emit(req, [Accepted(seq, "DEMO1", "agg1", "ACME", Side.SELL, 3, 10_000, 3),
                        Executed(seq, "DEMO2", "rest1", 3, 10_000, 1, "A"),
                        Executed(seq, "DEMO1", "agg1", 3, 10_000, 1, "R")])
        core.durable(seq)
        status, _, body = fut.result(timeout=5)
    assert status == 200
    assert [o["account"] for o in body["outputs"]] == ["DEMO1", "DEMO1"]
    event = events.next()
    assert events.comments >= 1  # the connected comment came first
    assert (event.id, event.event) == (1, "executed")
    assert event.data["account"] == "DEMO2" and event.data["liquidity"] == "A"
    assert event.data["seq"] == seq
    events.close()
    # resume: Last-Event-ID 0 replays from the account's first outbound message
    events = door.events(last_event_id=0)
    event = events.next()
    assert (event.id, event.event) == (1, "executed")
    events.close()


# ------------------------------------------------------------------- OUCH door


def ouch(cfg, user: str | None = "DEMO3", password: str = "demo3pw", session: str = "",
         seq: int = 0) -> SoupBinClient:
    """A SoupBinTCP connection; with ``user``, its Login Request is sent (not awaited)."""
    c = SoupBinClient(HOST, cfg.gateways[0].ouch_port, timeout_s=5)
    if user is not None:
        c.send(sb.LoginRequest(user, password, session, seq))
    return c


def closed_by_server(c: SoupBinClient) -> bool:
    """Whether the server closes the connection, saying nothing but Debug before it does."""
    return all(isinstance(p, sb.Debug) for p in c.until_closed())


def test_ouch_login_rejects(cluster) -> None:
    cfg, _, _ = cluster
    c = ouch(cfg, "DEMO3", "nope")
    assert c.packet() == sb.LoginRejected(b"A")
    assert c.packet() is None
    c = ouch(cfg, "NOBODY", "x")
    assert c.packet() == sb.LoginRejected(b"A")
    c = ouch(cfg, "DEMO3", "demo3pw", session="OLDSESSION")
    assert c.packet() == sb.LoginRejected(b"S")


def test_ouch_enter_order_round_trip_and_resume(cluster) -> None:
    cfg, core, _ = cluster
    core.drain()
    c = ouch(cfg)
    accepted = c.packet()
    assert isinstance(accepted, sb.LoginAccepted) and accepted.sequence_number == 1
    c.send_ouch(EnterOrder("o1", b"B", 10, "ACME", 10_000))
    (req,) = core.requests()
    assert req.account == "DEMO3" and req.body.token == "o1"
    seq = core.sequence(req)
    core.emit(req, [Accepted(seq, "DEMO3", "o1", "ACME", Side.BUY, 10, 10_000, 7)])
    core.durable(seq)
    data = c.packet()
    assert isinstance(data, sb.SequencedData)
    msg = ouch_codec.decode_outbound(data.payload)
    assert isinstance(msg, OrderAccepted)
    assert (msg.order_token, msg.shares, msg.stock, msg.price, msg.order_reference_number) == \
        ("o1", 10, "ACME", 10_000, 7)
    # a stateless reject: at once, sequenced, never sent to the sequencer
    c.send_ouch(EnterOrder("o2", b"B", 10, "ACME", 10_050))
    rejected = ouch_codec.decode_outbound(c.packet().payload)
    assert isinstance(rejected, OrderRejected) and rejected.reason == b"X"
    assert core.requests(timeout=0.2) == []
    c.send(sb.LogoutRequest())
    assert closed_by_server(c)
    # resume: log in again asking for message 2 (the reject)
    session = accepted.session
    r = ouch(cfg, session=session, seq=2)
    again = r.packet()
    assert again == sb.LoginAccepted(session, 2)
    replayed = ouch_codec.decode_outbound(r.packet().payload)
    assert isinstance(replayed, OrderRejected) and replayed.order_token == "o2"
    r.close()


def test_server_heartbeat_when_idle(cluster) -> None:
    cfg, _, _ = cluster
    c = ouch(cfg, "DEMO4", "demo4pw")
    assert isinstance(c.packet(), sb.LoginAccepted)
    assert isinstance(c.packet(heartbeats=True), sb.ServerHeartbeat)
    c.close()


@pytest.mark.parametrize("bad", [
    b"\x00\x10L" + b"DEMO3 ",  # a truncated login, then the client half-closes
    b"\x00\x05Lxxxx",  # a login whose length is not the login's
    b"\xff\xffU" + b"x" * 100,  # an oversized length
    b"\x00\x01Q",  # an unknown packet type
    b"\x00\x01S",  # a server-only packet type from a client
])
def test_framing_errors_close_only_that_session(cluster, bad: bytes) -> None:
    cfg, core, _ = cluster
    good = ouch(cfg, "DEMO4", "demo4pw")
    assert isinstance(good.packet(), sb.LoginAccepted)
    c = ouch(cfg, None)
    c.send_raw(bad)
    if bad.startswith(b"\x00\x10L"):
        c.shutdown()
    assert closed_by_server(c)
    c.close()
    # the other session still works: a round trip with a stateless reject
    good.send_ouch(EnterOrder("g1", b"B", 0, "ACME", 10_000))
    msg = ouch_codec.decode_outbound(good.packet().payload)
    assert isinstance(msg, OrderRejected) and msg.reason == b"Z"
    good.close()
    assert core.requests(timeout=0.1) == []


def test_bad_ouch_message_after_login_disconnects(cluster) -> None:
    cfg, core, _ = cluster
    c = ouch(cfg, "DEMO4", "demo4pw")
    assert isinstance(c.packet(), sb.LoginAccepted)
    c.send(sb.UnsequencedData(b"O" + b"x" * 10))  # an Enter Order of the wrong length
    assert closed_by_server(c)
    assert core.requests(timeout=0.1) == []


def test_admin_digest(cluster) -> None:
    cfg, _, proc = cluster
    d = admin_query(cfg.gateways[0].admin_port, "digest")
    assert d["pid"] == proc.pid
    for key in ("accounts", "open_orders", "pending_requests", "watermarks", "counters"):
        assert key in d
    for key in ("rejected_stateless", "backpressure", "resends"):
        assert d["counters"][key] >= 1
    assert d["ouch"]["protocol_errors"] >= 1 and d["ouch"]["login_rejected"] >= 1
