"""The lossy FUSE filesystem and its power-off controller, through a real mount.

Every test that mounts is skipped with an ``UNKNOWN:`` reason when
``fuse_available()`` says this machine cannot mount (never a silent pass), and
unmounts and kills its lossyfs process in teardown, pass or fail.
"""

from __future__ import annotations

import errno
import mmap
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.nemesis import power
from harness.nemesis.power import LossyMount, fuse_available, power_off
from reference_impl.logger.wal import WalWriter, list_segments, scan_segment


@pytest.fixture(scope="module")
def fuse_ok() -> None:
    ok, reason = fuse_available()
    if not ok:
        pytest.skip(f"UNKNOWN: the lossy filesystem cannot run here: {reason}")


@pytest.fixture
def lossy(tmp_path, fuse_ok):
    """(backing dir, mount point, mounted LossyMount); always unmounted and killed afterwards."""
    backing, mnt = tmp_path / "backing", tmp_path / "mnt"
    backing.mkdir()
    mnt.mkdir()
    m = LossyMount(backing, mnt, work_dir=tmp_path / "work")
    try:
        yield backing, mnt, m.mount()
    finally:
        pid = m.pid
        m.unmount()
        assert not os.path.ismount(mnt)
        if pid is not None:
            assert not _alive(pid), f"lossyfs pid {pid} survived unmount"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _write(path: Path, data: bytes, offset: int | None = None, sync: str | None = None,
           flags: int = os.O_WRONLY | os.O_CREAT) -> None:
    fd = os.open(path, flags, 0o644)
    try:
        if offset is None:
            os.write(fd, data)
        else:
            os.pwrite(fd, data, offset)
        if sync == "fsync":
            os.fsync(fd)
        elif sync == "fdatasync":
            os.fdatasync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ------------------------------------------------------------------ content


def test_unsynced_write_is_dropped_synced_one_kept(lossy):
    backing, mnt, m = lossy
    fd = os.open(mnt / "f", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"A" * 100)
    os.fsync(fd)
    os.write(fd, b"B" * 100)
    os.close(fd)
    assert (backing / "f").read_bytes() == b"A" * 100 + b"B" * 100   # written through at once
    report = m.crash()
    assert report["files"] == 1 and report["bytes_discarded"] == 100 and report["errors"] == []
    m.unmount()
    assert (backing / "f").read_bytes() == b"A" * 100


def test_append_past_the_synced_size_is_cut(lossy):
    backing, mnt, m = lossy
    _write(mnt / "f", b"x" * 4096, sync="fsync")
    _write(mnt / "f", b"y" * 10000, flags=os.O_WRONLY | os.O_APPEND)
    assert (mnt / "f").stat().st_size == 14096
    m.crash()
    m.unmount()
    assert (backing / "f").read_bytes() == b"x" * 4096


def test_overwrite_of_synced_bytes_is_undone(lossy):
    backing, mnt, m = lossy
    _write(mnt / "f", bytes(range(256)) * 4, sync="fsync")
    _write(mnt / "f", b"\xff" * 300, offset=100)
    _write(mnt / "f", b"\xee" * 10, offset=1020)    # straddles the synced end
    m.crash()
    m.unmount()
    assert (backing / "f").read_bytes() == bytes(range(256)) * 4


def test_fdatasync_commits(lossy):
    backing, mnt, m = lossy
    _write(mnt / "f", b"durable", sync="fdatasync")
    _write(mnt / "f", b"LOST", offset=0)
    stats = m.stats()
    assert stats["fdatasyncs"] == 1 and stats["pending_files"] == 1 and stats["pending_bytes"] == 4
    m.crash()
    m.unmount()
    assert (backing / "f").read_bytes() == b"durable"


def test_truncate_and_fallocate_are_undone(lossy):
    backing, mnt, m = lossy
    _write(mnt / "shrunk", b"keep me whole", sync="fsync")
    _write(mnt / "grown", b"small", sync="fsync")
    _write(mnt / "prealloc", b"head", sync="fsync")
    os.truncate(mnt / "shrunk", 4)
    os.truncate(mnt / "grown", 1 << 20)
    fd = os.open(mnt / "prealloc", os.O_RDWR)
    os.posix_fallocate(fd, 0, 1 << 16)
    os.close(fd)
    _write(mnt / "opened_trunc", b"keep", sync="fsync")
    _write(mnt / "opened_trunc", b"", flags=os.O_WRONLY | os.O_TRUNC)   # truncate on open, unsynced
    assert (mnt / "prealloc").stat().st_size == 1 << 16
    m.crash()
    m.unmount()
    assert (backing / "shrunk").read_bytes() == b"keep me whole"
    assert (backing / "grown").read_bytes() == b"small"
    assert (backing / "prealloc").read_bytes() == b"head"
    assert (backing / "opened_trunc").read_bytes() == b"keep"


