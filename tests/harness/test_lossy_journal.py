"""The lossy filesystem's rollback journal, on in-memory files and namespaces (no FUSE needed)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.nemesis.lossy_journal import (
    Created, MadeDir, NamespaceLog, PendingWrites, Removed, RemovedDir, Renamed,
)


class MemFile:
    """``FileAccess`` over a shared bytearray (a second handle sees the same bytes, like an fd)."""

    def __init__(self, data: bytearray) -> None:
        self.data = data
        self.closed = False

    def pread(self, size: int, offset: int) -> bytes:
        return bytes(self.data[offset:offset + size])

    def pwrite(self, data: bytes, offset: int) -> None:
        if offset > len(self.data):
            self.data.extend(bytes(offset - len(self.data)))
        self.data[offset:offset + len(data)] = data

    def size(self) -> int:
        return len(self.data)

    def truncate(self, length: int) -> None:
        if length < len(self.data):
            del self.data[length:]
        else:
            self.data.extend(bytes(length - len(self.data)))

    def close(self) -> None:
        self.closed = True


class Disk:
    """Files by name; the SUT's view (``sut``) and the journal's handles share the bytes."""

    def __init__(self, **files: bytes) -> None:
        self.files = {k: bytearray(v) for k, v in files.items()}
        self.handles: list[MemFile] = []

    def opener(self, name: str):
        def open_() -> MemFile:
            h = MemFile(self.files[name])
            self.handles.append(h)
            return h
        return open_

    def write(self, j: PendingWrites, name: str, offset: int, data: bytes) -> None:
        j.record(name, self.opener(name), offset, len(data))
        MemFile(self.files[name]).pwrite(data, offset)

    def truncate(self, j: PendingWrites, name: str, length: int) -> None:
        j.record_truncate(name, self.opener(name), length)
        MemFile(self.files[name]).truncate(length)


def test_unsynced_append_is_cut_and_synced_prefix_kept():
    disk, j = Disk(f=b""), PendingWrites()
    disk.write(j, "f", 0, b"A" * 8)
    j.sync("f")
    disk.write(j, "f", 8, b"B" * 8)
    assert j.stats() == {"pending_files": 1, "pending_bytes": 8, "pending_records": 1, "undo_bytes": 0}
    report = j.rollback()
    assert bytes(disk.files["f"]) == b"A" * 8
    assert (report.files, report.bytes_discarded, report.bytes_restored) == (1, 8, 0)
    assert all(h.closed for h in disk.handles)
    assert j.stats()["pending_files"] == 0


def test_overwrite_of_synced_bytes_is_undone_newest_first():
    disk, j = Disk(f=b"0123456789"), PendingWrites()
    disk.write(j, "f", 2, b"ab")
    disk.write(j, "f", 3, b"XYZ")
    disk.write(j, "f", 8, b"tail-beyond")
    assert bytes(disk.files["f"]) == b"01aXYZ67tail-beyond"
    j.rollback()
    assert bytes(disk.files["f"]) == b"0123456789"


def test_only_bytes_inside_the_synced_size_are_copied():
    disk, j = Disk(f=b"x" * 10), PendingWrites()
    disk.write(j, "f", 6, b"y" * 100)     # 4 synced bytes overwritten, 96 appended
    assert j.stats()["undo_bytes"] == 4
    j.rollback()
    assert bytes(disk.files["f"]) == b"x" * 10


def test_shrink_then_regrow_restores_the_cut_bytes():
    disk, j = Disk(f=b"abcdefgh"), PendingWrites()
    disk.truncate(j, "f", 2)
    disk.truncate(j, "f", 20)           # zeros where "cdefgh" was
    disk.write(j, "f", 4, b"ZZ")
    j.rollback()
    assert bytes(disk.files["f"]) == b"abcdefgh"


def test_sync_commits_one_file_only():
    disk, j = Disk(a=b"", b=b""), PendingWrites()
    disk.write(j, "a", 0, b"aaaa")
    disk.write(j, "b", 0, b"bbbb")
    assert j.sync("a") == 1
    assert j.sync("a") == 0
    assert j.pending("a") == 0 and j.pending("b") == 1
    j.rollback()
    assert (bytes(disk.files["a"]), bytes(disk.files["b"])) == (b"aaaa", b"")


def test_close_keeps_everything():
    disk, j = Disk(f=b"old"), PendingWrites()
    disk.write(j, "f", 0, b"new!")
    j.close()
    assert bytes(disk.files["f"]) == b"new!"
    assert all(h.closed for h in disk.handles)
    assert j.rollback().files == 0


def test_a_failing_file_is_reported_and_the_rest_rolled_back():
    class Broken(MemFile):
        def truncate(self, length: int) -> None:
            raise OSError(5, "Input/output error")

    disk, j = Disk(good=b"", bad=b""), PendingWrites()
    j.record("bad", lambda: Broken(disk.files["bad"]), 0, 3)
    disk.write(j, "good", 0, b"xyz")
    report = j.rollback()
    assert bytes(disk.files["good"]) == b""
    assert report.files == 1 and len(report.errors) == 1 and "bad" in report.errors[0]


# One random history per example: writes, truncates, hole punches and syncs over three files.
_op = st.one_of(
    st.tuples(st.just("write"), st.sampled_from("abc"), st.integers(0, 64), st.binary(min_size=1, max_size=24)),
    st.tuples(st.just("truncate"), st.sampled_from("abc"), st.integers(0, 80), st.none()),
    st.tuples(st.just("punch"), st.sampled_from("abc"), st.integers(0, 64), st.integers(1, 16)),
    st.tuples(st.just("sync"), st.sampled_from("abc"), st.none(), st.none()),
)


@settings(max_examples=300, deadline=None)
@given(initial=st.fixed_dictionaries({k: st.binary(max_size=40) for k in "abc"}), ops=st.lists(_op, max_size=40))
def test_rollback_restores_exactly_the_last_synced_state(initial, ops):
    disk, j = Disk(**initial), PendingWrites()
    synced = {k: bytes(v) for k, v in initial.items()}
    for kind, name, x, y in ops:
        if kind == "write":
            disk.write(j, name, x, y)
        elif kind == "truncate":
            disk.truncate(j, name, x)
        elif kind == "punch":   # a hole punch / zero range: bytes change, the size does not
            f = disk.files[name]
            end = min(x + y, len(f))
            j.record(name, disk.opener(name), x, y)
            if end > x:
                f[x:end] = bytes(end - x)
        else:
            j.sync(name)
            synced[name] = bytes(disk.files[name])
    j.rollback()
    assert {k: bytes(v) for k, v in disk.files.items()} == synced
    assert all(h.closed for h in disk.handles)


# ------------------------------------------------------------------ namespace


class MemNamespace:
    """``NamespaceAccess`` over a dict path -> content (a directory's content is the str "dir")."""

    def __init__(self, entries: dict[str, object]) -> None:
        self.entries = dict(entries)
        self.purged: list[str] = []

    def unlink(self, path: str) -> None:
        if path not in self.entries or self.entries[path] == "dir":
            raise FileNotFoundError(path)
        del self.entries[path]

    def rmdir(self, path: str) -> None:
        if self.entries.get(path) != "dir" or any(p.startswith(path + "/") for p in self.entries):
            raise OSError(39, "Directory not empty", path)
        del self.entries[path]

    def mkdir(self, path: str, mode: int) -> None:
        self.entries[path] = "dir"

    def rename(self, src: str, dst: str) -> None:
        self.entries[dst] = self.entries.pop(src)

    def purge(self, grave: str) -> None:
        del self.entries[grave]
        self.purged.append(grave)


def _apply_history(ns: MemNamespace, log: NamespaceLog) -> None:
    """What lossyfs does for: mkdir d; create d/new; rename tmp over cur; unlink old; rmdir e."""
    ns.mkdir("d", 0o755)
    log.add(MadeDir("d"))
    ns.entries["d/new"] = b"n"
    log.add(Created("d/new"))
    ns.rename("cur", ".g/1")                 # the displaced target (lossyfs hard-links it)
    ns.rename("tmp", "cur")
    log.add(Renamed("tmp", "cur", ".g/1"))
    ns.rename("old", ".g/2")
    log.add(Removed("old", ".g/2"))
    ns.rmdir("e")
    log.add(RemovedDir("e", 0o700))


BEFORE = {".g": "dir", "cur": b"v1", "tmp": b"v2", "old": b"o", "e": "dir"}


def test_namespace_rollback_undoes_everything_newest_first():
    ns, log = MemNamespace(BEFORE), NamespaceLog()
    _apply_history(ns, log)
    assert ns.entries == {".g": "dir", ".g/1": b"v1", ".g/2": b"o", "cur": b"v2", "d": "dir", "d/new": b"n"}
    assert log.graves() == [".g/1", ".g/2"] and len(log) == 5
    report = log.rollback(ns)
    assert ns.entries == BEFORE
    assert report.namespace_undone == 5 and report.errors == [] and len(log) == 0


def test_namespace_commit_purges_graves_and_forgets():
    ns, log = MemNamespace(BEFORE), NamespaceLog()
    _apply_history(ns, log)
    assert log.commit(ns) == 5
    assert sorted(ns.purged) == [".g/1", ".g/2"]
    after = dict(ns.entries)
    assert log.rollback(ns).namespace_undone == 0
    assert ns.entries == after == {".g": "dir", "cur": b"v2", "d": "dir", "d/new": b"n"}


def test_namespace_undo_failure_is_reported_not_raised():
    ns, log = MemNamespace({}), NamespaceLog()
    log.add(Created("vanished"))
    report = log.rollback(ns)
    assert report.namespace_undone == 0 and len(report.errors) == 1

