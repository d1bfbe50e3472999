"""WAL segment files: writer, reader, rotation, recovery of torn/corrupt tails, wal dump/verify."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from harness.cli import wal as wal_cmd
from harness.cli.main import main as crucible
from reference_impl.core import sequenced_codec, wal_codec
from reference_impl.core.errors import SequenceGapError
from reference_impl.core.messages import NewOrder, Sequenced, Side
from reference_impl.logger.wal import (
    QUARANTINE,
    WalCorruptError,
    WalReader,
    WalWriter,
    find_record_after,
    list_segments,
    segment_name,
)

SEG = 4096


def payload(seq: int) -> bytes:
    body = NewOrder(f"T{seq}", "ACME", Side.BUY, 1 + seq % 50, 10_000 + 100 * (seq % 7))
    return sequenced_codec.encode(Sequenced(seq, 1_700_000_000_000_000_000 + seq, 1, 1, seq, "DEMO1", body))


def fill(directory: Path, n: int, batch: int = 7, first: int = 1, **kw) -> WalWriter:
    w = WalWriter(directory, SEG, index_every=4, first_seq=first, log=kw.pop("log", lambda s: None), **kw)
    seq = w.next_seq
    end = seq + n
    while seq < end:
        for s in range(seq, min(seq + batch, end)):
            w.append(s, payload(s))
        seq = min(seq + batch, end)
        w.write()
        w.sync()
    return w


def verify(directory: Path) -> tuple[int, str]:
    out = io.StringIO()
    code = wal_cmd.run_verify(str(directory), out=out, err=out)
    return code, out.getvalue()


def test_write_read_rotate(tmp_path: Path) -> None:
    w = fill(tmp_path, 300)
    assert (w.written_seq, w.durable_seq, w.records) == (300, 300, 300)
    segs = list_segments(tmp_path)
    assert len(segs) > 3  # 300 records of 87 bytes in 4 KiB segments
    assert all(p.stat().st_size == SEG for _, p in segs)  # preallocated
    assert segs[0][1].name == segment_name(1) == "wal-00000000000000000001.seg"
    r = WalReader(tmp_path, index_every=4)
    for first, count in [(1, 1), (1, 300), (45, 100), (299, 10), (301, 5), (0, 3)]:
        got = r.read_range(first, count)
        want = [s for s in range(max(first, 1), min(first + count, 301))] if first else []
        assert [s for s, _ in got] == want
        assert all(p == payload(s) for s, p in got)
    assert w.reader.read_range(100, 3) == [(s, payload(s)) for s in (100, 101, 102)]
    # group commit: one fdatasync per batch, plus one per rotation at most
    assert w.fsyncs <= 300 // 7 + 1 + len(segs)
    w.close()
    assert verify(tmp_path)[0] == 0


def test_append_rejects_gaps_and_repeats(tmp_path: Path) -> None:
    w = fill(tmp_path, 3)
    with pytest.raises(SequenceGapError):
        w.append(5, payload(5))
    with pytest.raises(SequenceGapError):
        w.append(3, payload(3))


def test_reopen_resumes_at_valid_end(tmp_path: Path) -> None:
    fill(tmp_path, 100).close()
    w = fill(tmp_path, 50)
    assert w.recovery is not None and w.recovery.defect is None
    assert w.records == 150 and w.next_seq == 151
    w.close()
    code, text = verify(tmp_path)
    assert code == 0 and "records checked: 150" in text


def last_segment(directory: Path) -> Path:
    return list_segments(directory)[-1][1]


def record_offsets(path: Path) -> list[int]:
    return [r.offset for r in wal_codec.scan(path.read_bytes()).records]


@pytest.mark.parametrize("cut", [1, 5, 15, 16, 17, 40, "all_but_6"])
def test_torn_tail_is_cut_logged_and_refilled(tmp_path: Path, cut) -> None:
    fill(tmp_path, 60).close()
    seg = last_segment(tmp_path)
    offsets = record_offsets(seg)
    last_off = offsets[-1]
    data = bytearray(seg.read_bytes())
    rec_len = 8 + int.from_bytes(data[last_off:last_off + 4], "big")
    keep = rec_len - 6 if cut == "all_but_6" else cut  # its last 5 bytes are zeros anyway
    data[last_off + keep:last_off + rec_len] = bytes(rec_len - keep)  # a write cut short
    seg.write_bytes(bytes(data))
    kept = bytes(data[last_off:last_off + keep]).rstrip(b"\0")
    code, text = verify(tmp_path)
    lines: list[str] = []
    w = WalWriter(tmp_path, SEG, index_every=4, log=lines.append)
    assert w.next_seq == 60  # seq 60 was torn
    if not kept:  # only the length's zero high bytes made it: indistinguishable from no write
        assert code == 0 and lines == [] and w.recovery.defect is None
    else:
        assert code == 1 and any(k in text for k in ("torn", "bad_length", "crc_mismatch"))
        assert w.recovery.defect is not None and w.recovery.cut_bytes == len(kept)
        assert len(lines) == 1 and f"offset {last_off}" in lines[0] and "cutting" in lines[0]
        assert Path(w.recovery.quarantine).read_bytes() == kept
    w.append(60, payload(60))
    w.write()
    w.sync()
    w.close()
    assert verify(tmp_path)[0] == 0
    assert WalReader(tmp_path).read_range(58, 5) == [(s, payload(s)) for s in (58, 59, 60)]


def test_bit_flip_is_a_crc_mismatch_for_verify_and_cli(tmp_path: Path, capsys) -> None:
    fill(tmp_path, 40).close()
    seg = list_segments(tmp_path)[0][1]
    offsets = record_offsets(seg)
    data = bytearray(seg.read_bytes())
    data[offsets[5] + 30] ^= 0x10  # inside record 6's payload
    seg.write_bytes(bytes(data))
    assert crucible(["wal", "verify", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "records checked: 5" in out and "crc_mismatch" in out
    assert f"offset {offsets[5]}" in out and seg.name in out
    # the test-only fault: a reader that ignores CRCs accepts the flipped record
    assert [s for s, _ in WalReader(tmp_path, ignore_crc=True).read_range(1, 40)][:10] == list(range(1, 11))
    assert [s for s, _ in WalReader(tmp_path).read_range(1, 40)] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("damage", ["bit_flip", "zeroed_length", "bad_length"])
def test_mid_segment_corruption_refuses_to_open_and_cuts_nothing(tmp_path: Path, damage) -> None:
    fill(tmp_path, 30).close()  # one segment: 30 records of 90 bytes
    seg = last_segment(tmp_path)
    offsets = record_offsets(seg)
    data = bytearray(seg.read_bytes())
    at = offsets[10]  # record 11 of 30: durable data with valid records after it
    if damage == "bit_flip":
        data[at + 40] ^= 0x04
    elif damage == "zeroed_length":
        data[at:at + 4] = bytes(4)
    else:
        data[at:at + 4] = (3).to_bytes(4, "big")
    seg.write_bytes(bytes(data))
    lines: list[str] = []
    with pytest.raises(WalCorruptError) as info:
        WalWriter(tmp_path, SEG, index_every=4, log=lines.append)
    text = str(info.value)
    assert seg.name in text and f"offset {at}" in text and f"offset {offsets[11]}" in text
    assert "crucible wal verify" in text and "seq 12" in text
    assert seg.read_bytes() == bytes(data)  # nothing cut, nothing zeroed
    assert lines == [] and not (tmp_path / QUARANTINE).exists()


def test_garbage_after_the_last_record_is_a_torn_tail_and_is_cut(tmp_path: Path) -> None:
    fill(tmp_path, 20).close()
    seg = last_segment(tmp_path)
    data = bytearray(seg.read_bytes())
    last = record_offsets(seg)[-1]
    end = last + 8 + int.from_bytes(data[last:last + 4], "big")
    garbage = bytes((i * 37 + 11) % 251 or 1 for i in range(900))  # no valid record in it
    data[end:end + len(garbage)] = garbage
    seg.write_bytes(bytes(data))
    assert find_record_after(bytes(data), end + 1, 21) is None
    lines: list[str] = []
    w = WalWriter(tmp_path, SEG, index_every=4, log=lines.append)
    assert w.next_seq == 21 and w.recovery.cut_bytes == len(garbage) and len(lines) == 1
    assert Path(w.recovery.quarantine).read_bytes() == garbage
    w.close()
    assert verify(tmp_path)[0] == 0


def test_torn_tail_with_ignore_crc_is_kept(tmp_path: Path) -> None:
    fill(tmp_path, 10).close()
    seg = last_segment(tmp_path)
    off = record_offsets(seg)[-1]
    data = bytearray(seg.read_bytes())
    data[off + 20] ^= 1
    seg.write_bytes(bytes(data))
    assert WalWriter(tmp_path, SEG, ignore_crc=True, log=lambda s: None).next_seq == 11
    assert WalWriter(tmp_path, SEG, log=lambda s: None).next_seq == 10


def test_verify_reports_seq_gap_between_segments(tmp_path: Path) -> None:
    fill(tmp_path, 200).close()
    segs = list_segments(tmp_path)
    os.unlink(segs[1][1])
    code, text = verify(tmp_path)
    assert code == 1 and "seq_gap" in text


def test_dump_prints_one_line_per_record(tmp_path: Path, capsys) -> None:
    fill(tmp_path, 12).close()
    assert crucible(["wal", "dump", str(tmp_path)]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if not x.startswith("#")]
    assert len(lines) == 12
    seq, length, summary = lines[2].split(" ", 2)
    assert (seq, length) == ("3", str(len(payload(3))))
    assert '"type":"new"' in summary and '"token":"T3"' in summary


def test_empty_dir_is_an_error(tmp_path: Path) -> None:
    assert verify(tmp_path)[0] == 2
    assert not (tmp_path / QUARANTINE).exists()
