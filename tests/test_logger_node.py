"""The logger as a real process on loopback, with the test playing the sequencer.

The test publishes a synthetic input stream to the logger's input port with
one packet held back (a gap), runs a fake retransmit server on the
sequencer's retransmit port that fills it, listens for watermarks on the
gateway's status port, and asks the archive for ranges.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.cli import wal as wal_cmd
from reference_impl import config as config_mod
from reference_impl.config import HOST
from reference_impl.core import mold_codec, sequenced_codec, status_codec, wal_codec
from reference_impl.core.messages import Cancel, Sequenced
from reference_impl.edges.process import admin_query
from reference_impl.logger.wal_reader import WalReader, list_segments

OFFSET = -4000  #: unique per test module (ports 11000-14080 here)
ROOT = Path(__file__).resolve().parent.parent
N = 300


def message(seq: int) -> bytes:
    return sequenced_codec.encode(
        Sequenced(seq, 1_700_000_000_000_000_000 + seq, 1, 1, seq, "DEMO1", Cancel(f"T{seq}", 0)))


MESSAGES = {s: message(s) for s in range(1, 2 * N + 1)}


def packets(first: int, last: int) -> list[bytes]:
    out, seq = [], first
    for group in mold_codec.plan_packets([MESSAGES[s] for s in range(first, last + 1)]):
        out.append(mold_codec.encode_packet(SESSION, seq, group))
        seq += len(group)
    return out


class FakeSequencer:
    """Answers re-requests on the sequencer's retransmit port from MESSAGES."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, port))
        self.sock.settimeout(0.05)
        self.requests: list[tuple[int, int]] = []
        self.head = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(100)
            except socket.timeout:
                continue
            except OSError:  # ICMP port unreachable from a reply to a stopped logger
                continue
            req = mold_codec.decode_request(data)
            self.requests.append((req.seq, req.count))
            last = min(req.seq + req.count - 1, self.head)
            if req.seq <= last:
                for p in packets(req.seq, last):
                    try:
                        self.sock.sendto(p, addr)
                    except OSError:
                        break

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


SESSION = config_mod.load().input_stream.session.encode()


def base_config(**logger_changes) -> config_mod.ClusterConfig:
    cfg = config_mod.load().shifted(OFFSET).with_overrides(heartbeat_ms=50, capacity=64)
    lg = dataclasses.replace(cfg.logger, segment_bytes=8192, index_every=8, **logger_changes)
    return cfg.with_overrides(logger=lg)


