"""The ack gate, proven from outside: client-side clocks only, never the gateway's stamps.

Issue 3, Tests, second bullet. The logger's test-only ``fsync_delay_ms``
makes every fdatasync take at least 50 ms more, so under ``fsync`` no
acknowledgement may reach a client sooner than 50 ms after its request;
under ``none`` the same delay must not show. Under ``replicated`` a paused
(SIGSTOP) secondary holds every acknowledgement until it is resumed. The
fault ``ack_before_durable`` is the negative control: the same measurement
must see it break the gate, so the test is known to be able to fail.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from reference_impl.core.ouch_messages import EnterOrder, OrderAccepted
from tests.pipeline.clients import wait_until

DELAY_MS = 50
ORDERS = 20


def http_latencies(p, n: int = ORDERS, prefix: str = "g") -> list[float]:
    """Client-side latency of ``n`` resting orders, one at a time (keep-alive, so no connect)."""
    client = p.http("DEMO1")
    try:
        client.request("GET", "/v1/orders")  # open the connection outside the measurement
        out = []
        for i in range(n):
            r = client.order(f"{prefix}{i}", side="B", qty=1, price=9_000 + 100 * (i % 5))
            assert r.status == 200, r.body
            assert r.body["outputs"][0]["type"] == "accepted"
            out.append(r.latency_s)
        return out
    finally:
        client.close()


def ouch_latencies(p, n: int = 10) -> list[float]:
    c = p.ouch("DEMO3")
    try:
        c.logged_in()
        out = []
        for i in range(n):
            t0 = time.monotonic()
            c.send_ouch(EnterOrder(f"q{i}", b"S", 1, "GLOBEX", 30_000 + 100 * i))
            msg = c.message()
            out.append(time.monotonic() - t0)
            assert isinstance(msg, OrderAccepted) and msg.order_token == f"q{i}"
        return out
    finally:
        c.close()


def summary(xs: list[float]) -> str:
    ms = sorted(x * 1000 for x in xs)
    return f"min {ms[0]:.1f} ms, median {statistics.median(ms):.1f} ms, max {ms[-1]:.1f} ms"


@pytest.mark.parametrize("transport", ["unicast", "multicast"])
def test_fsync_no_ack_before_the_delayed_fsync(cluster, transport):
    p = cluster(durability="fsync", transport=transport, fsync_delay_ms=DELAY_MS)
    lat = http_latencies(p)
    assert min(lat) >= DELAY_MS / 1000, f"an HTTP ack beat the fsync: {summary(lat)}"
    lat = ouch_latencies(p)
    assert min(lat) >= DELAY_MS / 1000, f"an OUCH ack beat the fsync: {summary(lat)}"
    d = p.digest("logger")
    assert d["fsyncs"] >= 1 and d["durable_seq"] >= ORDERS


def test_none_acks_do_not_wait_for_the_delayed_fsync(cluster):
    p = cluster(durability="none", fsync_delay_ms=DELAY_MS)
    lat = http_latencies(p)
    assert statistics.median(lat) < DELAY_MS / 2000, summary(lat)
    assert min(lat) < DELAY_MS / 5000, summary(lat)


def test_negative_control_ack_before_durable_is_caught(cluster):
    """The measurement above sees a gate that does not wait (test-only fault)."""
    p = cluster(durability="fsync", fsync_delay_ms=DELAY_MS, faults=["ack_before_durable"])
    lat = http_latencies(p)
    assert min(lat) < DELAY_MS / 1000, summary(lat)


@pytest.mark.parametrize("transport", ["unicast", "multicast"])
def test_replicated_holds_acks_while_the_secondary_is_paused(cluster, transport):
    p = cluster(durability="replicated", transport=transport)
    client = p.http("DEMO2")
    try:
        assert client.order("r0", side="S", qty=1, price=50_000).status == 200  # gate open
        p.cluster.pause(p.secondary)
        try:
            with ThreadPoolExecutor(1) as pool:
                fut = pool.submit(client.order, "r1", side="S", qty=1, price=50_100)
                arrived: list[float] = []
                fut.add_done_callback(lambda _: arrived.append(time.monotonic()))
                # the primary answered and the logger wrote it: only the secondary is missing
                gw = wait_until(lambda: (lambda d: d if d["held_inputs"] >= 1 else None)(
                    p.digest("gateway-1")), 3.0, what="the gateway to hold the input")
                assert gw["watermarks"]["written"] > gw["watermarks"]["secondary_applied"]
                time.sleep(0.6)
                assert not fut.done(), "an ack left while the secondary was paused"
                resumed_at = time.monotonic()
                p.cluster.resume(p.secondary)
                r = fut.result(timeout=5)
        finally:
            p.cluster.resume(p.secondary)
        assert r.status == 200 and r.body["outputs"][0]["token"] == "r1"
        assert arrived[0] >= resumed_at
        assert p.digest("gateway-1")["held_inputs"] == 0
    finally:
        client.close()
