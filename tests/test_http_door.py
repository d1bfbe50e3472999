"""The HTTP door in process: against a stand-in port, and against a real node's port."""

from __future__ import annotations

import asyncio
import base64
import json

from aiohttp.test_utils import TestClient, TestServer

from reference_impl import config
from reference_impl.core.gateway_orders import Outbound
from reference_impl.core.messages import Rejected, RejectReason
from reference_impl.gateway import http_door
from reference_impl.gateway.node import GatewayNode

#: unique per test module: the node binds only its output (15201), admin (15304) and status
#: (15401) ports; the door runs on a test server's ephemeral port
OFFSET = -2000
SETTINGS = http_door.HttpSettings(gateway_id=1, durability="fsync")


def _auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class _Journal:
    next_out_seq = 1

    def since(self, start: int) -> list:
        return []


class _Port:
    """Just what ``/v1/events`` uses of a ``GatewayPort``."""

    def __init__(self) -> None:
        self.sinks: list = []

    def check_login(self, account: str, password: str) -> bool:
        return (account, password) == ("ALICE", "pw")

    def account(self, name: str) -> None:
        return None

    def subscribe(self, account: str, sink) -> _Journal:
        self.sinks.append(sink)
        return _Journal()

    def unsubscribe(self, account: str, sink) -> None:
        if sink in self.sinks:
            self.sinks.remove(sink)


def _entry(n: int) -> Outbound:
    return Outbound(n, Rejected(n, "ALICE", f"t{n}", RejectReason.UNKNOWN_ORDER), 0, "NEW",
                    None, "", -1, 0)


def test_a_slow_consumer_cut_off_gets_its_events_and_then_the_end_of_the_stream(monkeypatch, run_loop) -> None:
    monkeypatch.setattr(http_door, "SSE_QUEUE_MAX", 3)

    async def scenario() -> bytes:
        port = _Port()
        async with TestClient(TestServer(http_door.make_app(port, SETTINGS))) as client:
            resp = await client.get("/v1/events", headers=_auth("ALICE", "pw"))
            assert resp.status == 200
            assert await resp.content.readuntil(b"\n\n") == b": connected\n\n"
            (sink,) = port.sinks
            sink([_entry(n) for n in range(1, 5)])  # one batch: the queue overflows at once
            assert port.sinks == []  # cut off: unsubscribed
            # the handler writes what it queued and ends the response (it used to wait forever)
            return await asyncio.wait_for(resp.content.read(), 3.0)

    body = run_loop(scenario())
    assert [line for line in body.split(b"\n") if line.startswith(b"id: ")] == \
        [b"id: 1", b"id: 2", b"id: 3"]


def test_a_refused_request_is_journalled_and_streamed_as_the_ouch_door_s_are(run_loop) -> None:
    cfg = config.load().shifted(OFFSET)
    auth = _auth("DEMO1", "demo1pw")

    async def scenario() -> tuple[int, dict, bytes, int, list[Outbound]]:
        node = GatewayNode(cfg, 1, 7)
        other: list[Outbound] = []  # another subscriber of the account, as an OUCH connection
        node.subscribe("DEMO1", other.extend)
        try:
            async with TestClient(TestServer(http_door.make_app(node, SETTINGS))) as client:
                resp = await client.post("/v1/orders", headers=auth, json={
                    "token": "h1", "symbol": "ACME", "side": "B", "qty": 10, "price": 10_050})
                status, body = resp.status, await resp.json()
                events = await client.get("/v1/events?last_event_id=0", headers=auth)
                event = await asyncio.wait_for(events.content.readuntil(b"\n\n"), 3.0)
                events.close()
                order = await client.get("/v1/orders/h1", headers=auth)
                return status, body, event, order.status, other
        finally:
            node.close(asyncio.get_running_loop())

    status, body, event, order_status, other = run_loop(scenario())
    assert status == 400 and body["error"]["code"] == "bad_price"  # the answer is unchanged
    rejected = {"seq": 0, "type": "rejected", "account": "DEMO1", "token": "h1",
                "reason": "bad_price"}
    lines = event.decode().splitlines()
    assert lines[:2] == ["id: 1", "event: rejected"]
    assert json.loads(lines[2].removeprefix("data: ")) == rejected
    assert [(e.out_seq, e.output) for e in other] == [
        (1, Rejected(0, "DEMO1", "h1", RejectReason.BAD_PRICE))]
    assert order_status == 404  # never sequenced: no order state
