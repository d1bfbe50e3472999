"""The sequencer as a real process on loopback: stamping, dedup, garbage, ring, heartbeats, admin.

The test plays every other component: it sends gateway requests to the
request port, listens on an engine's input port (unicast fan-out) and on the
gateway's status port, and sends re-requests from its own socket.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reference_impl import config as config_mod
from reference_impl.config import HOST
from reference_impl.core import mold_codec, sequenced_codec, status_codec
from reference_impl.core.messages import Cancel, LeaderChange, NewOrder, Sequenced, Side, SnapshotRequest
from reference_impl.edges.process import admin_query
from tests.node_procs import listen, receive_mold, stop, wait_healthy

OFFSET = -8000  #: unique per test module (ports 7000-10080 here)
ROOT = Path(__file__).resolve().parent.parent


def start_node(module: str, cfg: config_mod.ClusterConfig, run_dir: Path) -> subprocess.Popen:
    cfg_path = run_dir / "cluster.yaml"
    cfg_path.write_text(config_mod.dump(cfg))
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--config", str(cfg_path), "--run-dir", str(run_dir)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    return proc


def order(gateway_id: int, request_seq: int, incarnation: int = 1, token: str | None = None) -> bytes:
    body = NewOrder(token or f"T{gateway_id}x{request_seq}", "ACME", Side.BUY, 10, 10_000)
    return sequenced_codec.encode(Sequenced(0, 0, gateway_id, incarnation, request_seq, "DEMO1", body))


@pytest.fixture
def cluster(tmp_path):
    cfg = config_mod.load().shifted(OFFSET).with_overrides(capacity=64, heartbeat_ms=50)
    engine_sock = listen(cfg.engines[0].input_port)
    status_sock = listen(cfg.gateways[0].status_port)
    proc = start_node("reference_impl.sequencer", cfg, tmp_path)
    try:
        wait_healthy(proc, cfg.sequencer.admin_port)
        yield cfg, proc, engine_sock, status_sock
    finally:
        stop(proc)
        engine_sock.close()
        status_sock.close()
    assert proc.returncode == 0, proc.stderr.read().decode()


def send(cfg, datagrams) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for d in datagrams:
            s.sendto(d, (HOST, cfg.sequencer.request_port))


def test_gap_free_seqs_and_duplicates_dropped(cluster) -> None:
    cfg, proc, engine_sock, _ = cluster
    first = [order(7, r) for r in range(1, 51)]
    send(cfg, first + first[10:20] + [order(7, 3)])  # resends of already sequenced requests
    got = receive_mold(engine_sock, 50)
    assert sorted(got) == list(range(1, 51))
    msgs = [sequenced_codec.decode(got[s]) for s in range(1, 51)]
    assert [m.request_seq for m in msgs] == list(range(1, 51))
    assert all(b.ts >= a.ts > 0 for a, b in zip(msgs, msgs[1:]))
    for s in range(1, 51):  # the published bytes are the canonical encoding
        assert got[s] == sequenced_codec.encode(msgs[s - 1])
    time.sleep(0.2)
    assert receive_mold(engine_sock, 1, 0.3) == {}  # the resends were never sequenced
    digest = admin_query(cfg.sequencer.admin_port, "digest")
    assert digest["next_seq"] == 51
    assert digest["counters"]["sequenced"] == 50
    assert digest["counters"]["duplicates"] == 11


def test_garbage_is_counted_and_never_sequenced(cluster) -> None:
    cfg, proc, engine_sock, _ = cluster
    rng = random.Random(3)
    junk = [rng.randbytes(rng.randrange(0, 120)) for _ in range(300)]
    good = order(9, 1)
    junk += [good[:-1], good + b"x", b"\x00" * 8 + good[8:],  # truncated, padded, seq != 0
             sequenced_codec.encode(Sequenced(0, 0, 0, 1, 1, "DEMO1", Cancel("A", 0))),  # gw 0
             sequenced_codec.encode(Sequenced(0, 0, 9, 1, 2, "", SnapshotRequest(5)))]  # control
    junk = [j for j in junk if j != good]
    send(cfg, junk)
    time.sleep(0.3)
    assert admin_query(cfg.sequencer.admin_port, "health")["ok"]
    digest = admin_query(cfg.sequencer.admin_port, "digest")
    assert digest["counters"]["sequenced"] == 0
    assert digest["counters"]["garbage"] == len(junk)
    send(cfg, [good])
    got = receive_mold(engine_sock, 1)
    assert list(got) == [1]  # the first real request still gets seq 1


def test_rerequest_returns_exact_bytes_and_ring_bound(cluster) -> None:
    cfg, proc, engine_sock, _ = cluster
    send(cfg, [order(3, r) for r in range(1, 101)])  # ring holds the last 64
    got = receive_mold(engine_sock, 100)
    assert len(got) == 100
    session = cfg.input_stream.session.encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as r:
        r.settimeout(1.0)
        r.bind((HOST, 0))
        r.sendto(mold_codec.encode_request(session, 40, 30), (HOST, cfg.sequencer.retransmit_port))
        again = receive_mold(r, 30, 1.0)
        assert sorted(again) == list(range(40, 70))
        assert all(again[s] == got[s] for s in again)
        r.sendto(mold_codec.encode_request(session, 1, 10), (HOST, cfg.sequencer.retransmit_port))
        assert receive_mold(r, 1, 0.5) == {}  # gone from the ring: nothing
        r.sendto(mold_codec.encode_request(b"OTHERSESS ", 40, 5), (HOST, cfg.sequencer.retransmit_port))
        r.sendto(b"garbage", (HOST, cfg.sequencer.retransmit_port))
        assert receive_mold(r, 1, 0.5) == {}
    assert admin_query(cfg.sequencer.admin_port, "digest")["counters"]["bad_retransmit_requests"] == 2


def test_heartbeat_and_status_when_idle(cluster) -> None:
    cfg, proc, engine_sock, status_sock = cluster
    send(cfg, [order(4, 1), order(4, 2)])
    assert len(receive_mold(engine_sock, 2)) == 2
    beats = []
    t0 = time.monotonic()
    while len(beats) < 3:
        packet = mold_codec.decode_packet(engine_sock.recv(65535))
        assert packet.is_heartbeat
        beats.append((time.monotonic(), packet.seq))
    assert [s for _, s in beats] == [3, 3, 3]
    assert beats[-1][0] - t0 < 1.0  # every 50 ms, not lazily
    statuses = set()
    while len(statuses) < 1 or 2 not in statuses:
        rec = status_codec.decode(status_sock.recv(100))
        assert isinstance(rec, status_codec.SequencerStatus)
        statuses.add(rec.published_seq)
    assert max(statuses) == 2


def test_leader_change_epoch_rule_and_snapshot(cluster) -> None:
    cfg, proc, engine_sock, _ = cluster
    port = cfg.sequencer.admin_port
    send(cfg, [order(5, 1)])
    assert "error" in admin_query(port, "leader_change 1 2")  # the cluster starts in epoch 1
    assert "error" in admin_query(port, "leader_change 3 2")
    assert admin_query(port, "leader_change 2 2")["seq"] == 2
    assert "error" in admin_query(port, "leader_change 2 1")  # epoch 2 is now current
    assert admin_query(port, "leader_change 3 1")["seq"] == 3
    assert admin_query(port, "snapshot 77")["seq"] == 4
    assert "error" in admin_query(port, "leader_change x y")
    assert "error" in admin_query(port, "frobnicate")
    got = receive_mold(engine_sock, 4)
    bodies = [sequenced_codec.decode(got[s]).body for s in range(1, 5)]
    assert bodies[1:] == [LeaderChange(2, 2), LeaderChange(3, 1), SnapshotRequest(77)]
    assert admin_query(port, "digest")["epoch"] == 3


def test_a_control_body_out_of_range_is_refused_and_burns_no_seq(cluster) -> None:
    cfg, proc, engine_sock, _ = cluster
    port = cfg.sequencer.admin_port
    for bad in ("leader_change 2 70000", "leader_change 4294967296 1", "snapshot -1",
                "snapshot 18446744073709551616", "leader_change 2 -1"):
        reply = admin_query(port, bad)
        assert set(reply) == {"error", "pid"} and "does not fit" in reply["error"], reply
    digest = admin_query(port, "digest")
    assert digest["next_seq"] == 1 and digest["epoch"] == 1  # no seq taken, no epoch raised
    assert admin_query(port, "leader_change 2 1")["seq"] == 1
    assert admin_query(port, "snapshot 9")["seq"] == 2
    got = receive_mold(engine_sock, 2)  # the stream has no hole
    assert [sequenced_codec.decode(got[s]).body for s in (1, 2)] == \
        [LeaderChange(2, 1), SnapshotRequest(9)]
    assert proc.poll() is None


def test_skip_dedup_fault_sequences_resends(tmp_path) -> None:
    cfg = config_mod.load().shifted(OFFSET).with_overrides(faults=("skip_dedup",))
    engine_sock = listen(cfg.engines[0].input_port)
    proc = start_node("reference_impl.sequencer", cfg, tmp_path)
    try:
        wait_healthy(proc, cfg.sequencer.admin_port)
        send(cfg, [order(6, 1), order(6, 1)])
        assert sorted(receive_mold(engine_sock, 2)) == [1, 2]
    finally:
        stop(proc)
        engine_sock.close()


def test_dedup_forgets_fault_sequences_old_resends_only(tmp_path) -> None:
    from reference_impl.sequencer.node import FORGET_AFTER

    cfg = config_mod.load().shifted(OFFSET).with_overrides(faults=("dedup_forgets",))
    engine_sock = listen(cfg.engines[0].input_port)
    proc = start_node("reference_impl.sequencer", cfg, tmp_path)
    n = FORGET_AFTER + 36
    try:
        wait_healthy(proc, cfg.sequencer.admin_port)
        # a recent resend is still refused; one from more than FORGET_AFTER requests back is not
        send(cfg, [order(6, r) for r in range(1, n + 1)] + [order(6, n - 1), order(6, 2)])
        got = receive_mold(engine_sock, n + 1)
        assert sorted(got) == list(range(1, n + 2))
        assert sequenced_codec.decode(got[n + 1]).request_seq == 2
        assert receive_mold(engine_sock, 1, 0.3) == {}
    finally:
        stop(proc)
        engine_sock.close()


def test_multicast_mode_carries_the_same_stream(tmp_path) -> None:
    from reference_impl.edges import transport

    cfg = config_mod.load().shifted(OFFSET).with_overrides(transport="multicast")
    sub = transport.stream_subscriber(cfg, cfg.input_stream, cfg.engines[0].input_port)
    sub.settimeout(2.0)
    proc = start_node("reference_impl.sequencer", cfg, tmp_path)
    try:
        wait_healthy(proc, cfg.sequencer.admin_port)
        send(cfg, [order(8, r) for r in range(1, 31)])
        got = receive_mold(sub, 30)
        assert sorted(got) == list(range(1, 31))
    finally:
        stop(proc)
        sub.close()
