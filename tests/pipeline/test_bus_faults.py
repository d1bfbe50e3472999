"""10,000 orders over a bus that drops, duplicates and reorders; gap fill from ring and archive.

Issue 3, Tests, third bullet (unicast: the relay needs it). The input stream
runs through ``UdpFaultRelay`` (2% drop, 2% duplicate, 2% reorder on every
subscriber's lane) and the core capacity is 256, so the sequencer's ring
holds only the last 256 messages. The orders are sent the way a gateway
sends them, as ``sequenced_codec`` datagrams to ``sequencer.request_port``,
as fast as the sequencer takes them: the point is the bus, and a flood makes
the subscribers fall further behind than the ring, so some gaps can only be
filled from the logger's archive.

At the end: primary and secondary applied every seq and agree on the state
hash (and on every checkpoint); the WAL holds each seq exactly once, every
record is the sequenced message of that seq; ``crucible wal verify`` is clean.
"""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import time
from pathlib import Path

from harness.nemesis.udp_plan import UdpFaultRates
from reference_impl.config import HOST
from reference_impl.core import sequenced_codec
from reference_impl.core.messages import Cancel, NewOrder, Replace, Sequenced, Side
from reference_impl.edges.process import admin_query
from reference_impl.logger.wal_reader import WalReader
from tests.pipeline.clients import wait_until

ROOT = Path(__file__).resolve().parents[2]
N = 10_000
GATEWAY_ID = 7  #: not the cluster's gateway: these requests come from the test
CAPACITY = 256
RATES = UdpFaultRates(drop=0.02, duplicate=0.02, reorder=0.02)
LIMIT = int(CAPACITY * 0.9)  #: the gateways' backpressure limit (default ratio 0.9)
CHUNK = 50  #: datagrams sent back to back
PAUSE_AT, PAUSE_S = 2000, 1.5  #: the secondary stops this long, this far into the flood


def workload(n: int, seed: int = 3) -> list:
    """``n`` request bodies: crossing limit orders, with cancels and replaces of live tokens."""
    rng = random.Random(seed)
    accounts = [f"DEMO{i}" for i in range(1, 5)]
    symbols = ["ACME", "GLOBEX", "INITECH"]
    live: dict[str, list[str]] = {a: [] for a in accounts}
    out = []
    for i in range(n):
        account = accounts[i % 4]
        roll = rng.random()
        if roll < 0.10 and live[account]:
            token = live[account].pop(rng.randrange(len(live[account])))
            body = Cancel(token, rng.choice([0, rng.randint(1, 50)]))
        elif roll < 0.16 and live[account]:
            token = live[account].pop(rng.randrange(len(live[account])))
            new = f"r{i}"
            body = Replace(token, new, rng.randint(1, 100), 10_000 + 100 * rng.randint(-5, 5))
            live[account].append(new)
        else:
            token = f"t{i}"
            body = NewOrder(token, rng.choice(symbols), rng.choice([Side.BUY, Side.SELL]),
                            rng.randint(1, 100), 10_000 + 100 * rng.randint(-5, 5))
            live[account].append(token)
        out.append((account, body))
    return out


