"""Backpressure: a flood past the core's limit is refused at once; what was admitted completes.

Issue 3, Tests, fifth bullet, both doors, both transport modes. The core
capacity is 64 (limit 57 = 90%), and the primary engine is paused (SIGSTOP)
during the flood, so nothing admitted can be answered until it resumes:
every request that is refused must be refused without the core (HTTP 429
with ``Retry-After: 1`` / OUCH Order Rejected 'C'), long before the pause
ends, and every admitted one must complete after it.

The last test keeps the logger inside the sequencer's ring: the logger can
re-request a lost packet only from that ring (it is the archive itself), so
a logger that falls further behind than ``capacity`` and then misses a
packet can never catch up. Gateways must count its lag.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.nemesis.udp_plan import UdpFaultRates
from reference_impl.core.ouch_messages import EnterOrder, OrderAccepted, OrderRejected
from tests.pipeline.clients import PipelineHttp, wait_until

CAPACITY = 64
LIMIT = int(CAPACITY * 0.9)
FLOOD = 150
PAUSE_S = 1.5
AT_ONCE_S = 0.3  #: a refusal must come this fast; admitted ones wait the whole pause
TRANSPORTS = ["unicast", "multicast"]


def one_order(port: int, i: int):
    c = PipelineHttp(port, "DEMO1")
    try:
        return c.order(f"f{i}", side="B", qty=1, price=10_000 - 100 * (i % 10))
    finally:
        c.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_http_flood_gets_429_at_once_and_admitted_orders_complete(cluster, transport):
    p = cluster(transport=transport, capacity=CAPACITY)
    warm = p.http("DEMO1")
    normal = warm.order("w0", qty=1, price=9_000)
    warm.close()
    assert normal.status == 200
    p.cluster.pause(p.primary)
    try:
        paused_at = time.monotonic()
        with ThreadPoolExecutor(64) as pool:
            futs = [pool.submit(one_order, p.http_port, i) for i in range(FLOOD)]
            refused = wait_until(lambda: [f for f in futs if f.done()] if sum(
                f.done() for f in futs) >= FLOOD - LIMIT else None, 10,
                what="the refusals")
            assert time.monotonic() - paused_at < PAUSE_S
            time.sleep(max(0.0, paused_at + PAUSE_S - time.monotonic()))
            early = [f.result() for f in futs if f.done()]
            p.cluster.resume(p.primary)
            results = [f.result(timeout=10) for f in futs]
    finally:
        p.cluster.resume(p.primary)
    assert refused and all(r.status == 429 for r in early), [r.status for r in early]
    for r in early:
        assert r.headers["Retry-After"] == "1" and r.body["error"]["code"] == "backpressure"
        assert r.latency_s < AT_ONCE_S, r.latency_s
    admitted = [(i, r) for i, r in enumerate(results) if r.status != 429]
    assert 0 < len(admitted) <= LIMIT
    assert len(early) == FLOOD - len(admitted)
    for i, r in admitted:
        assert r.status == 200, (r.status, r.body)
        (acc,) = r.body["outputs"]
        assert (acc["type"], acc["token"]) == ("accepted", f"f{i}")
        assert r.latency_s >= PAUSE_S / 2  # it waited for the paused primary
    c = p.http("DEMO1")
    try:
        opened = {o["token"] for o in c.request("GET", "/v1/orders?state=open").body["orders"]}
    finally:
        c.close()
    assert opened == {"w0"} | {f"f{i}" for i, _ in admitted}
    assert p.digest("gateway-1")["counters"]["backpressure"] == len(early)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_ouch_flood_gets_rejected_c_at_once_and_admitted_orders_complete(cluster, transport):
    p = cluster(transport=transport, capacity=CAPACITY)
    c = p.ouch("DEMO3")
    try:
        c.logged_in()
        p.cluster.pause(p.primary)
        try:
            t0 = time.monotonic()
            for i in range(FLOOD):
                c.send_ouch(EnterOrder(f"z{i}", b"S", 1, "GLOBEX", 20_000 + 100 * (i % 10)))
            early, at_once = [], 0.0
            while True:  # everything that comes back while the primary is still paused
                try:
                    early.append(c.message(timeout_s=AT_ONCE_S))
                except TimeoutError:
                    break
                at_once = time.monotonic() - t0
            time.sleep(max(0.0, t0 + PAUSE_S - time.monotonic()))
            p.cluster.resume(p.primary)
        finally:
            p.cluster.resume(p.primary)
        assert at_once < AT_ONCE_S * 2, at_once
        assert all(isinstance(m, OrderRejected) and m.reason == b"C" for m in early), early
        rejected = {m.order_token for m in early}
        admitted = [f"z{i}" for i in range(FLOOD) if f"z{i}" not in rejected]
        assert 0 < len(admitted) <= LIMIT and len(early) >= FLOOD - LIMIT
        late = c.messages(len(admitted), timeout_s=10)
        assert all(isinstance(m, OrderAccepted) for m in late), late
        assert [m.order_token for m in late] == admitted  # in the order they were sent
    finally:
        c.close()


def test_a_stalled_logger_pushes_back_before_it_falls_out_of_the_ring(cluster):
    """Logger paused, 10% of bus packets lost: it must still catch up once resumed."""
    p = cluster(transport="unicast", capacity=CAPACITY, durability="none",
                relay=UdpFaultRates(drop=0.10))
    client = p.http("DEMO1")
    try:
        # the logger counts in the depth from its first watermark on: pause it only after that
        wait_until(lambda: p.digest("gateway-1")["logger_heard"], timeout_s=5)
        p.cluster.pause("logger")
        try:
            statuses = [client.order(f"l{i}", qty=1, price=9_000).status for i in range(FLOOD)]
        finally:
            p.cluster.resume("logger")
    finally:
        client.close()
    admitted = statuses.count(200)
    assert set(statuses) <= {200, 429} and 0 < admitted <= LIMIT, statuses
    head = p.digest("sequencer")["published_seq"]
    assert head == admitted
    p.settled(head, timeout_s=10)  # every lost packet was still in the sequencer's ring
    assert p.relay.lane_counts()[-1].dropped > 0
