"""The ``crucible-wal-1`` WAL format from the harness side: read the intact records, damage them.

``crucible-wal-1`` is the reference logger's WAL (docs/wal-format.md): a
directory of segments ``wal-<first_seq:020d>.seg``, each filled front to back
with ``core.wal_codec`` records (``length | crc32c | seq | payload``) and zero
bytes after the last. Any SUT that stores its sequenced input this way can
declare it (``wal: {format: crucible-wal-1}``), and both adapters read and
damage it here, from the documented format and the pure codec alone: the
harness judges a WAL without the SUT's own reader.

- ``records(DIR)``: ``(seq, payload)`` of every intact record, stopping at
  the first defect (a torn tail, a CRC mismatch), as recovery would.
- ``damage(DIR, how)``: ``torn`` cuts the last record of the last segment
  short, ``bitflip`` flips one bit of its payload (what a crash can leave);
  ``bitflip-middle`` flips a bit in a record that intact records follow
  (what no crash explains). Returns what was done, and the segment's
  original bytes so that ``restore`` can put them back.
- ``verify(DIR)``: ``crucible wal verify DIR`` (exit 1 names a bad record).

``WalDir`` binds these to one directory and keeps the last damage's original
bytes: it is what an adapter's ``wal_records``, ``damage_wal``,
``repair_wal`` and ``verify_wal`` delegate to.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from reference_impl.core import wal_codec

FORMAT = "crucible-wal-1"
SEGMENT_RE = re.compile(r"wal-(\d{20})\.seg")
VERIFY_TIMEOUT_S = 60


def segments(directory: str | Path) -> list[Path]:
    """The segment files, oldest first (none for a missing directory)."""
    d = Path(directory)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if SEGMENT_RE.fullmatch(p.name))


def records(directory: str | Path) -> list[tuple[int, bytes]]:
    """``(seq, payload)`` of every intact record, up to the first defect."""
    out: list[tuple[int, bytes]] = []
    for path in segments(directory):
        res = wal_codec.scan(path.read_bytes())
        out.extend((r.seq, r.payload) for r in res.records)
        if res.error is not None:
            break
    return out


def _flip_bit(path: Path, at: int) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        byte = f.read(1)[0]
        f.seek(at)
        f.write(bytes([byte ^ 0x10]))


def damage(directory: str | Path, how: str) -> tuple[dict[str, Any], tuple[Path, bytes] | None]:
    """Damage the last segment (see the module doc): ``(what was done, (path, original))``.

    Nothing is changed (and the original is None) when the segment holds too
    few records: none for a tail, fewer than three for ``bitflip-middle``.
    """
    found = segments(directory)
    if not found:
        return {"segments": 0, "records": 0}, None
    path = found[-1]
    data = path.read_bytes()
    recs = wal_codec.scan(data).records
    if how == "bitflip-middle":
        if len(recs) < 3:
            return {"segment": path.name, "records": len(recs), "records_after": 0}, None
        i = len(recs) // 2
        rec = recs[i]
        at = rec.offset + wal_codec.HEADER_SIZE + len(rec.payload) // 2
        _flip_bit(path, at)
        return {"segment": path.name, "records": len(recs), "flipped_seq": rec.seq,
                "record_offset": rec.offset, "flipped_byte_at": at,
                "records_after": len(recs) - i - 1}, (path, data)
    if how not in ("torn", "bitflip"):
        raise ValueError(f"unknown WAL damage {how!r} (known: torn, bitflip, bitflip-middle)")
    if not recs:
        return {"segment": path.name, "records": 0}, None
    last = recs[-1]
    at = last.offset + wal_codec.HEADER_SIZE + len(last.payload) // 2
    if how == "torn":
        os.truncate(path, at)
        done: dict[str, Any] = {"truncated_at": at}
    else:
        _flip_bit(path, at)
        done = {"flipped_byte_at": at}
    return {"segment": path.name, "last_seq": last.seq, "record_offset": last.offset,
            "record_bytes": wal_codec.HEADER_SIZE + len(last.payload), **done}, (path, data)


def verify(directory: str | Path) -> tuple[int, str]:
    """``crucible wal verify DIR``: its exit code and output (1: a bad record, named)."""
    r = subprocess.run([sys.executable, "-m", "harness.cli", "wal", "verify", str(directory)],
                       check=False, capture_output=True, text=True, timeout=VERIFY_TIMEOUT_S)
    return r.returncode, r.stdout


class WalDir:
    """One ``crucible-wal-1`` directory, with the bytes the last ``damage`` changed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._backup: tuple[Path, bytes] | None = None

    def records(self) -> list[tuple[int, bytes]]:
        return records(self.directory)

    def damage(self, how: str) -> dict[str, Any]:
        done, self._backup = damage(self.directory, how)
        return done

    def repair(self) -> None:
        if self._backup is not None:
            path, original = self._backup
            path.write_bytes(original)
            self._backup = None

    def verify(self) -> tuple[int, str]:
        return verify(self.directory)
