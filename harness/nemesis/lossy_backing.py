"""The backing directory's side of lossyfs: real files and paths behind the journal's interfaces.

``FdFile`` is ``lossy_journal.FileAccess`` over a descriptor; ``RootNamespace``
is ``lossy_journal.NamespaceAccess`` relative to the backing root's
descriptor (every path is resolved with ``*at`` calls from it, which is what
lets lossyfs mount over the very directory it serves). The *graveyard* is a
hidden directory in the backing root where unlinked entries and rename
victims wait until a sync makes their removal durable (then they are purged)
or a crash undoes it (then they are moved back). No FUSE here: this module is
tested on a plain temporary directory.
"""

from __future__ import annotations

import ctypes
import os
import stat
import sys

GRAVEYARD = ".lossyfs-graveyard"
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)


def fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    """fallocate(2) with any mode (os.posix_fallocate only does mode 0)."""
    if _libc.fallocate(fd, mode, offset, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


class FdFile:
    """``lossy_journal.FileAccess`` over a file descriptor this object owns."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def reopen(cls, fd: int) -> FdFile:
        """A read-write descriptor of the same inode (works after rename/unlink, or on O_WRONLY fds)."""
        return cls(os.open(f"/proc/self/fd/{fd}", os.O_RDWR | os.O_CLOEXEC))

    def pread(self, size: int, offset: int) -> bytes:
        return os.pread(self.fd, size, offset)

    def pwrite(self, data: bytes, offset: int) -> None:
        done = 0
        while done < len(data):
            done += os.pwrite(self.fd, data[done:], offset + done)

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def truncate(self, length: int) -> None:
        os.ftruncate(self.fd, length)

    def close(self) -> None:
        os.close(self.fd)


class RootNamespace:
    """``lossy_journal.NamespaceAccess`` relative to the backing directory's descriptor."""

    def __init__(self, root: int) -> None:
        self.root = root

    def unlink(self, path: str) -> None:
        os.unlink(path, dir_fd=self.root)

    def rmdir(self, path: str) -> None:
        os.rmdir(path, dir_fd=self.root)

    def mkdir(self, path: str, mode: int) -> None:
        os.mkdir(path, mode, dir_fd=self.root)

    def rename(self, src: str, dst: str) -> None:
        os.rename(src, dst, src_dir_fd=self.root, dst_dir_fd=self.root)

    def purge(self, grave: str) -> None:
        if stat.S_ISDIR(os.stat(grave, dir_fd=self.root, follow_symlinks=False).st_mode):
            os.rmdir(grave, dir_fd=self.root)
        else:
            os.unlink(grave, dir_fd=self.root)



def prepare_graveyard(root: int) -> None:
    """Create an empty graveyard in the backing root (emptying one a killed lossyfs left)."""
    try:
        os.mkdir(GRAVEYARD, 0o700, dir_fd=root)
    except FileExistsError:   # those entries were unlinked: let them go
        remove_graveyard(root)
        os.mkdir(GRAVEYARD, 0o700, dir_fd=root)


def remove_graveyard(root: int) -> None:
    """Delete every graveyard entry for good, then the graveyard itself."""
    try:
        gfd = os.open(GRAVEYARD, os.O_RDONLY | os.O_DIRECTORY, dir_fd=root)
    except FileNotFoundError:
        return
    try:
        for name in os.listdir(gfd):
            try:
                RootNamespace(gfd).purge(name)
            except OSError as e:
                print(f"lossyfs: cannot remove {GRAVEYARD}/{name}: {e}", file=sys.stderr, flush=True)
    finally:
        os.close(gfd)
    try:
        os.rmdir(GRAVEYARD, dir_fd=root)
    except OSError as e:
        print(f"lossyfs: cannot remove {GRAVEYARD}: {e}", file=sys.stderr, flush=True)
