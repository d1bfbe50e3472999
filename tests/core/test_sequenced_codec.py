"""Sequenced-message codec: round trips, canonical bytes, structural vs range violations."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.core import sequenced_codec as codec
from reference_impl.core.errors import DecodeError
from reference_impl.core.messages import (
    Cancel,
    Heartbeat,
    LeaderChange,
    NewOrder,
    OrdType,
    Replace,
    Sequenced,
    Side,
    SnapshotRequest,
    Tif,
)

U16, U32, U64 = 2**16 - 1, 2**32 - 1, 2**64 - 1
PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))


def text(width: int) -> st.SearchStrategy[str]:
    return st.text(PRINTABLE, max_size=width).filter(lambda s: not s.endswith(" "))


u32 = st.integers(0, U32)
new_orders = st.builds(NewOrder, text(14), text(8), st.sampled_from(Side), u32, u32,
                       st.sampled_from(OrdType), st.integers(-128, 127), u32)
bodies = st.one_of(
    new_orders,
    st.builds(Cancel, text(14), u32),
    st.builds(Replace, text(14), text(14), u32, u32),
    st.builds(LeaderChange, u32, st.integers(0, U16)),
    st.builds(SnapshotRequest, st.integers(0, U64)),
    st.just(Heartbeat()),
)
messages = st.builds(Sequenced, st.integers(0, U64), st.integers(0, U64), st.integers(0, U16),
                     u32, st.integers(0, U64), text(6), bodies)

ORDER = Sequenced(5, 1_700_000_000_000_000_000, 1, 2, 3, "DEMO1",
                  NewOrder("T1", "ACME", Side.BUY, 100, 10_000, OrdType.LIMIT, Tif.IOC, 5))


def _field(excinfo: pytest.ExceptionInfo[DecodeError]) -> str:
    assert excinfo.value.protocol == "sequenced"
    return excinfo.value.field


@given(messages)
def test_round_trip(msg: Sequenced) -> None:
    data = codec.encode(msg)
    assert len(data) == codec.LAYOUTS[data[36:37]].size
    assert codec.decode(data) == msg


@given(messages)
def test_decode_then_encode_gives_the_same_bytes(msg: Sequenced) -> None:
    """The sequencer node patches seq/ts into gateway frames: frames must be canonical."""
    data = codec.encode(msg)
    assert codec.encode(codec.decode(data)) == data


def test_literal_layout() -> None:
    data = codec.encode(ORDER)
    assert len(data) == 74
    head = struct.pack(">QQHIQ", 5, 1_700_000_000_000_000_000, 1, 2, 3) + b"DEMO1 O"
    body = b"T1            ACME    B" + struct.pack(">II", 100, 10_000) + b"L\x01" + struct.pack(">I", 5)
    assert data == head + body
    assert [len(codec.encode(Sequenced(1, 1, 0, 0, 0, "", b))) for b in
            (Cancel("T", 0), Replace("T", "U", 1, 1), LeaderChange(2, 1),
             SnapshotRequest(9), Heartbeat())] == [55, 73, 43, 45, 37]


def test_decoded_enums_are_enum_members() -> None:
    body = codec.decode(codec.encode(ORDER)).body
    assert body.side is Side.BUY and body.ord_type is OrdType.LIMIT and body.tif is Tif.IOC


def test_range_violations_still_cross_the_bus() -> None:
    """The engine rejects these deterministically, so every replica must receive them."""
    for body in (NewOrder("T", "ACME", Side.SELL, 0, 10_001, OrdType.MARKET, -1, 7),
                 NewOrder("", "nope", Side.BUY, U32, U32, OrdType.LIMIT, 99, U32),
                 Cancel("bad token", U32), Replace("T", "T", 0, 1)):
        msg = Sequenced(1, 2, 3, 4, 5, "x y", body)
        assert codec.decode(codec.encode(msg)) == msg
    assert codec.decode(codec.encode(Sequenced(1, 2, 3, 4, 5, "A", NewOrder(
        "T", "S", Side.BUY, 1, 1, OrdType.LIMIT, -1)))).body.tif == -1


# ------------------------------------------------------------------ encode limits


@pytest.mark.parametrize("msg, field", [
    (Sequenced(1, 1, 1, 1, 1, "TOOLONG", Heartbeat()), "account"),
    (Sequenced(1, 1, 1, 1, 1, "é", Heartbeat()), "account"),
    (Sequenced(1, 1, 1, 1, 1, "A\n", Heartbeat()), "account"),
    (Sequenced(1, 1, 1, 1, 1, "A ", Heartbeat()), "account"),
    (Sequenced(1, 1, 1, 1, 1, "A", Cancel("x" * 15, 1)), "token"),
    (Sequenced(1, 1, 1, 1, 1, "A", Replace("x", "y" * 15, 1, 1)), "new_token"),
    (Sequenced(1, 1, 1, 1, 1, "A", NewOrder("T", "TOOLONGSY", Side.BUY, 1, 1)), "symbol"),
    (Sequenced(1, 1, 1, 1, 1, "A", NewOrder("T", "S", Side.BUY, U32 + 1, 1)), "qty"),
    (Sequenced(1, 1, 1, 1, 1, "A", NewOrder("T", "S", Side.BUY, -1, 1)), "qty"),
    (Sequenced(1, 1, 1, 1, 1, "A", NewOrder("T", "S", Side.BUY, 1, U32 + 1)), "price"),
    (Sequenced(1, 1, 1, 1, 1, "A", NewOrder("T", "S", Side.BUY, 1, 1, tif=128)), "tif"),
    (Sequenced(1, 1, 1, 1, 1, "A", NewOrder("T", "S", Side.BUY, 1, 1, min_qty=-1)), "min_qty"),
    (Sequenced(1, 1, 1, 1, 1, "A", NewOrder("T", "S", "X", 1, 1)), "side"),  # type: ignore[arg-type]
    (Sequenced(1, 1, 1, 1, 1, "A", NewOrder("T", "S", Side.BUY, 1, 1, "stop")), "ord_type"),  # type: ignore[arg-type]
    (Sequenced(U64 + 1, 1, 1, 1, 1, "A", Heartbeat()), "seq"),
    (Sequenced(1, -1, 1, 1, 1, "A", Heartbeat()), "ts"),
    (Sequenced(1, 1, U16 + 1, 1, 1, "A", Heartbeat()), "gateway_id"),
    (Sequenced(1, 1, 1, U32 + 1, 1, "A", Heartbeat()), "incarnation"),
    (Sequenced(1, 1, 1, 1, U64 + 1, "A", Heartbeat()), "request_seq"),
    (Sequenced(1, 1, 1, 1, 1, "A", LeaderChange(U32 + 1, 1)), "epoch"),
    (Sequenced(1, 1, 1, 1, 1, "A", LeaderChange(1, U16 + 1)), "engine_id"),
    (Sequenced(1, 1, 1, 1, 1, "A", SnapshotRequest(-1)), "snapshot_id"),
    (Sequenced(1, 1, 1, 1, 1, "A", "not a body"), "body"),  # type: ignore[arg-type]
])
def test_encode_names_the_field_it_cannot_represent(msg: Sequenced, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        codec.encode(msg)


# ------------------------------------------------------------------ malformed


def _patch(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value):]


GOOD = codec.encode(ORDER)


@pytest.mark.parametrize("data, field", [
    (GOOD[:36], "length"),
    (GOOD[:-1], "length"),
    (GOOD + b"\x00", "length"),
    (_patch(GOOD, 36, b"Z"), "body_type"),
    (_patch(GOOD, 36, b"o"), "body_type"),
    (_patch(GOOD, 59, b"b"), "side"),
    (_patch(GOOD, 68, b"X"), "ord_type"),
    (_patch(GOOD, 30, b"\xff"), "account"),
    (_patch(GOOD, 31, b"\x00"), "account"),
    (_patch(GOOD, 37, b"\x80"), "token"),
    (_patch(GOOD, 38, b"\t"), "token"),
    (_patch(GOOD, 51, b"\x00"), "symbol"),
    (b"", "length"),
])
def test_malformed_frames_name_the_field(data: bytes, field: str) -> None:
    with pytest.raises(DecodeError) as e:
        codec.decode(data)
    assert _field(e) == field


def test_every_truncation_and_extension_is_rejected() -> None:
    for msg in (ORDER, Sequenced(1, 1, 0, 0, 0, "", Heartbeat()),
                Sequenced(1, 1, 0, 0, 0, "", LeaderChange(2, 1))):
        data = codec.encode(msg)
        for cut in range(len(data)):
            with pytest.raises(DecodeError):
                codec.decode(data[:cut])
        with pytest.raises(DecodeError):
            codec.decode(data + b" ")


@given(st.binary(min_size=36, max_size=80))
def test_arbitrary_bytes_decode_canonically_or_raise(data: bytes) -> None:
    try:
        msg = codec.decode(data)
    except DecodeError:
        return
    assert codec.encode(msg) == data


def test_decode_accepts_bytearray_and_memoryview() -> None:
    assert codec.decode(bytearray(GOOD)) == codec.decode(memoryview(GOOD)) == ORDER


# ------------------------------------------------------------------ poisoned_block


def _blocks(first_seq: int, n: int) -> list[bytes]:
    return [codec.encode(dataclasses.replace(ORDER, seq=first_seq + i)) for i in range(n)]


def test_a_packet_of_the_streams_seqs_is_not_poisoned() -> None:
    assert codec.poisoned_block(5, _blocks(5, 3)) is None
    assert codec.poisoned_block(5, []) is None


def test_a_block_that_does_not_decode_poisons_the_packet() -> None:
    blocks = _blocks(5, 3)
    blocks[1] = blocks[1][:-1]
    assert codec.poisoned_block(5, blocks).startswith("block 1 (seq 6) does not decode")


def test_a_block_whose_header_seq_is_off_poisons_the_packet() -> None:
    blocks = _blocks(5, 3)
    assert codec.poisoned_block(4, blocks) == "block 0 (seq 4) carries seq 5 in its header"
    blocks[2] = blocks[0]
    assert codec.poisoned_block(5, blocks) == "block 2 (seq 7) carries seq 5 in its header"
