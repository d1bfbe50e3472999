"""WAL surgery for the zero-loss suite: damage a stopped logger's segments, read what is intact.

``corrupt_tail`` cuts short (``torn``) or flips one bit of (``bitflip``) the
last record of the last segment, what a crash can leave; ``flip_middle``
flips one bit in a record that intact records follow, what no crash
explains. Both act on the files of a logger that is not running and return
what they did, as evidence for the fault window. ``intact_seqs`` reads the
seqs in front of the first defect (CRC checked).
"""

from __future__ import annotations

import os
from pathlib import Path

from reference_impl.core import wal_codec
from reference_impl.logger.wal_reader import WalReader, list_segments


def _flip_bit(path: Path, at: int) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        byte = f.read(1)[0]
        f.seek(at)
        f.write(bytes([byte ^ 0x10]))


def corrupt_tail(directory: Path, how: str) -> dict:
    """Cut short (``torn``) or flip one bit of (``bitflip``) the last record of the last segment."""
    _first, path = list_segments(directory)[-1]
    data = path.read_bytes()
    res = wal_codec.scan(data)
    if not res.records:
        return {"segment": path.name, "records": 0}
    last = res.records[-1]
    size = wal_codec.HEADER_SIZE + len(last.payload)
    if how == "torn":
        cut = last.offset + wal_codec.HEADER_SIZE + len(last.payload) // 2
        os.truncate(path, cut)
        done = {"truncated_at": cut}
    else:
        at = last.offset + wal_codec.HEADER_SIZE + len(last.payload) // 2
        _flip_bit(path, at)
        done = {"flipped_byte_at": at}
    return {"segment": path.name, "last_seq": last.seq, "record_offset": last.offset,
            "record_bytes": size, **done}


def intact_seqs(directory: Path) -> list[int]:
    """Seqs of the records in front of the first defect (CRC checked)."""
    seqs = []
    for _first, _path, res in WalReader(directory).iter_segments():
        seqs += [r.seq for r in res.records]
        if res.error is not None:
            break
    return seqs


def flip_middle(directory: Path) -> dict:
    """Flip one bit inside a record in the middle of the last segment (intact records follow).

    Returns what was done, with the segment's original bytes under
    ``"original"`` so the trial can put the WAL back afterwards.
    """
    _first, path = list_segments(directory)[-1]
    data = path.read_bytes()
    res = wal_codec.scan(data)
    if len(res.records) < 3:
        return {"segment": path.name, "records": len(res.records), "records_after": 0,
                "path": path, "original": None}
    i = len(res.records) // 2
    rec = res.records[i]
    at = rec.offset + wal_codec.HEADER_SIZE + len(rec.payload) // 2
    _flip_bit(path, at)
    return {"segment": path.name, "records": len(res.records), "flipped_seq": rec.seq,
            "record_offset": rec.offset, "flipped_byte_at": at,
            "records_after": len(res.records) - i - 1, "path": path, "original": data}
