"""The WAL's file edge: preallocated segment files, group commit, reads, verify.

Theory of operation
-------------------
A WAL is a directory of segments ``wal-<first_seq:020d>.seg``, each
preallocated to ``segment_bytes`` (``posix_fallocate``, else ``ftruncate``)
and filled front to back with ``core.wal_codec`` records; the zero bytes after
the last record are the unused end (a zero length field is the end marker).
Seqs run gap-free across segments: a segment's first record is its name's seq.

``WalWriter`` appends. ``append`` encodes into a pending buffer; ``write``
puts the whole buffer down with one ``pwrite``; ``sync`` makes it durable
with one ``fdatasync`` (group commit: the cost is per flush, not per record).
A record that does not fit the active segment rotates: the old segment is
written and fdatasynced, then the new one is created, preallocated, fsynced
and the directory fsynced, so a crash can leave a torn tail only in the last
segment. Writes never go through mmap: a filesystem below (the harness's
lossy FUSE filesystem) cannot see mmap stores, so mmap is not certifiable for
power loss.

Opening an existing directory recovers: the last segment is scanned, appending
resumes after its last intact record (``next_seq = last + 1``), and a defect
(torn write, bad length, CRC mismatch) ends the valid log there. A defect
is a crash's torn tail only if nothing valid follows it: recovery scans
forward from the defect (``find_record_after``: every offset, up to
``RESYNC_SCAN_BYTES`` past it) for a plausible header (length in range, seq
above the last intact one and no further than the bytes allow) whose CRC
checks. If it finds one, durable data is corrupt in the middle of the log:
``WalCorruptError`` (naming the segment, both offsets and ``crucible wal
verify``), and nothing is cut. Otherwise the bytes
from the defect to the last non-zero byte are *cut*: first copied to
``quarantine/<segment>.<offset>.cut`` (fsynced), then logged (offset, size,
reason, sha256), then zeroed in place and fdatasynced. Nothing is dropped
silently, the quarantine keeps the evidence, and the log stays one valid
prefix (``crucible wal verify`` is clean after a recovery). A logger that
restarts re-fetches the cut seqs from the sequencer's ring like any gap.

``SparseIndex`` keeps one ``(seq, offset)`` per ``index_every`` records of a
segment; the writer maintains it for the active segment and ``WalReader``
builds it lazily (one scan) for the others. ``WalReader.read_range`` seeks to
the nearest indexed offset and reads forward with ``pread``. The read side
(segment names and scans, ``SparseIndex``, ``WalReader``, verify) is in
``wal_reader``; this module is the writer and its recovery.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from crc32c import crc32c

from reference_impl.core import wal_codec
from reference_impl.core.errors import SequenceGapError
from reference_impl.core.wal_codec import WalDefect
from reference_impl.logger.wal_reader import (
    QUARANTINE,
    SparseIndex,
    WalReader,
    list_segments,
    scan_segment,
    segment_name,
)

MIN_SEGMENT_BYTES = 4096
#: how far past a defect recovery looks for a valid record (16 of the largest records)
RESYNC_SCAN_BYTES = 16 * (wal_codec.DEFAULT_MAX_RECORD + wal_codec.HEADER_SIZE)


def find_record_after(data: bytes, start: int, min_seq: int,
                      limit: int = RESYNC_SCAN_BYTES) -> tuple[int, int] | None:
    """The first ``(offset, seq)`` in ``data[start:start + limit]`` of a CRC-valid record.

    A candidate must look like a record the log could hold there: a length
    in ``8..max_record + 8`` that ends inside ``data``, and a seq at least
    ``min_seq`` and at most ``min_seq`` plus the number of records the bytes
    could hold; only then is its CRC computed, so random bytes cost one
    header unpack per offset.
    """
    end = len(data.rstrip(b"\0"))
    stop = min(end - wal_codec.HEADER_SIZE, start + limit)
    max_length = wal_codec.DEFAULT_MAX_RECORD + wal_codec.SEQ_SIZE
    max_seq = min_seq + (end - start) // wal_codec.HEADER_SIZE
    unpack = wal_codec.HEADER.unpack_from
    for off in range(start, stop + 1):
        length, crc, seq = unpack(data, off)
        if (wal_codec.SEQ_SIZE <= length <= max_length and min_seq <= seq <= max_seq
                and off + 8 + length <= end and crc32c(data[off + 8:off + 8 + length]) == crc):
            return off, seq
    return None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Recovery:
    """What opening an existing WAL found."""

    next_seq: int
    segment: str
    records: int  #: intact records in the last segment
    defect: WalDefect | None
    cut_bytes: int
    quarantine: str | None


class WalWriter:
    """Appends records with group commit; recovers the valid end on open."""

    def __init__(self, directory: str | Path, segment_bytes: int, index_every: int = 256,
                 first_seq: int = 1, ignore_crc: bool = False, sync_delay_s: float = 0.0,
                 log: Callable[[str], None] = _stderr) -> None:
        if segment_bytes < MIN_SEGMENT_BYTES:
            raise ValueError(f"segment_bytes {segment_bytes} below {MIN_SEGMENT_BYTES}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self.index_every = index_every
        self.ignore_crc = ignore_crc
        self.sync_delay_s = sync_delay_s
        self.log = log
        self.indexes: dict[int, SparseIndex] = {}
        self.pending = bytearray()
        self.fsyncs = 0
        self.writes = 0
        self.fd = -1
        self.recovery: Recovery | None = None
        segs = list_segments(self.directory)
        if segs:
            self.first_seq = segs[0][0]
            self._recover(*segs[-1])
        else:
            self.first_seq = first_seq
            self.next_seq = first_seq
            self._create(first_seq)
        self.written_seq = self.durable_seq = self.next_seq - 1
        self.reader = WalReader(self.directory, index_every, ignore_crc, self.indexes)

    # ------------------------------------------------------------ segments

    def _create(self, first: int) -> None:
        path = self.directory / segment_name(first)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.posix_fallocate(fd, 0, self.segment_bytes)
        except OSError:  # e.g. a FUSE filesystem without fallocate
            os.ftruncate(fd, self.segment_bytes)
        os.fsync(fd)
        _fsync_dir(self.directory)
        self.fd, self.segment_first, self.offset = fd, first, 0
        self.index = self.indexes[first] = SparseIndex(self.index_every)

    def _recover(self, first: int, path: Path) -> None:
        data = path.read_bytes()
        res = scan_segment(data, self.ignore_crc)
        index = SparseIndex(self.index_every)
        expect = first
        for rec in res.records:
            if rec.seq != expect:
                raise WalCorruptError(f"{path}: record at offset {rec.offset} has seq {rec.seq}, "
                                      f"expected {expect}; refusing to append")
            index.add(rec.seq, rec.offset)
            expect += 1
        if res.error is not None:
            found = find_record_after(data, res.end_offset + 1, expect)
            if found is not None:
                off, seq = found
                raise WalCorruptError(
                    f"{path}: {res.error.kind} at offset {res.end_offset} "
                    f"({res.error.detail}), but a CRC-valid record (seq {seq}) follows at "
                    f"offset {off}: durable data is corrupt in the middle of the segment, "
                    f"not a torn tail; refusing to cut it. Inspect with "
                    f"`crucible wal verify {self.directory}`")
        self.fd = os.open(path, os.O_RDWR)
        self.segment_first, self.offset, self.next_seq = first, res.end_offset, expect
        self.index = self.indexes[first] = index
        cut, saved = 0, None
        if res.error is not None:
            cut, saved = self._cut_tail(path, data, res.end_offset, res.error)
        if len(data) < self.segment_bytes:  # a lost preallocation: restore it
            os.ftruncate(self.fd, self.segment_bytes)
        os.fsync(self.fd)
        self.recovery = Recovery(expect, path.name, len(res.records), res.error, cut, saved)

    def _cut_tail(self, path: Path, data: bytes, end: int, defect: WalDefect) -> tuple[int, str]:
        last = len(data.rstrip(b"\0"))
        tail = data[end:last]
        qdir = self.directory / QUARANTINE
        qdir.mkdir(exist_ok=True)
        qpath = qdir / f"{path.name}.{end}.cut"
        with open(qpath, "wb") as f:
            f.write(tail)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(qdir)
        self.log(f"wal: {defect.kind} in {path.name} at offset {end} ({defect.detail}); "
                 f"cutting {len(tail)} bytes [{end}, {last}) sha256 "
                 f"{hashlib.sha256(tail).hexdigest()}, saved to {qpath}; "
                 f"appending resumes at seq {self.next_seq}")
        os.pwrite(self.fd, bytes(len(tail)), end)
        os.fdatasync(self.fd)
        return len(tail), str(qpath)

    def _rotate(self) -> None:
        self.write()
        self.sync()
        os.close(self.fd)
        self._create(self.next_seq)

    # ------------------------------------------------------------ appending

    def append(self, seq: int, payload: bytes) -> None:
        """Queue one record; seqs must be consecutive (the WAL holds each seq once)."""
        if seq != self.next_seq:
            raise SequenceGapError(self.next_seq, seq)
        record = wal_codec.encode_record(seq, payload)
        size = len(record)
        if size > self.segment_bytes:
            raise ValueError(f"record of {size} bytes does not fit a {self.segment_bytes}-byte segment")
        if self.offset + len(self.pending) + size > self.segment_bytes:
            self._rotate()
        self.index.add(seq, self.offset + len(self.pending))
        self.pending += record
        self.next_seq = seq + 1

    def write(self) -> int:
        """Put every pending record down with one pwrite; returns the written seq."""
        pending = self.pending
        if pending:
            view = memoryview(pending)
            done = 0
            while done < len(pending):
                done += os.pwrite(self.fd, view[done:], self.offset + done)
            view.release()
            self.offset += done
            pending.clear()
            self.writes += 1
            self.written_seq = self.next_seq - 1
        return self.written_seq

    def sync(self) -> int:
        """fdatasync once if anything written is not yet durable; returns the durable seq."""
        if self.durable_seq < self.written_seq:
            if self.sync_delay_s:
                time.sleep(self.sync_delay_s)  # fault fsync_delay_ms (test-only)
            os.fdatasync(self.fd)
            self.fsyncs += 1
            self.durable_seq = self.written_seq
        return self.durable_seq

    @property
    def records(self) -> int:
        return self.next_seq - self.first_seq

    def segment_count(self) -> int:
        return len(list_segments(self.directory))

    def close(self) -> None:
        if self.fd >= 0:
            self.write()
            self.sync()
            os.close(self.fd)
            self.fd = -1


class WalCorruptError(RuntimeError):
    """The WAL on disk breaks an invariant a crash cannot explain.

    A seq out of place, or a defect with CRC-valid records after it
    (corruption in the middle of durable data, not a torn tail).
    """
