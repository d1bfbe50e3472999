"""WAL record codec and segment scanner (pure: bytes in, records and a verdict out).

A record is ``length u32 | crc32c u32 | seq u64 | payload``, big-endian.
``length`` counts seq + payload (so it is at least 8) and the CRC-32C covers
the same bytes; a zero ``length`` marks the start of the unused, zero-filled
(preallocated) end of a segment.

``scan`` walks a segment and returns every intact record up to the first
defect, plus where appending may resume (``end_offset``). It never yields a
record it has not verified in full, which is what keeps a torn or corrupt
tail from being applied. Defects:

- ``torn``: the buffer ends inside a record (a write cut short), or bytes
  other than zero follow the end marker (a zeroed length field, or a later
  block of a torn write that reached the disk before its first one). Fewer
  than 16 bytes that are all zero are unused space, not a defect: they are
  indistinguishable from a cut inside a length field's leading zero bytes,
  and a segment's slack after its last record may be that short;
- ``bad_length``: a length below 8 or above ``max_record + 8``;
- ``crc_mismatch``: the length fits but the CRC does not match.

Telling a crash's torn tail from corruption in the middle of a log is the
caller's policy: a defect followed only by zeros or the end of the segment is
what a crash leaves; anything else should stop recovery loudly.
"""

from __future__ import annotations

import struct
from typing import Literal, NamedTuple

from crc32c import crc32c

HEADER = struct.Struct(">IIQ")  # length, crc32c, seq
HEADER_SIZE = HEADER.size  # 16
_LEN_CRC = struct.Struct(">II")
_SEQ = struct.Struct(">Q")
SEQ_SIZE = 8
DEFAULT_MAX_RECORD = 1 << 20  #: payload bytes; far above any sequenced message
_U32, _U64 = 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF

DefectKind = Literal["torn", "crc_mismatch", "bad_length"]


class WalRecord(NamedTuple):
    offset: int  #: of the record's length field within the scanned buffer
    seq: int
    payload: bytes


class WalDefect(NamedTuple):
    offset: int
    kind: DefectKind
    detail: str


class WalScanResult(NamedTuple):
    records: list[WalRecord]
    end_offset: int  #: just past the last intact record: where appending resumes
    error: WalDefect | None


def record_size(payload_len: int) -> int:
    return HEADER_SIZE + payload_len


def encode_record(seq: int, payload: bytes) -> bytes:
    """One record, ready to append."""
    if not 0 <= seq <= _U64:
        raise ValueError(f"seq {seq!r} does not fit a u64")
    if len(payload) > _U32 - SEQ_SIZE:
        raise ValueError(f"payload of {len(payload)} bytes does not fit a record")
    body = _SEQ.pack(seq) + payload
    return _LEN_CRC.pack(len(body), crc32c(body)) + body


def scan(buf: bytes | bytearray | memoryview, max_record: int = DEFAULT_MAX_RECORD,
         start: int = 0) -> WalScanResult:
    """Every intact record from ``start`` up to the end marker or the first defect."""
    view = memoryview(buf).cast("B") if not isinstance(buf, bytes) else buf
    size = len(view)
    records: list[WalRecord] = []
    append = records.append
    if not 0 <= start <= size:
        raise ValueError(f"start {start} outside a buffer of {size} bytes")
    off = start
    max_length = max_record + SEQ_SIZE
    unpack_header = HEADER.unpack_from
    while True:
        left = size - off
        if left == 0:
            return WalScanResult(records, off, None)
        if left < HEADER_SIZE:
            if _all_zero(view, off):
                return WalScanResult(records, off, None)
            return WalScanResult(records, off, WalDefect(
                off, "torn", f"{left} bytes left, a record header needs {HEADER_SIZE}"))
        length, crc, seq = unpack_header(view, off)
        if length == 0:
            if _all_zero(view, off):
                return WalScanResult(records, off, None)
            return WalScanResult(records, off, WalDefect(
                off, "torn", "non-zero bytes after the zero-length end marker"))
        if length < SEQ_SIZE or length > max_length:
            return WalScanResult(records, off, WalDefect(
                off, "bad_length", f"length {length} not in {SEQ_SIZE}..{max_length}"))
        end = off + 8 + length
        if end > size:
            return WalScanResult(records, off, WalDefect(
                off, "torn", f"record of {8 + length} bytes, {left} left"))
        if crc32c(view[off + 8:end]) != crc:
            return WalScanResult(records, off, WalDefect(
                off, "crc_mismatch", f"record seq {seq} (as read), length {length}"))
        append(WalRecord(off, seq, bytes(view[off + HEADER_SIZE:end])))
        off = end


def _all_zero(view: bytes | memoryview, off: int) -> bool:
    if isinstance(view, bytes):
        return view.count(0, off) == len(view) - off
    return bytes(view[off:]).count(0) == len(view) - off
