"""WAL codec: round trips, and no torn or corrupt record ever comes back out of scan()."""

from __future__ import annotations

import struct

import pytest
from crc32c import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_impl.core.wal_codec import (
    HEADER_SIZE,
    WalRecord,
    encode_record,
    scan,
)

records = st.lists(st.tuples(st.integers(0, 2**64 - 1), st.binary(max_size=80)), max_size=12)


def build(items: list[tuple[int, bytes]]) -> tuple[bytes, list[WalRecord]]:
    buf, expected = b"", []
    for seq, payload in items:
        expected.append(WalRecord(len(buf), seq, payload))
        buf += encode_record(seq, payload)
    return buf, expected


def test_literal_layout() -> None:
    body = struct.pack(">Q", 7) + b"ab"
    assert encode_record(7, b"ab") == struct.pack(">II", 10, crc32c(body)) + body


@given(records, st.integers(0, 64))
def test_round_trip_with_and_without_a_zero_tail(items: list, zeros: int) -> None:
    buf, expected = build(items)
    result = scan(buf + bytes(zeros))
    assert result.records == expected
    assert result.end_offset == len(buf) and result.error is None


def test_accepts_bytearray_and_memoryview_and_a_start_offset() -> None:
    buf, expected = build([(1, b"a"), (2, b"bc"), (3, b"")])
    assert scan(bytearray(buf)).records == scan(memoryview(buf)).records == expected
    assert scan(buf, start=expected[1].offset).records == expected[1:]
    assert all(type(r.payload) is bytes for r in scan(memoryview(buf)).records)
    with pytest.raises(ValueError):
        scan(buf, start=len(buf) + 1)


PAYLOADS = [(1, b"first record"), (2, b"x"), (3, bytes(range(1, 40))), (4, b"")]
BUF, EXPECTED = build(PAYLOADS)


def test_a_cut_at_every_byte_offset_is_torn_and_never_yields_a_partial_record() -> None:
    starts = [r.offset for r in EXPECTED] + [len(BUF)]
    for cut in range(len(BUF) + 1):
        result = scan(BUF[:cut])
        whole = [r for r, end in zip(EXPECTED, starts[1:]) if end <= cut]
        assert result.records == whole, cut
        assert result.end_offset == starts[len(whole)]
        leftover = BUF[result.end_offset:cut]
        if leftover.strip(b"\x00"):
            assert result.error is not None and result.error.kind == "torn", cut
            assert result.error.offset == result.end_offset
        else:  # a cut at a record boundary, or inside a length field's leading zeros
            assert result.error is None, cut


@given(records, st.data())
@settings(max_examples=200)
def test_torn_write_in_a_zero_filled_segment_never_yields_a_wrong_record(
        items: list, data: st.DataObject) -> None:
    buf, expected = build(items)
    cut = data.draw(st.integers(0, len(buf)))
    segment = buf[:cut] + bytes(len(buf) - cut + data.draw(st.integers(0, 32)))
    result = scan(segment)
    assert result.records == expected[: len(result.records)]
    for r in result.records:  # a record past the cut is only possible if its lost bytes were zeros
        end = r.offset + HEADER_SIZE + len(r.payload)
        assert end <= cut or not any(buf[cut:end]), (r, cut)


def test_every_single_bit_flip_is_caught_and_outside_length_is_a_crc_mismatch() -> None:
    for i in range(len(BUF)):
        k = max(j for j, r in enumerate(EXPECTED) if r.offset <= i)
        in_length_field = i - EXPECTED[k].offset < 4
        for bit in range(8):
            flipped = bytearray(BUF)
            flipped[i] ^= 1 << bit
            result = scan(bytes(flipped))
            assert result.records == EXPECTED[:k], (i, bit)
            assert result.error is not None and result.error.offset == EXPECTED[k].offset
            if not in_length_field:
                assert result.error.kind == "crc_mismatch", (i, bit)


def test_bad_lengths() -> None:
    short = struct.pack(">IIQ", 4, 0, 0)
    assert scan(short).error.kind == "bad_length"
    big = encode_record(1, bytes(100))
    assert scan(big, max_record=99).error.kind == "bad_length"
    assert scan(big, max_record=100).error is None


def test_non_zero_bytes_after_the_end_marker_are_torn() -> None:
    """A zeroed length field must not silently truncate the log after it."""
    good = encode_record(1, b"a")
    result = scan(good + bytes(4) + encode_record(2, b"b"))
    assert result.records == [WalRecord(0, 1, b"a")]
    assert result.error.kind == "torn" and result.error.offset == len(good)


def test_encode_limits() -> None:
    with pytest.raises(ValueError):
        encode_record(-1, b"")
    with pytest.raises(ValueError):
        encode_record(2**64, b"")
