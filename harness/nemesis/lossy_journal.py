"""Rollback journal of the lossy filesystem: what a power loss would undo.

Theory of operation
-------------------
The lossy filesystem (``lossyfs``) applies every change to the backing
directory at once, so readers see the page-cache view a running process sees.
This module remembers just enough to take back every change that no sync has
made durable; ``rollback`` then leaves the backing directory as a power loss
would: each file at its last-synced content and size, the namespace as of the
last sync. It does no I/O itself: files and directories are reached through
the two small interfaces below, so the journal is tested with in-memory fakes
and driven by the FUSE edge with real file descriptors.

Content (``PendingWrites``), per file, keyed by the caller (lossyfs uses
``(st_dev, st_ino)``, so renames and hard links share one journal). Before any
change to a file's bytes or size (write, truncate, fallocate, hole punch) the
caller calls ``record(key, opener, offset, length)``; the journal appends an
``Undo(offset, old_bytes, old_size)``. ``old_bytes`` are the bytes in
``[offset, offset+length)`` that existed *and* lie inside the file's
last-synced size: bytes beyond it are cut off by the oldest undo anyway, so
appends cost no copy. ``rollback`` replays a file's undos newest first --
``truncate(old_size)``, then ``pwrite(old_bytes, offset)`` -- and after the
oldest one the file has exactly its last-synced size and bytes. ``sync(key)``
(fsync or fdatasync of that file) drops its undos. On the first record of a
key the journal opens its own handle with ``opener()`` and keeps it until
sync or rollback, so the SUT may close, rename or unlink the file meanwhile.

Namespace (``NamespaceLog``): one ordered list of create, mkdir, symlink,
link, rename, unlink and rmdir since the last sync of anything on the mount.
Any fsync, fdatasync or directory fsync commits the whole list (a prefix
commit, as a journaling filesystem such as ext4 or xfs commits its running
transaction), so ``rollback`` always undoes a suffix, newest first, and each
undo finds the namespace exactly as its operation left it. Unlinked entries
and rename victims are not deleted but moved aside to a *grave* name chosen by
the caller; an undo moves them back, a commit purges them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable
from typing import Protocol


class FileAccess(Protocol):
    """A read-write handle to one file (lossyfs: a re-opened file descriptor)."""

    def pread(self, size: int, offset: int) -> bytes: ...
    def pwrite(self, data: bytes, offset: int) -> None: ...
    def size(self) -> int: ...
    def truncate(self, length: int) -> None: ...
    def close(self) -> None: ...


class NamespaceAccess(Protocol):
    """Path operations relative to the filesystem root (paths like ``a/b``)."""

    def unlink(self, path: str) -> None: ...
    def rmdir(self, path: str) -> None: ...
    def mkdir(self, path: str, mode: int) -> None: ...
    def rename(self, src: str, dst: str) -> None: ...
    def purge(self, grave: str) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Undo:
    offset: int
    old: bytes
    old_size: int


@dataclasses.dataclass(slots=True)
class _FileJournal:
    handle: FileAccess
    synced_size: int
    undos: list[Undo]
    written: int = 0   # bytes the SUT asked to change since the last sync


@dataclasses.dataclass(slots=True)
class RollbackReport:
    """What a rollback took back (``crash`` returns it as JSON)."""

    files: int = 0               # files whose content or size was rolled back
    bytes_discarded: int = 0     # bytes of un-synced writes/truncates thrown away
    writes_discarded: int = 0    # un-synced changes (writes, truncates, ...) thrown away
    bytes_restored: int = 0      # old bytes written back
    namespace_undone: int = 0    # create/rename/unlink/... taken back
    errors: list[str] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


class PendingWrites:
    """Per-file undo records of every change since that file's last sync."""

    def __init__(self) -> None:
        self._files: dict[Hashable, _FileJournal] = {}

    def _journal(self, key: Hashable, opener: Callable[[], FileAccess]) -> _FileJournal:
        j = self._files.get(key)
        if j is None:
            handle = opener()
            j = self._files[key] = _FileJournal(handle, handle.size(), [])
        return j

    def record(self, key: Hashable, opener: Callable[[], FileAccess], offset: int, length: int) -> None:
        """Call before a change to bytes ``[offset, offset+length)`` and/or the size of ``key``.

        A size-only change (extending truncate, fallocate) passes ``length=0``.
        """
        j = self._journal(key, opener)
        old_size = j.handle.size()
        end = min(offset + length, old_size, j.synced_size)
        old = j.handle.pread(end - offset, offset) if end > offset else b""
        j.undos.append(Undo(offset, old, old_size))
        j.written += length

    def record_truncate(self, key: Hashable, opener: Callable[[], FileAccess], length: int) -> None:
        """Call before ``truncate(length)``: a shrink must keep the bytes it cuts off."""
        j = self._journal(key, opener)
        size = j.handle.size()
        self.record(key, opener, length, max(0, size - length))
        if length > size:
            j.written += length - size

    def sync(self, key: Hashable) -> int:
        """The file was fsynced/fdatasynced: its changes are durable. Returns undos dropped."""
        j = self._files.pop(key, None)
        if j is None:
            return 0
        j.handle.close()
        return len(j.undos)

    def rollback(self, report: RollbackReport | None = None) -> RollbackReport:
        """Take back every un-synced change, newest first per file; forget everything."""
        report = report if report is not None else RollbackReport()
        files, self._files = self._files, {}
        for key, j in files.items():
            try:
                for u in reversed(j.undos):
                    j.handle.truncate(u.old_size)
                    if u.old:
                        j.handle.pwrite(u.old, u.offset)
                        report.bytes_restored += len(u.old)
                report.files += 1
                report.bytes_discarded += j.written
                report.writes_discarded += len(j.undos)
            except OSError as e:
                report.errors.append(f"rollback of file {key!r}: {e}")
            finally:
                try:
                    j.handle.close()
                except OSError:
                    pass
        return report

    def close(self) -> None:
        """Keep everything as it is (clean unmount) and release the handles."""
        files, self._files = self._files, {}
        for j in files.values():
            try:
                j.handle.close()
            except OSError:
                pass

    def stats(self) -> dict:
        return {
            "pending_files": len(self._files),
            "pending_bytes": sum(j.written for j in self._files.values()),
            "pending_records": sum(len(j.undos) for j in self._files.values()),
            "undo_bytes": sum(len(u.old) for j in self._files.values() for u in j.undos),
        }

    def pending(self, key: Hashable) -> int:
        """Undo records held for ``key`` (0 when it is in sync)."""
        j = self._files.get(key)
        return 0 if j is None else len(j.undos)