class Logger:
    def __init__(self, cfg: config_mod.ClusterConfig, run_dir: Path) -> None:
        self.cfg = cfg
        path = run_dir / "cluster.yaml"
        path.write_text(config_mod.dump(cfg))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reference_impl.logger", "--config", str(path),
             "--run-dir", str(run_dir)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"logger exited: {self.proc.stderr.read().decode()}")
            try:
                if admin_query(cfg.logger.admin_port, "health", 0.2).get("ok"):
                    break
            except (OSError, ValueError):
                pass
            assert time.monotonic() < deadline, "logger never answered health"
            time.sleep(0.05)

    def digest(self) -> dict:
        return admin_query(self.cfg.logger.admin_port, "digest")

    def wait_durable(self, seq: int, timeout_s: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            d = self.digest()
            if d["durable_seq"] >= seq:
                return d
            assert time.monotonic() < deadline, d
            time.sleep(0.02)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stderr.read().decode()


@pytest.fixture
def env(tmp_path):
    """(cfg, fake sequencer, status socket, start(cfg) -> Logger); everything torn down."""
    cfg = base_config()
    fake = FakeSequencer(cfg.sequencer.retransmit_port)
    status = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    status.bind((HOST, cfg.gateways[0].status_port))
    status.settimeout(2.0)
    started: list[Logger] = []

    def start(c: config_mod.ClusterConfig = cfg) -> Logger:
        lg = Logger(c, tmp_path)
        started.append(lg)
        return lg

    try:
        yield cfg, fake, status, start
    finally:
        for lg in started:
            lg.stop()
        fake.close()
        status.close()


def publish(cfg, datagrams) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for d in datagrams:
            s.sendto(d, (HOST, cfg.logger.input_port))
            time.sleep(0.0002)


def wal_dir(cfg, run_dir: Path) -> Path:
    return run_dir / cfg.logger.data_dir


def assert_wal_exact(directory: Path, last: int) -> None:
    seen = []
    for _f, _p, res in WalReader(directory).iter_segments():
        assert res.error is None
        seen += [(r.seq, r.payload) for r in res.records]
    assert [s for s, _ in seen] == list(range(1, last + 1))  # every seq exactly once, in order
    assert all(p == MESSAGES[s] for s, p in seen)  # the bus's bytes, unchanged
    assert wal_cmd.run_verify(str(directory)) == 0


def archive(cfg, seq: int, count: int) -> dict[int, bytes]:
    got: dict[int, bytes] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        s.settimeout(0.5)
        s.sendto(mold_codec.encode_request(SESSION, seq, count), (HOST, cfg.logger.archive_port))
        try:
            while len(got) < count:
                p = mold_codec.decode_packet(s.recv(65535))
                if p.is_heartbeat:
                    got[-1] = p.seq.to_bytes(8, "big")
                    break
                got.update({p.seq + i: m for i, m in enumerate(p.messages)})
        except socket.timeout:
            pass
    return got


def test_gap_filled_by_rerequest_wal_exact_and_durable_watermark(env, tmp_path) -> None:
    cfg, fake, status, start = env
    logger = start()
    stream = packets(1, N)
    held = stream[len(stream) // 2]
    fake.head = N
    publish(cfg, [p for p in stream if p is not held] + stream[:2])  # a gap and duplicates
    d = logger.wait_durable(N)
    assert any(first <= mold_codec.decode_packet(held).seq < first + count
               for first, count in fake.requests), "the gap was never re-requested"
    assert d["written_seq"] == N and d["records"] == N and d["segments"] > 1
    assert d["receiver"]["duplicates"] > 0
    marks = []
    while not any(m.durable_seq == N for m in marks):
        marks.append(status_codec.decode(status.recv(100)))
    assert all(isinstance(m, status_codec.LoggerWatermark) for m in marks)
    assert all(m.written_seq >= m.durable_seq for m in marks)
    # archive: the recent tail from memory, older seqs from the WAL, exact bytes
    assert archive(cfg, N - 10, 10) == {s: MESSAGES[s] for s in range(N - 10, N)}
    old = archive(cfg, 5, 100)
    assert old == {s: MESSAGES[s] for s in range(5, 105)}
    assert archive(cfg, N + 5, 3) == {-1: (N + 1).to_bytes(8, "big")}  # past the head: heartbeat
    assert logger.digest()["counters"]["archive_from_wal"] >= 1
    assert logger.stop() == "" and logger.proc.returncode == 0
    assert_wal_exact(wal_dir(cfg, tmp_path), N)


def test_lost_tail_is_found_by_heartbeat(env, tmp_path) -> None:
    cfg, fake, status, start = env
    logger = start()
    fake.head = 40
    publish(cfg, packets(1, 20) + [mold_codec.encode_heartbeat(SESSION, 41)])
    logger.wait_durable(40)
    logger.stop()
    assert_wal_exact(wal_dir(cfg, tmp_path), 40)


def test_restart_cuts_torn_tail_and_refills(env, tmp_path) -> None:
    cfg, fake, status, start = env
    logger = start()
    fake.head = 100
    publish(cfg, packets(1, 100))
    logger.wait_durable(100)
    logger.stop()
    seg = list_segments(wal_dir(cfg, tmp_path))[-1][1]
    data = bytearray(seg.read_bytes())
    last = wal_codec.scan(bytes(data)).records[-1]
    data[last.offset + 20:last.offset + 40] = b"\xff" * 20  # tear seq 100
    seg.write_bytes(bytes(data))
    assert wal_cmd.run_verify(str(wal_dir(cfg, tmp_path))) == 1
    logger = start()
    d = logger.digest()
    assert d["next_seq"] == 100 and d["durable_seq"] == 99
    assert d["recovery"]["defect"]["kind"] == "crc_mismatch" and d["recovery"]["cut_bytes"] > 0
    fake.head = 150
    publish(cfg, packets(120, 150))  # seq 100..119 come back by re-request
    logger.wait_durable(150)
    err = logger.stop()
    assert "crc_mismatch" in err and "cutting" in err and "resumes at seq 100" in err
    assert_wal_exact(wal_dir(cfg, tmp_path), 150)
    assert len(list((wal_dir(cfg, tmp_path) / "quarantine").iterdir())) == 1


def test_fsync_delay_holds_the_durable_watermark(env, tmp_path) -> None:
    cfg, fake, status, start = env
    logger = start(base_config(fsync_delay_ms=300))
    while True:  # the start-up watermark
        if status_codec.decode(status.recv(100)).written_seq == 0:
            break
    fake.head = 5
    t0 = time.monotonic()
    publish(cfg, packets(1, 5))
    written_at = durable_at = None
    while durable_at is None:
        m = status_codec.decode(status.recv(100))
        if m.written_seq == 5 and written_at is None:
            written_at = time.monotonic()
        if m.durable_seq == 5:
            durable_at = time.monotonic()
    assert written_at - t0 < 0.2  # the written mark does not wait for the disk
    assert durable_at - t0 >= 0.3  # the durable one does
    logger.stop()


@pytest.mark.parametrize("fault", [False, True])
def test_ignore_wal_crc_fault_serves_a_corrupt_record(env, tmp_path, fault) -> None:
    cfg, fake, status, start = env
    logger = start()
    fake.head = 200
    publish(cfg, packets(1, 200))
    logger.wait_durable(200)
    logger.stop()
    first_seg = list_segments(wal_dir(cfg, tmp_path))[0][1]
    data = bytearray(first_seg.read_bytes())
    rec = wal_codec.scan(bytes(data)).records[10]  # seq 11, in a sealed segment
    data[rec.offset + 30] ^= 0x01
    first_seg.write_bytes(bytes(data))
    logger = start(cfg.with_overrides(faults=("ignore_wal_crc",)) if fault else cfg)
    got = archive(cfg, 5, 20)
    if fault:
        assert sorted(got) == list(range(5, 25)) and got[11] != MESSAGES[11]
    else:
        assert sorted(got) == list(range(5, 11))  # stops before the corrupt record
    logger.stop()


def test_garbage_on_input_and_archive_ports_is_counted(env, tmp_path) -> None:
    cfg, fake, status, start = env
    logger = start()
    publish(cfg, [os.urandom(n) for n in range(0, 60)])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for n in range(0, 30):
            s.sendto(os.urandom(n), (HOST, cfg.logger.archive_port))
    time.sleep(0.3)
    d = logger.digest()
    assert d["counters"]["bad_packets"] >= 55 and d["counters"]["bad_archive_requests"] >= 25
    assert d["written_seq"] == 0
    logger.stop()


def test_a_garbled_copy_is_dropped_whole_and_the_good_copy_is_logged(env, tmp_path) -> None:
    cfg, fake, status, start = env
    logger = start()
    good = [MESSAGES[s] for s in range(1, 6)]
    garbled = list(good)
    garbled[2] = MESSAGES[3][:20]  # seq 3 truncated: does not decode
    shifted = list(good)
    shifted[3] = MESSAGES[9]  # seq 4's block carries seq 9 in its header
    publish(cfg, [mold_codec.encode_packet(SESSION, 1, garbled),
                  mold_codec.encode_packet(SESSION, 1, shifted)])
    deadline = time.monotonic() + 5
    while logger.digest()["counters"]["poisoned_packets"] < 2:
        assert time.monotonic() < deadline, logger.digest()
        time.sleep(0.02)
    assert logger.digest()["written_seq"] == 0
    publish(cfg, [mold_codec.encode_packet(SESSION, 1, good)])  # the genuine copy
    logger.wait_durable(5)
    assert logger.stop() == "" and logger.proc.returncode == 0
    assert_wal_exact(wal_dir(cfg, tmp_path), 5)


def test_multicast_mode(env, tmp_path) -> None:
    from reference_impl.edges import transport

    cfg, fake, status, start = env
    mcfg = cfg.with_overrides(transport="multicast")
    logger = start(mcfg)
    pub = transport.stream_publisher(mcfg, mcfg.input_stream, [])
    try:
        fake.head = 50
        stream = packets(1, 50)
        for p in stream[:1] + stream[2:]:  # the second packet comes back by re-request
            pub.send(p)
        logger.wait_durable(50)
    finally:
        pub.close()
    logger.stop()
    assert_wal_exact(wal_dir(cfg, tmp_path), 50)


def test_mid_segment_corruption_stops_the_logger_with_a_clear_message(tmp_path) -> None:
    from reference_impl.logger.wal import WalWriter

    cfg = base_config()
    directory = wal_dir(cfg, tmp_path)
    w = WalWriter(directory, cfg.logger.segment_bytes, cfg.logger.index_every,
                  log=lambda s: None)
    for s in range(1, 41):
        w.append(s, MESSAGES[s])
    w.write()
    w.sync()
    w.close()
    (_first, seg), = list_segments(directory)
    data = bytearray(seg.read_bytes())
    offsets = [r.offset for r in wal_codec.scan(bytes(data)).records]
    data[offsets[20] + 30] ^= 0x01  # record 21 of 40: durable, with valid records after it
    seg.write_bytes(bytes(data))
    path = tmp_path / "cluster.yaml"
    path.write_text(config_mod.dump(cfg))
    proc = subprocess.run(
        [sys.executable, "-m", "reference_impl.logger", "--config", str(path),
         "--run-dir", str(tmp_path)], cwd=ROOT, capture_output=True, timeout=30)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert "refusing to start" in err and seg.name in err and f"offset {offsets[20]}" in err
    assert "crucible wal verify" in err
    assert seg.read_bytes() == bytes(data)  # the evidence is left as it was