def flood(p, bodies: list) -> dict:
    """Send ``bodies`` as fast as a gateway's backpressure lets it; pause the secondary midway.

    Like a gateway, the sender keeps what it sent and the primary engine and
    the logger have not yet taken under ``LIMIT``. The logger counts because
    it can only re-request from the sequencer's ring (it *is* the archive);
    the secondary does not, because a gateway stops counting an engine that
    has been silent for a second, and it is paused for longer than that: it
    comes back thousands of seqs behind the ring and has to fill its gaps
    from the logger's archive.
    """
    seq_port = p.cfg.sequencer.request_port
    primary, logger = p.admin_ports[p.primary], p.admin_ports["logger"]

    def taken() -> int:
        return min(admin_query(primary, "digest")["applied_seq"],
                   admin_query(logger, "digest")["written_seq"])

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    paused_at = None
    try:
        for start in range(0, len(bodies), CHUNK):
            chunk = bodies[start:start + CHUNK]
            wait_until(lambda: start + len(chunk) - taken() <= LIMIT, 30, 0.001,
                       "the primary and the logger to keep up")
            for i, (account, body) in enumerate(chunk, start + 1):
                frame = sequenced_codec.encode(Sequenced(0, 0, GATEWAY_ID, 1, i, account, body))
                sock.sendto(frame, (HOST, seq_port))
            if paused_at is None and start >= PAUSE_AT:
                p.cluster.pause(p.secondary)
                paused_at = time.monotonic()
            elif paused_at is not None and time.monotonic() - paused_at >= PAUSE_S:
                p.cluster.resume(p.secondary)
                paused_at = -1.0
        if paused_at is not None and paused_at > 0:  # the flood outran the pause
            time.sleep(max(0.0, paused_at + PAUSE_S - time.monotonic()))
            paused_at = -1.0
    finally:
        sock.close()
        p.cluster.resume(p.secondary)
    assert paused_at == -1.0


def test_gap_fill_from_ring_and_archive_under_drop_dup_reorder(cluster):
    p = cluster(transport="unicast", capacity=CAPACITY, relay=RATES)
    bodies = workload(N)
    t0 = time.monotonic()
    flood(p, bodies)
    ds = p.settled(N, timeout_s=60)
    seq = p.digest("sequencer")
    assert seq["next_seq"] == N + 1 and seq["counters"]["garbage"] == 0
    elapsed = time.monotonic() - t0

    prim, sec, logger = ds[p.primary], ds[p.secondary], ds["logger"]
    assert prim["applied_seq"] == sec["applied_seq"] == N
    assert prim["state_hash"] == sec["state_hash"]
    assert prim["missing"] == [] and sec["missing"] == [] and logger["missing"] == []
    assert (logger["written_seq"], logger["durable_seq"]) == (N, N)
    # every checkpoint agrees, seq for seq (checkpoint_every = 1000 by default)
    cps = {name: admin_query(p.admin_ports[name], "checkpoints")["checkpoints"]
           for name in (p.primary, p.secondary)}
    assert [c[0] for c in cps[p.primary]] == list(range(1000, N + 1, 1000))
    assert cps[p.primary] == cps[p.secondary]

    # the faults happened, on every lane, and were repaired by re-requests
    lanes = p.relay.lane_counts()
    for lane in lanes:
        assert lane.dropped > 0 and lane.duplicated > 0 and lane.reordered > 0, lanes
    engines = [prim["counters"], sec["counters"]]
    assert all(c["rerequests_sequencer"] > 0 for c in engines), engines
    assert sec["counters"]["rerequests_archive"] > 0, engines
    assert logger["counters"]["archive_packets"] > 0, logger["counters"]
    assert logger["counters"]["archive_from_wal"] > 0, logger["counters"]  # older than any ring
    rerequests = [{k: v for k, v in c.items() if k.startswith("rerequests")} for c in engines]
    print(f"\n{N} orders settled in {elapsed:.1f} s; relay {p.relay.counts().as_dict()}; "
          f"engines {rerequests}; logger {logger['counters']}")

    # the WAL: each seq exactly once, in order, each the sequenced message of that seq
    p.cluster.stop()
    wal_dir = p.cluster.run_dir / p.cfg.logger.data_dir
    seqs = []
    for _first, path, res in WalReader(wal_dir).iter_segments():
        assert res.error is None, (path, res.error)
        for rec in res.records:
            msg = sequenced_codec.decode(rec.payload)
            assert msg.seq == rec.seq
            assert (msg.gateway_id, msg.request_seq) == (GATEWAY_ID, rec.seq)
            assert msg.body == bodies[rec.seq - 1][1]
            seqs.append(rec.seq)
    assert seqs == list(range(1, N + 1))
    r = subprocess.run([sys.executable, "-m", "harness.cli", "wal", "verify", str(wal_dir)],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"records checked: {N}" in r.stdout and "ok" in r.stdout.split()
