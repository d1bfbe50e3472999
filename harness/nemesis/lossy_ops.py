"""lossyfs's FUSE operations: apply at once, journal how to take it back, roll back on crash.

``LossyOperations`` serves every FUSE call against the backing directory,
opened once as a descriptor (``*at`` calls through ``lossy_backing``), and
applies each change at once. Before each change the rollback journal
(``lossy_journal``: ``PendingWrites`` for file content, ``NamespaceLog`` for
creates, removes and renames) records how to take it back. ``fsync`` /
``fdatasync`` of a file commit that file's content and the namespace log;
``fsync`` of a directory commits the namespace log. ``crash`` rolls every
file and the namespace back to the last-synced state and then refuses every
change with EIO; ``reset`` accepts changes again; ``stats`` counts. The
operations on names are in ``lossy_namespace`` (the base class); the mount,
the control channel and the command line are in ``lossyfs``.

Theory of operation of a crash
------------------------------
Power goes at one instant, and whatever is in flight then is lost. Changes
run under one lock, so a write either completes before ``crash`` (and is
rolled back with the rest of the un-synced data) or fails with EIO after it.
A file flush is two steps: the real ``fdatasync`` of the backing file runs
*outside* the lock, then the commit (the journal forgets the file's undos)
runs under it, and only if no crash came in between (``_generation``
unchanged). A crash while a flush is in flight therefore *cuts* it: its data
is rolled back and it returns EIO, as a flush the power cut would.
``flushes_cut`` counts them.

The file commits are logged (``durable_log``: inode, the end of the highest
write made durable, the monotonic time), so the harness can tell when each byte range of a WAL
became durable; ``fsync_delay_s`` (the slow-fsync nemesis) makes every file
flush take that much longer, before its real sync, so an acknowledgement
released before its flush completes shows on every order, not by chance.

``arm(timeout)`` waits for the worst instant rather than a random one: the
next flush of a file that holds un-synced data, begun once armed, crashes
the mount just as it would complete (an fsync or fdatasync after its real
sync, an O_DSYNC write as it begins), so that data is discarded and the flush fails, after the
longest time in flight (with ``fsync_delay_s``) in which a SUT could let an
acknowledgement out too early. It returns once the mount has crashed (by this
trigger or by ``crash``), or unarmed after ``timeout`` seconds without one.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from collections.abc import Callable

import mfusepy

from harness.nemesis.lossy_backing import (
    FALLOC_FL_KEEP_SIZE,
    FALLOC_FL_PUNCH_HOLE,
    FALLOC_FL_ZERO_RANGE,
    GRAVEYARD,
    FdFile,
    RootNamespace,
    fallocate,
    prepare_graveyard,
    remove_graveyard,
)
from harness.nemesis.lossy_journal import Created, NamespaceLog, PendingWrites, RollbackReport
from harness.nemesis.lossy_namespace import NamespaceOperations, backing_rel

_O_FULLSYNC = os.O_SYNC & ~os.O_DSYNC   # O_SYNC is __O_SYNC | O_DSYNC on Linux
# Flags lossyfs carries out itself (truncate is journaled, the kernel gives append offsets, sync
# writes commit per write) or that would break its pwrites (O_DIRECT alignment): not for the backing.
_STRIP_OPEN = (os.O_TRUNC | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_DIRECT | os.O_SYNC | os.O_DSYNC)
_WRITE_ACCESS = os.O_WRONLY | os.O_RDWR
_STAT_KEYS = ("st_mode", "st_ino", "st_nlink", "st_uid", "st_gid", "st_size", "st_blocks", "st_rdev")


def _dirent_mode(e: os.DirEntry) -> int:
    if e.is_symlink():
        return stat.S_IFLNK
    if e.is_dir(follow_symlinks=False):
        return stat.S_IFDIR
    if e.is_file(follow_symlinks=False):
        return stat.S_IFREG
    return e.stat(follow_symlinks=False).st_mode


class LossyOperations(NamespaceOperations):
    use_ns = True

    def __init__(self, root: int, real_sync: bool = True, fsync_delay_s: float = 0.0) -> None:
        self.root = root
        self.ns = RootNamespace(root)
        self.real_sync = real_sync
        self.fsync_delay_s = fsync_delay_s
        self.durable: list[tuple[int, int, int]] = []   # (st_ino, bytes written below, monotonic ns)
        self._written_end: dict[tuple[int, int], int] = {}   # per file: the end of its highest write
        self.pending = PendingWrites()
        self.names = NamespaceLog()
        self._mutex = threading.RLock()
        self.keys: dict[int, tuple[int, int]] = {}   # open fh -> (st_dev, st_ino)
        self.crashed = False
        self.counts = dict(writes=0, bytes_written=0, sync_writes=0, fsyncs=0, fdatasyncs=0, fsyncdirs=0,
                           crashes=0, flushes_cut=0)
        self._generation = 0   # bumped by every crash: a flush that saw another one was cut
        self._in_flight = 0    # file flushes between their real sync and their commit
        self._armed = False
        self._crashed_event = threading.Event()
        self._last_crash: dict = {}
        self._graves = 0
        prepare_graveyard(root)

    # ---------------------------------------------------------- helpers

    def _key(self, fd: int) -> tuple[int, int]:
        key = self.keys.get(fd)
        if key is None:
            st = os.fstat(fd)
            key = (st.st_dev, st.st_ino)
        return key

    def _opener(self, fd: int) -> Callable[[], FdFile]:
        return lambda: FdFile.reopen(fd)

    def _open_fh(self, fd: int) -> int:
        st = os.fstat(fd)
        self.keys[fd] = (st.st_dev, st.st_ino)
        return fd

    # ---------------------------------------------------------- reads

    def getattr(self, path, fh=None):
        st = os.fstat(fh) if fh else os.stat(backing_rel(path), dir_fd=self.root, follow_symlinks=False)
        attrs = {k: getattr(st, k) for k in _STAT_KEYS}
        attrs.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
        return attrs

    def readlink(self, path):
        return os.readlink(backing_rel(path), dir_fd=self.root)

    def opendir(self, path):
        return os.open(backing_rel(path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=self.root)

    def readdir(self, path, fh):
        # Entries need an inode number (use_ino): readdir(3) callers skip d_ino == 0.
        me = os.fstat(fh)
        out = [(".", {"st_ino": me.st_ino, "st_mode": me.st_mode}, 0), ("..", {"st_mode": stat.S_IFDIR}, 0)]
        with os.scandir(fh) as it:
            for e in it:
                if path == "/" and e.name == GRAVEYARD:
                    continue
                out.append((e.name, {"st_ino": e.inode(), "st_mode": _dirent_mode(e)}, 0))
        return out

    def releasedir(self, path, fh):
        os.close(fh)
        return 0

    def statfs(self, path):
        sv = os.statvfs(self.root)
        return {k: getattr(sv, k) for k in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail",
                                            "f_files", "f_ffree", "f_favail", "f_flag", "f_namemax")}

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    # ---------------------------------------------------------- open / close

    def open(self, path, flags):
        rel = backing_rel(path)
        if not flags & _WRITE_ACCESS:
            return self._open_fh(os.open(rel, (flags & ~_STRIP_OPEN) | os.O_CLOEXEC, dir_fd=self.root))
        with self._mutex:
            self._check_alive()
            fd = self._open_fh(os.open(rel, (flags & ~_STRIP_OPEN) | os.O_CLOEXEC, dir_fd=self.root))
            if flags & os.O_TRUNC:
                self.pending.record_truncate(self.keys[fd], self._opener(fd), 0)
                os.ftruncate(fd, 0)
            return fd

    def create(self, path, mode, flags=os.O_WRONLY):
        rel = backing_rel(path)
        base = (flags & ~_STRIP_OPEN) | os.O_CLOEXEC
        with self._mutex:
            self._check_alive()
            try:
                fd = os.open(rel, base | os.O_CREAT | os.O_EXCL, mode, dir_fd=self.root)
                self.names.add(Created(rel))
            except FileExistsError:
                if flags & os.O_EXCL:
                    raise
                fd = self._open_fh(os.open(rel, base, dir_fd=self.root))
                if flags & os.O_TRUNC:
                    self.pending.record_truncate(self.keys[fd], self._opener(fd), 0)
                    os.ftruncate(fd, 0)
            return self._open_fh(fd)

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        self.keys.pop(fh, None)
        os.close(fh)
        return 0

    # ---------------------------------------------------------- content

    def write(self, path, data, offset, fh, flags=0):
        """``flags`` are the write's: O_DSYNC/O_SYNC from the open or from pwritev2(RWF_DSYNC)."""
        with self._mutex:
            self._check_alive()
            key = self._key(fh)
            if flags & os.O_DSYNC:   # the write is itself a flush of new data
                self._fire_if_armed(True)
            self.pending.record(key, self._opener(fh), offset, len(data))
            n = os.pwrite(fh, data, offset)
            self._written_end[key] = max(self._written_end.get(key, 0), offset + n)
            self.counts["writes"] += 1
            self.counts["bytes_written"] += n
            if flags & os.O_DSYNC:   # a synchronous write is durable when it returns
                self._commit(fh, key, datasync=not flags & _O_FULLSYNC)
                self.counts["sync_writes"] += 1
            return n

    def truncate(self, path, length, fh=None):
        with self._mutex:
            self._check_alive()
            fd = fh if fh else os.open(backing_rel(path), os.O_WRONLY | os.O_CLOEXEC, dir_fd=self.root)
            try:
                self.pending.record_truncate(self._key(fd), self._opener(fd), length)
                os.ftruncate(fd, length)
            finally:
                if fd != fh:
                    os.close(fd)
            return 0

    def fallocate(self, path, mode, offset, length, fh):
        with self._mutex:
            self._check_alive()
            if mode in (0, FALLOC_FL_KEEP_SIZE):
                if mode == 0:   # may extend the size; the bytes it shows are zeros either way
                    self.pending.record(self._key(fh), self._opener(fh), offset, 0)
            elif mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE) and not mode & ~0x13:
                self.pending.record(self._key(fh), self._opener(fh), offset, length)
            else:   # collapse/insert range: they shift bytes, which the journal does not model
                raise mfusepy.FuseOSError(errno.EOPNOTSUPP)
            fallocate(fh, mode, offset, length)
            return 0

    def _commit(self, fh: int, key: tuple[int, int], datasync: bool) -> None:
        if self.real_sync:
            (os.fdatasync if datasync else os.fsync)(fh)
        self._committed(fh, key)

    def _committed(self, fh: int, key: tuple[int, int]) -> None:
        """Under the lock: every write to ``key`` so far is durable; the time goes in ``durable``.

        Logged with the end of the file's highest write, not its size: a WAL
        segment preallocated to its full size has that size from the start.
        """
        self.pending.sync(key)
        self.names.commit(self.ns)
        self.durable.append((key[1], self._written_end.get(key, 0), time.monotonic_ns()))

    def fsync(self, path, datasync, fh):
        """The real sync runs outside the lock, so a crash meanwhile cuts this flush (EIO)."""
        with self._mutex:
            self._check_alive()
            key = self._key(fh)
            generation, armed = self._generation, self._armed
            self._in_flight += 1
        try:
            time.sleep(self.fsync_delay_s)   # the slow-fsync nemesis: every flush takes this long
            if self.real_sync:
                (os.fdatasync if datasync else os.fsync)(fh)
        finally:
            with self._mutex:
                self._in_flight -= 1
        with self._mutex:
            if self._generation != generation or self.crashed:
                raise mfusepy.FuseOSError(errno.EIO)
            # the power goes as it would complete, if it began armed (and so slowed, when asked)
            self._fire_if_armed(armed and self.pending.pending(key) > 0)
            self._committed(fh, key)
            self.counts["fdatasyncs" if datasync else "fsyncs"] += 1
            return 0

    def _fire_if_armed(self, flushes_data: bool) -> None:
        """Under the lock, as a flush would take effect: crash now if armed and it would make data durable."""
        if self._armed and flushes_data:
            self._crash_locked(cutting=1)
            raise mfusepy.FuseOSError(errno.EIO)

    def fsyncdir(self, path, datasync, fh):
        with self._mutex:
            self._check_alive()
            if self.real_sync and fh:
                os.fsync(fh)
            self.names.commit(self.ns)
            self.counts["fsyncdirs"] += 1
            return 0

    # ---------------------------------------------------------- lifecycle / control

    def init(self, path):
        print("ready", flush=True)

    def destroy(self, path):
        with self._mutex:
            if not self.crashed:   # a clean unmount: everything written stays
                self.names.commit(self.ns)
                self.pending.close()
            remove_graveyard(self.root)

    def crash(self) -> dict:
        """Roll back and refuse changes; when already crashed, that crash's report again."""
        with self._mutex:
            if self.crashed:
                return {**self._last_crash, "already_crashed": True}
            return self._crash_locked()

    def _crash_locked(self, cutting: int = 0) -> dict:
        """``cutting``: a flush that is beginning now and will fail, besides those in flight."""
        cut = self._in_flight + cutting
        self.crashed = True
        self._armed = False
        self._generation += 1
        self.counts["crashes"] += 1
        self.counts["flushes_cut"] += cut
        report = self.pending.rollback(RollbackReport())
        self.names.rollback(self.ns, report)
        self._last_crash = {"ok": True, **report.to_json(), "flushes_cut": cut,
                            "at_ns": time.monotonic_ns()}   # the instant, on the machine's clock
        self._crashed_event.set()
        return self._last_crash

    def arm(self, timeout: float) -> dict:
        """Crash as the next flush of un-synced data would complete; wait up to ``timeout`` s for it."""
        with self._mutex:
            if not self.crashed:
                self._armed = True
        self._crashed_event.wait(timeout)
        with self._mutex:
            self._armed = False
            return {"ok": True, "crashed": self.crashed}

    def reset(self) -> dict:
        with self._mutex:
            self.crashed = False
            self._crashed_event.clear()
            return self.stats()

    def slow(self, delay_ms: float) -> dict:
        """From now on every file flush takes ``delay_ms`` longer (the slow-fsync nemesis)."""
        self.fsync_delay_s = delay_ms / 1000
        return {"ok": True, "fsync_delay_ms": delay_ms}

    def durable_log(self) -> dict:
        """Every file commit so far: ``[st_ino, end of the highest write, monotonic ns]``, oldest first."""
        with self._mutex:
            return {"ok": True, "log": [list(e) for e in self.durable]}

    def stats(self) -> dict:
        with self._mutex:
            return {"ok": True, "crashed": self.crashed, **self.pending.stats(),
                    "pending_namespace_ops": len(self.names), **self.counts}