def test_synchronous_writes_are_durable_without_fsync(lossy):
    """O_DSYNC / O_SYNC opens and pwritev2(RWF_DSYNC): the kernel sends no fsync, only the flag."""
    backing, mnt, m = lossy
    _write(mnt / "dsync", b"d", flags=os.O_WRONLY | os.O_CREAT | os.O_DSYNC)
    _write(mnt / "sync", b"s", flags=os.O_WRONLY | os.O_CREAT | os.O_SYNC)
    fd = os.open(mnt / "rwf", os.O_WRONLY | os.O_CREAT, 0o644)
    os.pwritev(fd, [b"r"], 0, os.RWF_DSYNC)
    os.pwrite(fd, b"plain, lost", 1)
    os.close(fd)
    assert m.stats()["sync_writes"] == 3
    m.crash()
    m.unmount()
    assert {p.name: p.read_bytes() for p in backing.iterdir()} == {"dsync": b"d", "sync": b"s", "rwf": b"r"}


def test_o_direct_opens_work_with_unaligned_writes(lossy):
    """The mount is direct I/O already; O_DIRECT must not reach the backing file's descriptor."""
    backing, mnt, m = lossy
    _write(mnt / "f", b"odd-sized", flags=os.O_WRONLY | os.O_CREAT | os.O_DIRECT, sync="fsync")
    m.unmount()
    assert (backing / "f").read_bytes() == b"odd-sized"


def test_reference_wal_keeps_exactly_the_synced_records(lossy):
    """The reference logger's WAL path: posix_fallocate, pwrite, fdatasync, directory fsync."""
    backing, mnt, m = lossy
    w = WalWriter(mnt / "wal", segment_bytes=4096, log=lambda line: None)
    seq = 1
    for _ in range(6):                     # several rotations, all synced
        for _ in range(20):
            w.append(seq, b"p" * 40)
            seq += 1
        w.write()
        w.sync()
    for _ in range(15):                    # written, never synced
        w.append(seq, b"q" * 40)
        seq += 1
    w.write()
    durable = w.durable_seq                # after write(): a rotation would have synced
    assert durable < w.written_seq
    m.crash()
    os.close(w.fd)
    m.unmount()
    seqs = [r.seq for _, path in list_segments(backing / "wal") for r in scan_segment(path.read_bytes()).records]
    assert seqs == list(range(1, durable + 1))


# ------------------------------------------------------------------ namespace


def test_created_and_fsynced_file_survives_unsynced_one_vanishes(lossy):
    backing, mnt, m = lossy
    _write(mnt / "synced", b"s", sync="fsync")
    _write(mnt / "unsynced", b"u")
    (mnt / "dir").mkdir()
    m.crash()
    m.unmount()
    assert sorted(p.name for p in backing.iterdir()) == ["synced"]
    assert (backing / "synced").read_bytes() == b"s"


def test_unlink_and_rename_are_undone_until_a_sync(lossy):
    backing, mnt, m = lossy
    _write(mnt / "cur", b"version 1", sync="fsync")
    _write(mnt / "victim", b"precious", sync="fsync")
    _write(mnt / "tmp", b"version 2", sync="fsync")   # a file fsync commits the namespace too
    os.replace(mnt / "tmp", mnt / "cur")
    os.unlink(mnt / "victim")
    assert sorted(os.listdir(mnt)) == ["cur"]
    assert m.stats()["pending_namespace_ops"] == 2
    m.crash()
    m.unmount()
    assert sorted(p.name for p in backing.iterdir()) == ["cur", "tmp", "victim"]
    assert (backing / "cur").read_bytes() == b"version 1"
    assert (backing / "victim").read_bytes() == b"precious"


def test_directory_fsync_commits_rename_and_unlink(lossy):
    backing, mnt, m = lossy
    _write(mnt / "tmp", b"new", sync="fsync")
    _write(mnt / "old", b"old", sync="fsync")
    os.replace(mnt / "tmp", mnt / "cur")
    os.unlink(mnt / "old")
    _fsync_dir(mnt)
    assert m.stats()["fsyncdirs"] == 1
    m.crash()
    m.unmount()
    assert sorted(p.name for p in backing.iterdir()) == ["cur"]
    assert (backing / "cur").read_bytes() == b"new"


# ------------------------------------------------------------------ control and lifecycle


