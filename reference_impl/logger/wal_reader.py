"""The WAL's read side: segment names, scanning, a sparse seq index, ranged reads, verify.

A WAL is a directory of segments ``wal-<first_seq:020d>.seg``, each filled
front to back with ``core.wal_codec`` records and zero bytes after the last
(``wal`` has the writer and the whole theory of operation).
``SparseIndex`` keeps one ``(seq, offset)`` per ``index_every`` records of a
segment; ``WalReader`` builds it lazily (one scan) for a segment the writer
does not index. ``WalReader.read_range`` seeks to the nearest indexed offset
and reads forward with ``pread``; ``verify`` names the first bad record.
"""

from __future__ import annotations

import os
import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reference_impl.core import wal_codec
from reference_impl.core.wal_codec import HEADER, HEADER_SIZE, WalRecord, WalScanResult

SEGMENT_RE = re.compile(r"wal-(\d{20})\.seg")
READ_CHUNK = 256 << 10
QUARANTINE = "quarantine"


def segment_name(first_seq: int) -> str:
    return f"wal-{first_seq:020d}.seg"


def list_segments(directory: str | Path) -> list[tuple[int, Path]]:
    """(first seq, path) of every segment, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        m = SEGMENT_RE.fullmatch(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def scan_segment(buf: bytes, ignore_crc: bool = False, start: int = 0) -> WalScanResult:
    """``wal_codec.scan``; with ``ignore_crc`` (test-only fault) CRC mismatches pass."""
    res = wal_codec.scan(buf, start=start)
    if not ignore_crc:
        return res
    records = list(res.records)
    while res.error is not None and res.error.kind == "crc_mismatch":
        off = res.error.offset
        length, _crc, seq = HEADER.unpack_from(buf, off)
        end = off + 8 + length
        records.append(WalRecord(off, seq, bytes(buf[off + HEADER_SIZE:end])))
        res = wal_codec.scan(buf, start=end)
        records += res.records
    return WalScanResult(records, res.end_offset, res.error)


class SparseIndex:
    """One (seq, offset) entry per ``every`` records of one segment."""

    __slots__ = ("every", "seqs", "offsets", "_count")

    def __init__(self, every: int) -> None:
        self.every = max(1, every)
        self.seqs: list[int] = []
        self.offsets: list[int] = []
        self._count = 0

    def add(self, seq: int, offset: int) -> None:
        if self._count % self.every == 0:
            self.seqs.append(seq)
            self.offsets.append(offset)
        self._count += 1

    def floor(self, seq: int) -> int:
        """The offset of the latest indexed record at or before ``seq`` (0 if none)."""
        i = bisect_right(self.seqs, seq) - 1
        return self.offsets[i] if i >= 0 else 0


@dataclass(frozen=True, slots=True)
class BadRecord:
    segment: str
    offset: int
    reason: str  #: torn | bad_length | crc_mismatch | seq_gap
    detail: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    segments: int
    records: int  #: intact records checked before the first bad one
    first_seq: int | None
    last_seq: int | None
    bad: BadRecord | None


class WalReader:
    """Reads a WAL directory: ranges by seq (archive), every record (dump), verify."""

    def __init__(self, directory: str | Path, index_every: int = 256, ignore_crc: bool = False,
                 indexes: dict[int, SparseIndex] | None = None) -> None:
        self.directory = Path(directory)
        self.index_every = index_every
        self.ignore_crc = ignore_crc
        self.indexes = indexes if indexes is not None else {}

    def segments(self) -> list[tuple[int, Path]]:
        return list_segments(self.directory)

    def _index(self, first: int, path: Path) -> SparseIndex:
        idx = self.indexes.get(first)
        if idx is None:
            idx = SparseIndex(self.index_every)
            for rec in scan_segment(path.read_bytes(), self.ignore_crc).records:
                idx.add(rec.seq, rec.offset)
            self.indexes[first] = idx
        return idx

    def read_range(self, first_seq: int, count: int) -> list[tuple[int, bytes]]:
        """Up to ``count`` consecutive (seq, payload) from ``first_seq`` (fewer if absent)."""
        segs = self.segments()
        i = bisect_right([s for s, _ in segs], first_seq) - 1
        if i < 0:
            return []  # before the WAL's first seq
        out: list[tuple[int, bytes]] = []
        want = first_seq
        while i < len(segs) and len(out) < count:
            seg_first, path = segs[i]
            if seg_first > want:
                break  # a gap between segments: serve only the contiguous part
            offset = self._index(seg_first, path).floor(want)
            with open(path, "rb", buffering=0) as f:
                want = self._read_segment(f.fileno(), offset, want, count, out)
            i += 1
        return out

    def _read_segment(self, fd: int, offset: int, want: int, count: int,
                      out: list[tuple[int, bytes]]) -> int:
        chunk = READ_CHUNK
        while len(out) < count:
            buf = os.pread(fd, chunk, offset)
            res = scan_segment(buf, self.ignore_crc)
            for rec in res.records:
                if rec.seq == want:
                    out.append((rec.seq, rec.payload))
                    want += 1
                    if len(out) == count:
                        return want
            if len(buf) < chunk or not self._cut_by_chunk(buf, res):
                return want  # end marker, end of file or a defect
            if res.end_offset == 0:
                chunk *= 2  # one record larger than the chunk
            offset += res.end_offset
        return want

    @staticmethod
    def _cut_by_chunk(buf: bytes, res: WalScanResult) -> bool:
        """Did the scan stop only because the read chunk ended inside a record?"""
        end = res.end_offset
        if res.error is None:
            return end == len(buf)
        if res.error.kind != "torn":
            return False
        if len(buf) - end < HEADER_SIZE:
            return True
        length = HEADER.unpack_from(buf, end)[0]
        return length != 0 and end + 8 + length > len(buf)

    def iter_segments(self) -> Iterator[tuple[int, Path, WalScanResult]]:
        """Each segment with its full scan (records, end, first defect)."""
        for first, path in self.segments():
            yield first, path, scan_segment(path.read_bytes(), self.ignore_crc)

    def verify(self) -> VerifyReport:
        """Check every record: length, CRC, and seqs gap-free across segments."""
        checked, first_seq, expect = 0, None, None
        segs = 0
        for seg_first, path, res in self.iter_segments():
            segs += 1
            if expect is not None and res.records and seg_first != expect:
                return VerifyReport(segs, checked, first_seq, expect - 1, BadRecord(
                    path.name, 0, "seq_gap", f"segment starts at seq {seg_first}, expected {expect}"))
            expect = seg_first if expect is None else expect
            for rec in res.records:
                if rec.seq != expect:
                    return VerifyReport(segs, checked, first_seq, expect - 1, BadRecord(
                        path.name, rec.offset, "seq_gap", f"record seq {rec.seq}, expected {expect}"))
                if first_seq is None:
                    first_seq = rec.seq
                checked += 1
                expect += 1
            if res.error is not None:
                e = res.error
                return VerifyReport(segs, checked, first_seq, expect - 1 if checked else None,
                                    BadRecord(path.name, e.offset, e.kind, e.detail))
        return VerifyReport(segs, checked, first_seq, expect - 1 if checked else None, None)
