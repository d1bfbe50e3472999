"""A ``crucible-wal-1`` WAL as a journal: replay-format input dicts, one per intact record.

``wal_journal(DIR)`` reads the WAL directory with ``harness.sut.wal_files``
(the documented format, docs/wal-format.md) and converts each record's
sequenced message with ``replay_format.input_to_json``. Only the intact prefix counts:
reading stops at the first defect (a torn tail, a CRC mismatch), exactly as
recovery would. ``python -m harness.sut.journal DIR`` prints the same as JSON
lines: the journal command of the reference implementation described as an
external SUT (docs/examples/reference-as-external.yaml).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.sut.wal_files import records
from reference_impl.core import sequenced_codec
from reference_impl.core.errors import DecodeError
from reference_impl.core.replay_format import format_line, input_to_json


class JournalError(ValueError):
    """A WAL record that cannot be expressed in the replay format."""


def wal_journal(directory: str | Path) -> list[dict]:
    """Replay-format input dicts of the intact WAL; ``JournalError`` names a bad record."""
    out = []
    for seq, payload in records(directory):
        try:
            out.append(input_to_json(sequenced_codec.decode(payload)))
        except (DecodeError, ValueError) as exc:
            raise JournalError(f"WAL record seq {seq}: {exc}") from None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print a crucible-wal-1 WAL as replay-format lines.")
    parser.add_argument("directory", help="the WAL directory")
    args = parser.parse_args(argv)
    try:
        entries = wal_journal(args.directory)
    except JournalError as exc:
        print(f"journal: {exc}", file=sys.stderr)
        return 1
    for e in entries:
        sys.stdout.write(format_line(e) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