def test_after_crash_changes_fail_with_eio_until_reset(lossy):
    backing, mnt, m = lossy
    fd = os.open(mnt / "f", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, b"abc")
    os.fsync(fd)
    m.crash()
    for attempt in (lambda: os.write(fd, b"x"), lambda: os.fsync(fd),
                    lambda: os.open(mnt / "g", os.O_WRONLY | os.O_CREAT), lambda: os.unlink(mnt / "f")):
        with pytest.raises(OSError) as e:
            attempt()
        assert e.value.errno == errno.EIO
    assert os.pread(fd, 3, 0) == b"abc"          # reads still work
    assert m.crash().get("already_crashed") is True
    assert m.reset()["crashed"] is False
    os.pwrite(fd, b"xyz", 0)
    os.close(fd)
    assert (backing / "f").read_bytes() == b"xyz"


def test_stats_reports_pending_work_and_syncs(lossy):
    backing, mnt, m = lossy
    _write(mnt / "a", b"1" * 10, sync="fsync")
    _write(mnt / "a", b"2" * 5, offset=10)
    _write(mnt / "b", b"3" * 7)
    _fsync_dir(mnt)
    s = m.stats()
    assert (s["pending_files"], s["pending_bytes"]) == (2, 12)
    assert (s["fsyncs"], s["fdatasyncs"], s["fsyncdirs"], s["crashes"]) == (1, 0, 1, 0)
    assert s["writes"] == 3 and s["bytes_written"] == 22 and s["crashed"] is False


def test_clean_unmount_keeps_everything(lossy):
    backing, mnt, m = lossy
    _write(mnt / "f", b"never synced")
    _write(mnt / "gone", b"x")
    os.unlink(mnt / "gone")
    m.unmount()
    assert sorted(p.name for p in backing.iterdir()) == ["f"]   # no graveyard left behind
    assert (backing / "f").read_bytes() == b"never synced"


def test_shared_writable_mmap_is_refused(lossy):
    """Direct I/O: mmap stores would bypass the journal, so the kernel refuses them."""
    _, mnt, _ = lossy
    fd = os.open(mnt / "f", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, 4096)
        with pytest.raises(OSError):
            mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)


def test_mount_over_the_data_dir_in_place(tmp_path, fuse_ok):
    data = tmp_path / "data"
    data.mkdir()
    (data / "wal").write_bytes(b"synced before the mount")
    with LossyMount(data) as m:
        assert os.path.ismount(data) and os.listdir(data) == ["wal"]
        _write(data / "wal", b"SCRIBBLE", offset=0)
        _write(data / "new", b"n")
        m.crash()
    assert not os.path.ismount(data)
    assert sorted(os.listdir(data)) == ["wal"]
    assert (data / "wal").read_bytes() == b"synced before the mount"


WRITER = textwrap.dedent("""
    import os, sys
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    n = 0
    while True:
        for _ in range(8):
            n += 1
            os.write(fd, b"%08d" % n)
        os.fdatasync(fd)
        if n == 800:
            print("synced", flush=True)
""")


def test_power_off_cuts_a_flush_of_the_running_writer_and_keeps_a_synced_prefix(lossy, tmp_path):
    backing, mnt, m = lossy
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(mnt / "log")], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout.readline() == b"synced\n"
        (report,) = power_off([m], [proc.pid])
        assert proc.wait(5) in (-9, 1)        # killed, or dead first of its failed fdatasync
        assert report["errors"] == []
        assert report["bytes_discarded"] == 64 and report["writes_discarded"] == 8
        assert report["flushes_cut"] == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    data = (backing / "log").read_bytes()
    n = len(data) // 8
    assert len(data) % 64 == 0 and n >= 800                    # whole fdatasync batches only
    assert data == b"".join(b"%08d" % i for i in range(1, n + 1))
    assert not os.path.ismount(mnt)


# ------------------------------------------------------------------ availability (no FUSE needed)


def test_fuse_available_names_the_missing_piece(monkeypatch):
    real_exists = os.path.exists
    monkeypatch.setattr(power.os.path, "exists", lambda p: False if p == "/dev/fuse" else real_exists(p))
    ok, reason = fuse_available()
    assert not ok and "/dev/fuse" in reason


def test_fuse_available_without_fusermount3(monkeypatch):
    monkeypatch.setattr(power.shutil, "which", lambda name: None)
    ok, reason = fuse_available()
    if "/dev/fuse" in reason:
        pytest.skip(f"UNKNOWN: the fusermount3 check is never reached here: {reason}")
    assert not ok and "fusermount3" in reason and "fuse3" in reason


def test_mount_failure_raises_with_the_log(tmp_path, fuse_ok):
    m = LossyMount(tmp_path / "missing-backing", tmp_path, ready_timeout=5)
    with pytest.raises(power.LossyFsError):
        m.mount()
    assert m.proc is None and not os.path.ismount(tmp_path)
