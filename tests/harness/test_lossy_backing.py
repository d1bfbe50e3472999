"""The journal over real files and paths (``lossy_backing``), on a plain temp dir: no FUSE needed.

This is exactly what lossyfs does for each operation, minus the kernel: the
journal's records and undos go through ``FdFile`` and ``RootNamespace``.
"""

from __future__ import annotations

import os

import pytest

from harness.nemesis.lossy_backing import (
    FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, GRAVEYARD, FdFile, RootNamespace, fallocate,
    prepare_graveyard, remove_graveyard,
)
from harness.nemesis.lossy_journal import Created, NamespaceLog, PendingWrites, Removed, Renamed


@pytest.fixture
def root(tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    prepare_graveyard(fd)
    yield tmp_path, fd
    os.close(fd)


def _key(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def test_rollback_through_reopened_descriptors_survives_close_rename_and_write_only(root):
    path, _ = root
    (path / "f").write_bytes(b"synced!!")
    fd = os.open(path / "f", os.O_WRONLY)          # write-only: the journal must still read old bytes
    j = PendingWrites()
    j.record(_key(fd), lambda: FdFile.reopen(fd), 0, 4)
    os.pwrite(fd, b"XXXX", 0)
    j.record(_key(fd), lambda: FdFile.reopen(fd), 8, 100)
    os.pwrite(fd, b"y" * 100, 8)
    os.close(fd)
    os.rename(path / "f", path / "g")
    report = j.rollback()
    assert (path / "g").read_bytes() == b"synced!!"
    assert report.bytes_restored == 4 and report.errors == []


def test_punch_hole_is_undone(root):
    path, _ = root
    (path / "f").write_bytes(b"z" * 8192)
    fd = os.open(path / "f", os.O_RDWR)
    j = PendingWrites()
    j.record(_key(fd), lambda: FdFile.reopen(fd), 0, 4096)
    try:
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096)
    except OSError as e:
        os.close(fd)
        pytest.skip(f"N/A: this filesystem cannot punch holes ({e})")
    assert os.pread(fd, 4, 0) == bytes(4)
    j.rollback()
    assert os.pread(fd, 8192, 0) == b"z" * 8192
    os.close(fd)


def test_namespace_rollback_and_commit_on_real_paths(root):
    path, rootfd = root
    ns, log = RootNamespace(rootfd), NamespaceLog()
    (path / "cur").write_bytes(b"v1")
    (path / "tmp").write_bytes(b"v2")
    (path / "old").write_bytes(b"o")
    # what lossyfs does for: create new; rename tmp over cur; unlink old
    (path / "new").write_bytes(b"n")
    log.add(Created("new"))
    os.link("cur", f"{GRAVEYARD}/1", src_dir_fd=rootfd, dst_dir_fd=rootfd)
    ns.rename("tmp", "cur")
    log.add(Renamed("tmp", "cur", f"{GRAVEYARD}/1"))
    ns.rename("old", f"{GRAVEYARD}/2")
    log.add(Removed("old", f"{GRAVEYARD}/2"))
    report = log.rollback(ns)
    assert report.errors == [] and report.namespace_undone == 3
    assert {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()} == {
        "cur": b"v1", "tmp": b"v2", "old": b"o"}
    assert os.listdir(path / GRAVEYARD) == []

    ns.rename("old", f"{GRAVEYARD}/3")
    log.add(Removed("old", f"{GRAVEYARD}/3"))
    assert log.commit(ns) == 1
    assert os.listdir(path / GRAVEYARD) == [] and not (path / "old").exists()


def test_graveyard_is_emptied_and_removed(root):
    path, rootfd = root
    (path / GRAVEYARD / "1").write_bytes(b"x")
    (path / GRAVEYARD / "2").mkdir()
    remove_graveyard(rootfd)
    assert not (path / GRAVEYARD).exists()
    (path / GRAVEYARD).mkdir()
    (path / GRAVEYARD / "stale").write_bytes(b"left by a killed lossyfs")
    prepare_graveyard(rootfd)
    assert os.listdir(path / GRAVEYARD) == []
