"""``crucible wal dump DIR`` and ``crucible wal verify DIR``: read a WAL offline.

``dump`` prints one line per record, ``seq length summary``, where the summary
is the replay-format JSON of the sequenced message when it has one, else the
decoded message, else (bytes that are not a sequenced message) a hex prefix.
``verify`` checks every record (length, CRC-32C, seqs gap-free across
segments) and prints how many it checked and the first bad record with its
reason: ``torn`` (a write cut short), ``bad_length``, ``crc_mismatch`` or
``seq_gap``. Both exit 1 when they meet a bad record, 2 when DIR holds no WAL.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO

# The reference_impl imports live inside the functions: ``register`` runs for
# every ``crucible`` command line and must stay cheap.


def summarize(payload: bytes) -> str:
    from reference_impl.core import sequenced_codec
    from reference_impl.core.errors import DecodeError
    from reference_impl.core.replay_format import input_to_json

    try:
        msg = sequenced_codec.decode(payload)
    except DecodeError as exc:
        return f"undecodable ({exc.field}: {exc.reason}) {payload[:32].hex()}"
    try:
        return json.dumps(input_to_json(msg), separators=(",", ":"))
    except ValueError:
        return repr(msg)


def _no_wal(directory: str, err: IO[str]) -> int:
    print(f"wal: no segments (wal-<seq>.seg) in {directory}", file=err)
    return 2


def run_dump(directory: str, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    from reference_impl.logger.wal_reader import WalReader, list_segments

    if not list_segments(directory):
        return _no_wal(directory, err)
    for _first, path, res in WalReader(directory).iter_segments():
        print(f"# {path.name}: {len(res.records)} records, end offset {res.end_offset}", file=out)
        for rec in res.records:
            print(f"{rec.seq} {len(rec.payload)} {summarize(rec.payload)}", file=out)
        if res.error is not None:
            e = res.error
            print(f"bad record: {path.name} offset {e.offset}: {e.kind}: {e.detail}", file=err)
            return 1
    return 0


def run_verify(directory: str, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    from reference_impl.logger.wal_reader import WalReader, list_segments

    if not list_segments(directory):
        return _no_wal(directory, err)
    report = WalReader(directory).verify()
    span = f"seqs {report.first_seq}..{report.last_seq}" if report.records else "no records"
    print(f"segments: {report.segments}  records checked: {report.records}  ({span})", file=out)
    if report.bad is None:
        print("ok", file=out)
        return 0
    b = report.bad
    print(f"first bad record: {b.segment} offset {b.offset}: {b.reason}: {b.detail}", file=out)
    return 1


def register(sub: argparse._SubParsersAction) -> None:
    wal = sub.add_parser("wal", help="inspect a write-ahead log directory")
    wsub = wal.add_subparsers(dest="wal_cmd", required=True)
    dump = wsub.add_parser("dump", help="print one line per record")
    dump.add_argument("dir", help="WAL directory (holds wal-<seq>.seg files)")
    dump.set_defaults(func=lambda a: run_dump(a.dir))
    verify = wsub.add_parser("verify", help="check every record; exit 1 on the first bad one")
    verify.add_argument("dir", help="WAL directory (holds wal-<seq>.seg files)")
    verify.set_defaults(func=lambda a: run_verify(a.dir))