# ------------------------------------------------------------------ namespace


@dataclasses.dataclass(frozen=True, slots=True)
class Created:
    """A file, symlink, hard link or node appeared at ``path``; undo removes it."""
    path: str


@dataclasses.dataclass(frozen=True, slots=True)
class MadeDir:
    path: str


@dataclasses.dataclass(frozen=True, slots=True)
class Renamed:
    """``src`` moved to ``dst``; what ``dst`` named before (if anything) now lives at ``displaced``."""
    src: str
    dst: str
    displaced: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Removed:
    """``path`` was unlinked; the entry lives on at ``grave`` until the next commit."""
    path: str
    grave: str


@dataclasses.dataclass(frozen=True, slots=True)
class RemovedDir:
    path: str
    mode: int


NamespaceOp = Created | MadeDir | Renamed | Removed | RemovedDir


class NamespaceLog:
    """Namespace changes since the last sync of anything; committed as a whole, undone as a suffix."""

    def __init__(self) -> None:
        self._ops: list[NamespaceOp] = []

    def add(self, op: NamespaceOp) -> None:
        self._ops.append(op)

    def __len__(self) -> int:
        return len(self._ops)

    @property
    def ops(self) -> tuple[NamespaceOp, ...]:
        return tuple(self._ops)

    def graves(self) -> list[str]:
        out: list[str] = []
        for op in self._ops:
            if isinstance(op, Removed):
                out.append(op.grave)
            elif isinstance(op, Renamed) and op.displaced is not None:
                out.append(op.displaced)
        return out

    def commit(self, ns: NamespaceAccess) -> int:
        """Everything so far is durable: purge the graves. Returns the ops committed."""
        graves, n, self._ops = self.graves(), len(self._ops), []
        for grave in graves:
            try:
                ns.purge(grave)
            except OSError:
                pass
        return n

    def rollback(self, ns: NamespaceAccess, report: RollbackReport | None = None) -> RollbackReport:
        """Undo every op, newest first; an op that cannot be undone is reported and skipped."""
        report = report if report is not None else RollbackReport()
        ops, self._ops = self._ops, []
        for op in reversed(ops):
            try:
                _undo(ns, op)
                report.namespace_undone += 1
            except OSError as e:
                report.errors.append(f"undo of {op}: {e}")
        return report


def _undo(ns: NamespaceAccess, op: NamespaceOp) -> None:
    if isinstance(op, Created):
        ns.unlink(op.path)
    elif isinstance(op, MadeDir):
        ns.rmdir(op.path)
    elif isinstance(op, Renamed):
        ns.rename(op.dst, op.src)
        if op.displaced is not None:
            ns.rename(op.displaced, op.dst)
    elif isinstance(op, Removed):
        ns.rename(op.grave, op.path)
    elif isinstance(op, RemovedDir):
        ns.mkdir(op.path, op.mode)
    else:  # pragma: no cover - the union above is closed
        raise TypeError(f"not a namespace op: {op!r}")
