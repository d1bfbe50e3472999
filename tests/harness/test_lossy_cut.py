"""lossyfs in process (no mount): a flush in flight is cut, an armed crash fires, commits are timed.

``LossyOperations`` is driven directly with real descriptors over a temp dir,
and the real ``fdatasync`` is replaced by one that lets a crash land while the
flush is in flight, which a mount cannot time deterministically.
"""

from __future__ import annotations

import errno
import os
import threading
import time

import pytest

mfusepy = pytest.importorskip("mfusepy", exc_type=ImportError)

from harness.nemesis.lossy_ops import LossyOperations
from harness.nemesis.power import durable_at


@pytest.fixture
def ops(tmp_path):
    root = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    o = LossyOperations(root)
    yield o, tmp_path
    o.destroy("/")
    os.close(root)


def _eio(call) -> None:
    with pytest.raises(mfusepy.FuseOSError) as e:
        call()
    assert e.value.errno == errno.EIO


def test_a_crash_during_the_real_sync_cuts_the_flush(ops, monkeypatch):
    o, tmp = ops
    fh = o.create("/wal", 0o644, os.O_WRONLY)
    o.write("/wal", b"durable", 0, fh)
    o.fsync("/wal", 1, fh)
    o.write("/wal", b"in flight", 7, fh)
    reports = []
    monkeypatch.setattr(os, "fdatasync", lambda fd: reports.append(o.crash()))
    _eio(lambda: o.fsync("/wal", 1, fh))     # the power went while the disk was flushing
    (report,) = reports
    assert (report["bytes_discarded"], report["writes_discarded"], report["flushes_cut"]) == (9, 1, 1)
    assert (tmp / "wal").read_bytes() == b"durable"
    assert o.stats()["flushes_cut"] == 1 and o.stats()["fdatasyncs"] == 1
    o.release("/wal", fh)


def test_a_flush_that_completes_before_the_crash_is_kept(ops):
    o, tmp = ops
    fh = o.create("/wal", 0o644, os.O_WRONLY)
    o.write("/wal", b"abc", 0, fh)
    o.fsync("/wal", 1, fh)
    report = o.crash()
    assert (report["bytes_discarded"], report["flushes_cut"]) == (0, 0)
    assert (tmp / "wal").read_bytes() == b"abc"
    assert o.crash()["already_crashed"] is True and o.crash()["bytes_discarded"] == 0
    o.release("/wal", fh)


def test_armed_crash_fires_as_a_flush_of_unsynced_data_begins(ops):
    o, tmp = ops
    fh = o.create("/wal", 0o644, os.O_WRONLY)
    o.write("/wal", b"synced", 0, fh)
    o.fsync("/wal", 1, fh)
    result = {}
    waiter = threading.Thread(target=lambda: result.update(o.arm(5.0)))
    waiter.start()
    while not o._armed:
        pass
    o.fsync("/wal", 1, fh)                   # nothing un-synced: no trigger, the flush commits
    assert not o.crashed
    o.write("/wal", b"+batch", 6, fh)
    _eio(lambda: o.fsync("/wal", 1, fh))     # this flush begins with data pending: the power goes
    waiter.join(5)
    assert result == {"ok": True, "crashed": True}
    report = o.crash()
    assert (report["bytes_discarded"], report["writes_discarded"], report["flushes_cut"]) == (6, 1, 1)
    assert (tmp / "wal").read_bytes() == b"synced"
    o.release("/wal", fh)


def test_armed_crash_fires_on_a_synchronous_write(ops):
    o, tmp = ops
    fh = o.create("/wal", 0o644, os.O_WRONLY)
    o._armed = True
    _eio(lambda: o.write("/wal", b"dsync", 0, fh, os.O_DSYNC))
    report = o.crash()
    assert (report["flushes_cut"], report["namespace_undone"]) == (1, 1)
    assert not (tmp / "wal").exists()         # its create was never synced either
    o.release("/wal", fh)


def test_arm_times_out_without_a_flush(ops):
    o, _ = ops
    assert o.arm(0.05) == {"ok": True, "crashed": False}
    assert not o._armed and not o.crashed


def test_commits_are_logged_with_the_highest_write_and_fsync_is_slowed(tmp_path, monkeypatch):
    root = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    o = LossyOperations(root, fsync_delay_s=0.05)
    try:
        fh = o.create("/wal", 0o644, os.O_WRONLY)
        o.fallocate("/wal", 0, 0, 4096, fh)        # preallocated: the size says nothing
        o.write("/wal", b"rec1", 0, fh)
        t0 = time.monotonic_ns()
        o.fsync("/wal", 1, fh)
        assert time.monotonic_ns() - t0 >= 50_000_000
        o.write("/wal", b"rec2", 4, fh, os.O_DSYNC)
        ino = os.stat(tmp_path / "wal").st_ino
        log = o.durable_log()["log"]
        assert [(i, end) for i, end, _ in log] == [(ino, 4), (ino, 8)]
        assert log[0][2] <= log[1][2] and log[0][2] >= t0
        o.release("/wal", fh)
    finally:
        o.destroy("/")
        os.close(root)


def test_durable_at_finds_each_token_and_its_covering_commit(tmp_path):
    (tmp_path / "seg").write_bytes(b"..TOKA..TOKB..TOKC" + b"\0" * 100)
    ino = os.stat(tmp_path / "seg").st_ino
    log = [(ino, 6, 100), (ino + 1, 99, 150), (ino, 12, 200)]
    found = durable_at([tmp_path], log, [b"TOKA", b"TOKB", b"TOKC", b"NOPE"])
    assert found == {b"TOKA": 100, b"TOKB": 200, b"TOKC": None}


def test_only_a_flush_begun_armed_fires_and_slow_takes_effect_at_once(ops, monkeypatch):
    o, tmp = ops
    fh = o.create("/wal", 0o644, os.O_WRONLY)
    o.write("/wal", b"before", 0, fh)
    monkeypatch.setattr(os, "fdatasync", lambda fd: setattr(o, "_armed", True))  # armed mid-flush
    o.fsync("/wal", 1, fh)                   # began unarmed: it commits
    assert not o.crashed and o.slow(30.0) == {"ok": True, "fsync_delay_ms": 30.0}
    o.write("/wal", b"+after", 6, fh)
    t0 = time.monotonic()
    _eio(lambda: o.fsync("/wal", 1, fh))     # began armed: slowed, then cut as it would complete
    assert time.monotonic() - t0 >= 0.03
    assert o.crash()["bytes_discarded"] == 6 and (tmp / "wal").read_bytes() == b"before"
    o.release("/wal", fh)
