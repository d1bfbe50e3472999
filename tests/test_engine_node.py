"""The engine node as real processes on loopback: outputs, gap fill, secondary, checkpoints, faults.

The test plays every other component: the sequencer (it encodes ``Sequenced``
frames, packs them into MoldUDP64 packets and sends them to each engine's
input port, and answers re-requests on the sequencer's retransmit port), the
logger's archive (re-requests that reach ``logger.archive_port``) and a
gateway (it listens on the gateway's output and status ports). Expected
outputs and hashes come from an offline ``Engine`` fed the same messages.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reference_impl import config as config_mod
from reference_impl.config import HOST, ClusterConfig
from reference_impl.core import mold_codec, output_codec, sequenced_codec, status_codec
from reference_impl.core.engine import Engine
from reference_impl.core.messages import Body, Cancel, Heartbeat, NewOrder, Sequenced, Side
from reference_impl.edges import transport
from reference_impl.edges.process import admin_query
from tests import node_procs
from tests.node_procs import stop

OFFSET = -12000  #: unique per test module (ports 3000-6080 here, below the ephemeral range)
ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ helpers


def listen(port: int, timeout_s: float = 2.0) -> socket.socket:
    return node_procs.listen(port, timeout_s, rcvbuf=4 << 20)


def subscribe(cfg: ClusterConfig, port: int, timeout_s: float = 2.0) -> socket.socket:
    """A gateway's output-stream subscription, in the config's transport mode."""
    sock = transport.stream_subscriber(cfg, cfg.output_stream, port)
    sock.settimeout(timeout_s)
    return sock


def start_engine(cfg: ClusterConfig, run_dir: Path, engine_id: int,
                 role: str | None = None) -> subprocess.Popen:
    cfg_path = run_dir / "cluster.yaml"
    cfg_path.write_text(config_mod.dump(cfg))
    argv = [sys.executable, "-m", "reference_impl.engine", "--config", str(cfg_path),
            "--run-dir", str(run_dir), "--id", str(engine_id)]
    if role:
        argv += ["--role", role]
    log_path = run_dir / f"engine{engine_id}.log"
    with open(log_path, "wb") as err:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err,
                                env={**os.environ})
    proc.log_path = log_path  # type: ignore[attr-defined]
    return proc


def log_of(proc: subprocess.Popen) -> str:
    return proc.log_path.read_text()  # type: ignore[attr-defined]


def wait_healthy(proc: subprocess.Popen, admin_port: int, timeout_s: float = 10.0) -> None:
    node_procs.wait_healthy(proc, admin_port, timeout_s, what="engine")


def wait_digest(port: int, pred, timeout_s: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout_s
    digest: dict = {}
    while time.monotonic() < deadline:
        digest = admin_query(port, "digest")
        if pred(digest):
            return digest
        time.sleep(0.02)
    raise AssertionError(f"condition never held; last digest {digest}")


class FakeSequencer:
    """Builds the input stream, publishes it to the engines, answers re-requests."""

    def __init__(self, cfg: ClusterConfig) -> None:
        self.cfg = cfg
        self.session = cfg.input_stream.session.encode()
        self.publisher = transport.stream_publisher(cfg, cfg.input_stream,
                                                    [e.input_port for e in cfg.engines])
        self.retransmit = listen(cfg.sequencer.retransmit_port, 1.0)
        self.archive = listen(cfg.logger.archive_port, 1.0)
        self.messages: list[Sequenced] = []
        self.frames: dict[int, bytes] = {}

    def add(self, body: Body, account: str = "DEMO1", gateway_id: int = 1) -> Sequenced:
        seq = len(self.messages) + 1
        msg = Sequenced(seq, time.time_ns(), gateway_id, 1, 100 + seq, account, body)
        self.messages.append(msg)
        self.frames[seq] = sequenced_codec.encode(msg)
        return msg

    def packet(self, first: int, count: int) -> bytes:
        return mold_codec.encode_packet(self.session, first,
                                        [self.frames[s] for s in range(first, first + count)])

    def send(self, datagram: bytes) -> None:
        self.publisher.send(datagram)

    def publish(self, first: int, count: int) -> None:
        self.send(self.packet(first, count))

    def heartbeat(self) -> None:
        self.send(mold_codec.encode_heartbeat(self.session, len(self.messages) + 1))

    def answer(self, sock: socket.socket) -> mold_codec.MoldRequest:
        """Receive one re-request on ``sock`` and answer it from the frames."""
        data, addr = sock.recvfrom(100)
        req = mold_codec.decode_request(data)
        count = min(req.count, len(self.messages) - req.seq + 1)
        sock.sendto(self.packet(req.seq, count), addr)
        return req

    def offline(self) -> Engine:
        engine = Engine(self.cfg.instrument_table())
        for m in self.messages:
            engine.apply(m)
        return engine

    def close(self) -> None:
        self.publisher.close()
        for s in (self.retransmit, self.archive):
            s.close()


def receive_outputs(sock: socket.socket, want: int, timeout_s: float = 3.0):
    """Output records by output-stream seq (heartbeats skipped) until ``want`` arrived."""
    return node_procs.receive_mold(sock, want, timeout_s, b"CRUCOUT001",
                                   "an output-stream seq published twice")


def collect_status(sock: socket.socket, pred, timeout_s: float = 3.0) -> list:
    records = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            records.append(status_codec.decode(sock.recv(200)))
        except socket.timeout:
            continue
        if pred(records):
            return records
    raise AssertionError(f"status condition never held ({len(records)} records)")


def crossing_orders(seqr: FakeSequencer) -> None:
    seqr.add(NewOrder("S1", "ACME", Side.SELL, 100, 10_000), "DEMO1", gateway_id=1)
    seqr.add(NewOrder("B1", "ACME", Side.BUY, 60, 10_000), "DEMO2", gateway_id=2)
    seqr.add(NewOrder("B2", "ACME", Side.BUY, 60, 10_100), "DEMO2", gateway_id=2)
    seqr.add(Cancel("B2", 0), "DEMO2", gateway_id=2)
    seqr.add(Heartbeat(), "", gateway_id=0)


# ------------------------------------------------------------------ fixtures


def base_config(**overrides) -> ClusterConfig:
    return config_mod.load().shifted(OFFSET).with_overrides(
        **{"checkpoint_every": 4, "heartbeat_ms": 50, **overrides})


@pytest.fixture(params=config_mod.TRANSPORTS)
def cluster(tmp_path, request):
    """Primary (engine 1) and secondary (engine 2), a fake sequencer and a fake gateway."""
    cfg = base_config(transport=request.param)
    seqr = FakeSequencer(cfg)
    out_sock = subscribe(cfg, cfg.gateways[0].output_port)
    status_sock = listen(cfg.gateways[0].status_port)
    procs = []
    try:
        for e in cfg.engines:
            procs.append(start_engine(cfg, tmp_path, e.id))
        for e, p in zip(cfg.engines, procs):
            wait_healthy(p, e.admin_port)
        yield cfg, seqr, out_sock, status_sock
    finally:
        for p in procs:
            stop(p)
        seqr.close()
        out_sock.close()
        status_sock.close()
    for p in procs:
        assert p.returncode == 0, log_of(p)


# ------------------------------------------------------------------ tests


def test_primary_emits_records_for_crossing_orders(cluster) -> None:
    cfg, seqr, out_sock, _ = cluster
    crossing_orders(seqr)
    seqr.publish(1, 5)
    offline = Engine(cfg.instrument_table())
    expected = []
    for m in seqr.messages:
        outs = offline.apply(m)
        expected += [(m, i, len(outs), o) for i, o in enumerate(outs)]
    assert len(expected) == 8  # accept; accept+2 fills; accept+2 fills; cancel
    got = receive_outputs(out_sock, len(expected))
    assert sorted(got) == list(range(1, len(expected) + 1))
    offset = time.time_ns() - time.monotonic_ns()
    now = time.monotonic_ns()
    for s, (msg, index, count, out) in enumerate(expected, start=1):
        rec = output_codec.decode(got[s])
        assert rec.output == out
        assert (rec.index, rec.count, rec.epoch) == (index, count, 1)  # the sequencer's first epoch
        assert (rec.gateway_id, rec.request_seq) == (msg.gateway_id, msg.request_seq)
        assert rec.ts == msg.ts
        assert abs(rec.sequenced_ns - (msg.ts - offset)) < 50_000_000  # same host, same clocks
        assert rec.sequenced_ns <= rec.decided_ns <= now
    for e in cfg.engines:
        d = wait_digest(e.admin_port, lambda d: d["applied_seq"] == 5)
        assert d["state_hash"] == offline.state_hash()
    primary = admin_query(cfg.engines[0].admin_port, "digest")
    assert primary["role"] == "primary" and primary["published_seq"] == 8
    # the output ring answers a gateway's re-request with the very same bytes
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as r:
        r.bind((HOST, 0))
        r.settimeout(1.0)
        r.sendto(mold_codec.encode_request(b"CRUCOUT001", 3, 4),
                 (HOST, cfg.engines[0].retransmit_port))
        again = receive_outputs(r, 4, 1.0)
        assert again == {s: got[s] for s in range(3, 7)}


def test_secondary_mutes_and_tracks_primary(cluster) -> None:
    cfg, seqr, out_sock, status_sock = cluster
    crossing_orders(seqr)
    seqr.publish(1, 5)
    assert len(receive_outputs(out_sock, 8)) == 8
    secondary = wait_digest(cfg.engines[1].admin_port,
                            lambda d: d["applied_seq"] == 5 and d["primary_emitted_seq"] == 4)
    assert secondary["role"] == "secondary"
    assert secondary["published_seq"] == 0 and secondary["counters"]["outputs"] == 0
    assert secondary["counters"]["output_packets"] == 0
    collect_status(status_sock, lambda rs: any(
        isinstance(r, status_codec.EngineStatus) and r.component_id == 2 and not r.primary
        and r.applied_seq == 5 and r.primary_emitted_seq == 4 for r in rs))


def test_checkpoints_equal_across_replicas_and_offline(cluster) -> None:
    cfg, seqr, _, status_sock = cluster
    for i in range(13):
        side = Side.SELL if i % 2 else Side.BUY
        seqr.add(NewOrder(f"K{i}", "GLOBEX", side, 10 + i, 20_000), f"DEMO{1 + i % 3}")
    for first in (1, 6, 11):
        seqr.publish(first, min(5, 13 - first + 1))
    hashes = {}
    replay = Engine(cfg.instrument_table())
    for m in seqr.messages:
        replay.apply(m)
        if m.seq % 4 == 0:
            hashes[m.seq] = bytes.fromhex(replay.state_hash())
    records = collect_status(status_sock, lambda rs: {
        (r.component_id, r.seq) for r in rs if isinstance(r, status_codec.Checkpoint)
    } >= {(c, s) for c in (1, 2) for s in (4, 8, 12)})
    for r in records:
        if isinstance(r, status_codec.Checkpoint):
            assert r.state_hash == hashes[r.seq], r
    for e in cfg.engines:
        d = wait_digest(e.admin_port, lambda d: d["applied_seq"] == 13)
        assert d["state_hash"] == replay.state_hash()
        assert [s for s, _ in d["checkpoints"]] == [4, 8, 12]
        listed = admin_query(e.admin_port, "checkpoints")
        assert listed == {"checkpoints": [[s, hashes[s].hex()] for s in (4, 8, 12)],
                          "next_after": None, "pid": listed["pid"]}
        assert admin_query(e.admin_port, "checkpoints 8")["checkpoints"] == [[12, hashes[12].hex()]]


def test_dropped_packet_is_recovered_from_the_sequencer(cluster) -> None:
    cfg, seqr, out_sock, _ = cluster
    crossing_orders(seqr)
    seqr.publish(1, 2)
    seqr.publish(5, 1)  # seqs 3-4 lost on the way
    requests = [seqr.answer(seqr.retransmit) for _ in cfg.engines]
    assert all((r.seq, r.count) == (3, 2) for r in requests)
    for e in cfg.engines:
        d = wait_digest(e.admin_port, lambda d: d["applied_seq"] == 5)
        assert d["state_hash"] == seqr.offline().state_hash()
        assert d["counters"]["rerequests_sequencer"] >= 1
    assert len(receive_outputs(out_sock, 8)) == 8  # nothing lost, nothing twice


def test_unanswered_gap_goes_to_the_archive(cluster) -> None:
    cfg, seqr, _, _ = cluster
    crossing_orders(seqr)
    seqr.publish(1, 2)
    seqr.heartbeat()  # the lost tail (3-5) shows only in the heartbeat's next seq
    for _ in cfg.engines:  # the sequencer hears the first ask but never answers it
        req = mold_codec.decode_request(seqr.retransmit.recv(100))
        assert (req.seq, req.count) == (3, 3)
    for _ in cfg.engines:
        assert (seqr.answer(seqr.archive).seq) == 3
    for e in cfg.engines:
        d = wait_digest(e.admin_port, lambda d: d["applied_seq"] == 5)
        assert d["counters"]["rerequests_archive"] >= 1


def test_idle_heartbeats_on_output_stream_and_status(cluster) -> None:
    cfg, seqr, out_sock, status_sock = cluster
    seqr.add(NewOrder("H1", "ACME", Side.BUY, 5, 10_000))
    seqr.publish(1, 1)
    assert len(receive_outputs(out_sock, 1)) == 1
    beats = []
    while len(beats) < 3:
        packet = mold_codec.decode_packet(out_sock.recv(100))
        assert packet.is_heartbeat
        beats.append(packet.seq)
    assert beats == [2, 2, 2]
    collect_status(status_sock, lambda rs: sum(
        isinstance(r, status_codec.EngineStatus) and r.component_id == c and r.applied_seq == 1
        for r in rs for c in (1, 2)) >= 6)


@pytest.mark.parametrize("transport_mode", config_mod.TRANSPORTS)
@pytest.mark.parametrize("faults", [(), ("unmuted_secondary",)])
def test_secondary_alone_emits_only_when_unmuted(tmp_path, faults, transport_mode) -> None:
    cfg = base_config(faults=faults, transport=transport_mode)
    seqr = FakeSequencer(cfg)
    out_sock = subscribe(cfg, cfg.gateways[0].output_port, 0.5)
    proc = start_engine(cfg, tmp_path, 2)
    try:
        wait_healthy(proc, cfg.engines[1].admin_port)
        crossing_orders(seqr)
        seqr.publish(1, 5)
        wait_digest(cfg.engines[1].admin_port, lambda d: d["applied_seq"] == 5)
        got = receive_outputs(out_sock, 8, 1.0)
        assert len(got) == (8 if faults else 0)
    finally:
        stop(proc)
        seqr.close()
        out_sock.close()
    assert proc.returncode == 0, log_of(proc)


def test_no_gap_rerequest_fault_stalls(tmp_path) -> None:
    cfg = base_config(faults=("no_gap_rerequest",))
    seqr = FakeSequencer(cfg)
    proc = start_engine(cfg, tmp_path, 1)
    port = cfg.engines[0].admin_port
    try:
        wait_healthy(proc, port)
        crossing_orders(seqr)
        seqr.publish(1, 2)
        seqr.publish(4, 2)
        with pytest.raises(socket.timeout):
            seqr.retransmit.recvfrom(100)
        d = wait_digest(port, lambda d: d["counters"]["rerequests_suppressed"] >= 1)
        assert d["applied_seq"] == 2 and d["missing"] == [[3, 1]]
    finally:
        stop(proc)
        seqr.close()


def test_a_garbled_copy_is_dropped_whole_and_the_good_copy_is_applied(tmp_path) -> None:
    cfg = base_config()
    seqr = FakeSequencer(cfg)
    proc = start_engine(cfg, tmp_path, 1)
    port = cfg.engines[0].admin_port
    try:
        wait_healthy(proc, port)
        crossing_orders(seqr)
        good2, good4 = seqr.frames[2], seqr.frames[4]
        seqr.frames[2] = b"\x00" * 8 + b"garbage"  # seq 2 does not decode
        seqr.publish(1, 2)  # the whole packet goes, seq 1 with it
        seqr.frames[2] = good2
        wrong = sequenced_codec.decode(good4)
        seqr.frames[4] = sequenced_codec.encode(dataclasses.replace(wrong, seq=9))
        seqr.publish(3, 2)  # seq 4's block carries seq 9 in its header
        seqr.frames[4] = good4
        d = wait_digest(port, lambda d: d["counters"]["poisoned_packets"] == 2)
        assert d["applied_seq"] == 0 and proc.poll() is None
        seqr.publish(1, 5)  # the genuine copies
        d = wait_digest(port, lambda d: d["applied_seq"] == 5)
        assert d["state_hash"] == seqr.offline().state_hash()
        assert proc.poll() is None
    finally:
        stop(proc)
        seqr.close()
    assert proc.returncode == 0, log_of(proc)
    assert "dropped a packet of the input stream at seq 1" in log_of(proc)


def test_tiebreak_fault_runs_the_salted_test_only_engine(tmp_path) -> None:
    cfg = base_config(faults=("nondeterministic_tiebreak",))
    proc = start_engine(cfg, tmp_path, 1)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                assert admin_query(cfg.engine(1).admin_port, "health", 0.5)["ok"]
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log_of(proc)
        assert "nondeterministic_tiebreak" in log_of(proc)
    finally:
        proc.terminate()
        proc.wait(10)


# ------------------------------------------------------------- status pacing


def test_only_the_replicated_secondary_reports_every_turn() -> None:
    from reference_impl.engine.node import STATUS_PACE_NS, status_pace_ns

    assert status_pace_ns("replicated", primary=False) == 0  # the ack gate waits on it
    for durability, primary in (("replicated", True), ("fsync", False), ("fsync", True),
                                ("none", False), ("none", True)):
        assert status_pace_ns(durability, primary) == STATUS_PACE_NS, (durability, primary)


def test_primary_statuses_are_paced_and_both_report_the_last_seq(tmp_path) -> None:
    """200 inputs in 200 packets: the primary reports at most once per ms, the last seq still arrives.

    (Which engine is paced at all is ``status_pace_ns``'s, tested above.)
    """
    cfg = base_config(durability="replicated", checkpoint_every=100_000, heartbeat_ms=1000)
    seqr = FakeSequencer(cfg)
    status_sock = listen(cfg.gateways[0].status_port)
    procs = [start_engine(cfg, tmp_path, e.id) for e in cfg.engines]
    try:
        for e, p in zip(cfg.engines, procs):
            wait_healthy(p, e.admin_port)
        for i in range(200):
            seqr.add(NewOrder(f"P{i}", "ACME", Side.BUY, 1, 10_000 - 100 * (i % 50)))
            seqr.publish(i + 1, 1)
        records = collect_status(status_sock, lambda rs: {
            r.component_id for r in rs
            if isinstance(r, status_codec.EngineStatus) and r.applied_seq == 200} == {1, 2})
    finally:
        for p in procs:
            stop(p)
        seqr.close()
        status_sock.close()
    by_engine = {c: [r for r in records if isinstance(r, status_codec.EngineStatus)
                     and r.component_id == c and r.applied_seq > 0] for c in (1, 2)}
    stamps = [r.mono_ns for r in by_engine[1]]
    assert all(b - a >= 1_000_000 for a, b in zip(stamps, stamps[1:])), stamps
    seqs = [r.applied_seq for r in by_engine[2]]  # the secondary's: only rising, to the end
    assert seqs == sorted(set(seqs)) and seqs[-1] == 200
