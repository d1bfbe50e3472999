"""lossyfs's namespace operations: create, remove and rename entries, journaled for rollback.

``NamespaceOperations`` is the base of ``lossy_ops.LossyOperations``: every
operation that changes a name (mknod, mkdir, symlink, link, unlink, rmdir,
rename) is applied to the backing directory at once and recorded in the
``NamespaceLog``, so that a crash undoes every one no sync has committed. An
unlinked entry, and the victim of a rename over an existing file, is moved
to a grave name in the hidden graveyard rather than deleted, so its undo can
move it back. Attribute changes (chmod, chown, utimens) take effect at once
and are never rolled back. The subclass owns the lock, the crash state and
the content journal.
"""

from __future__ import annotations

import errno
import os
import stat
import threading

import mfusepy

from harness.nemesis.lossy_backing import GRAVEYARD, RootNamespace
from harness.nemesis.lossy_journal import Created, MadeDir, NamespaceLog, Removed, RemovedDir, Renamed

RENAME_NOREPLACE = 1


def backing_rel(path: str) -> str:
    """A FUSE path as a path relative to the backing root; the graveyard does not exist."""
    rel = path.lstrip("/")
    if rel.split("/", 1)[0] == GRAVEYARD:
        raise mfusepy.FuseOSError(errno.ENOENT)
    return rel or "."


class NamespaceOperations(mfusepy.Operations):
    """The FUSE operations on names, over the backing root ``root`` (a directory descriptor)."""

    root: int
    ns: RootNamespace
    names: NamespaceLog
    crashed: bool
    _mutex: threading.RLock
    _graves: int

    def _check_alive(self) -> None:
        if self.crashed:
            raise mfusepy.FuseOSError(errno.EIO)

    def _grave(self) -> str:
        self._graves += 1
        return f"{GRAVEYARD}/{self._graves}"

    def _lexists(self, rel: str) -> os.stat_result | None:
        try:
            return os.stat(rel, dir_fd=self.root, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def mknod(self, path, mode, dev):
        with self._mutex:
            self._check_alive()
            os.mknod(backing_rel(path), mode, dev, dir_fd=self.root)
            self.names.add(Created(backing_rel(path)))
            return 0

    def mkdir(self, path, mode):
        with self._mutex:
            self._check_alive()
            os.mkdir(backing_rel(path), mode, dir_fd=self.root)
            self.names.add(MadeDir(backing_rel(path)))
            return 0

    def symlink(self, target, source):
        with self._mutex:
            self._check_alive()
            os.symlink(source, backing_rel(target), dir_fd=self.root)
            self.names.add(Created(backing_rel(target)))
            return 0

    def link(self, target, source):
        with self._mutex:
            self._check_alive()
            os.link(backing_rel(source), backing_rel(target), src_dir_fd=self.root, dst_dir_fd=self.root,
                    follow_symlinks=False)
            self.names.add(Created(backing_rel(target)))
            return 0

    def unlink(self, path):
        rel = backing_rel(path)
        with self._mutex:
            self._check_alive()
            if self._lexists(rel) is None:
                raise mfusepy.FuseOSError(errno.ENOENT)
            grave = self._grave()
            self.ns.rename(rel, grave)
            self.names.add(Removed(rel, grave))
            return 0

    def rmdir(self, path):
        rel = backing_rel(path)
        with self._mutex:
            self._check_alive()
            mode = os.stat(rel, dir_fd=self.root, follow_symlinks=False).st_mode
            os.rmdir(rel, dir_fd=self.root)
            self.names.add(RemovedDir(rel, stat.S_IMODE(mode)))
            return 0

    def rename(self, old, new, flags=0):
        src, dst = backing_rel(old), backing_rel(new)
        with self._mutex:
            self._check_alive()
            if flags & ~RENAME_NOREPLACE:   # RENAME_EXCHANGE / WHITEOUT: not modelled
                raise mfusepy.FuseOSError(errno.EINVAL)
            s, d = self._lexists(src), self._lexists(dst)
            if s is None:
                raise mfusepy.FuseOSError(errno.ENOENT)
            if d is not None and flags & RENAME_NOREPLACE:
                raise mfusepy.FuseOSError(errno.EEXIST)
            if d is not None and (d.st_dev, d.st_ino) == (s.st_dev, s.st_ino):
                return 0   # two links to one inode: rename(2) does nothing
            displaced = None
            if d is not None:
                displaced = self._grave()
                if stat.S_ISDIR(d.st_mode):
                    if not stat.S_ISDIR(s.st_mode):
                        raise mfusepy.FuseOSError(errno.EISDIR)
                    self.ns.rename(dst, displaced)   # an empty dir: not atomic, but nobody can see it
                else:
                    os.link(dst, displaced, src_dir_fd=self.root, dst_dir_fd=self.root,
                            follow_symlinks=False)
            try:
                self.ns.rename(src, dst)
            except OSError:
                if displaced is not None:
                    if stat.S_ISDIR(d.st_mode):
                        self.ns.rename(displaced, dst)
                    else:
                        os.unlink(displaced, dir_fd=self.root)
                raise
            self.names.add(Renamed(src, dst, displaced))
            return 0

    def chmod(self, path, mode):
        self._check_alive()
        os.chmod(backing_rel(path), mode, dir_fd=self.root)
        return 0

    def chown(self, path, uid, gid):
        self._check_alive()
        os.chown(backing_rel(path), uid, gid, dir_fd=self.root, follow_symlinks=False)
        return 0

    def utimens(self, path, times=None):
        self._check_alive()
        os.utime(backing_rel(path), ns=times, dir_fd=self.root, follow_symlinks=False)
        return 0
