"""The HTTP door's event stream, in process against a stand-in gateway node."""

from __future__ import annotations

import asyncio
import base64
from types import SimpleNamespace

from aiohttp.test_utils import TestClient, TestServer

from reference_impl.core.gateway_orders import Outbound
from reference_impl.core.messages import Rejected, RejectReason
from reference_impl.gateway import http_door


class _Journal:
    next_out_seq = 1

    def since(self, start: int) -> list:
        return []


class _Node:
    """Just what ``/v1/events`` uses of a GatewayNode."""

    def __init__(self) -> None:
        self.cfg = SimpleNamespace(accounts={"ALICE": "pw"})
        self.book = SimpleNamespace(account=lambda account: _Journal())
        self.sinks: list = []

    def subscribe(self, account: str, sink) -> None:
        self.sinks.append(sink)

    def unsubscribe(self, account: str, sink) -> None:
        if sink in self.sinks:
            self.sinks.remove(sink)


def _entry(n: int) -> Outbound:
    return Outbound(n, Rejected(n, "ALICE", f"t{n}", RejectReason.UNKNOWN_ORDER), 0, "NEW",
                    None, "", -1, 0)


def test_a_slow_consumer_cut_off_gets_its_events_and_then_the_end_of_the_stream(monkeypatch, run_loop) -> None:
    monkeypatch.setattr(http_door, "SSE_QUEUE_MAX", 3)

    async def scenario() -> bytes:
        node = _Node()
        auth = "Basic " + base64.b64encode(b"ALICE:pw").decode()
        async with TestClient(TestServer(http_door.make_app(node))) as client:
            resp = await client.get("/v1/events", headers={"Authorization": auth})
            assert resp.status == 200
            assert await resp.content.readuntil(b"\n\n") == b": connected\n\n"
            (sink,) = node.sinks
            for n in range(1, 5):  # all at once: the queue overflows before the handler runs
                sink(_entry(n))
            assert node.sinks == []  # cut off: unsubscribed
            # the handler writes what it queued and ends the response (it used to wait forever)
            return await asyncio.wait_for(resp.content.read(), 3.0)

    body = run_loop(scenario())
    assert [line for line in body.split(b"\n") if line.startswith(b"id: ")] == \
        [b"id: 1", b"id: 2", b"id: 3"]
