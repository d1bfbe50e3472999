"""MoldUDP64 codec: round trips, literal wire bytes, strict rejection of malformed datagrams."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.core.errors import DecodeError
from reference_impl.core.mold_codec import (
    END_OF_SESSION,
    HEADER_SIZE,
    MAX_COUNT,
    MoldPacket,
    MoldRequest,
    decode_packet,
    decode_request,
    encode_end_of_session,
    encode_heartbeat,
    encode_packet,
    encode_request,
    plan_packets,
    valid_session,
)

S = b"CRUCIN0001"
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

sessions = st.text(ALNUM, min_size=1, max_size=10).map(lambda s: s.ljust(10).encode())
seqs = st.integers(1, 2**63)
messages = st.lists(st.binary(max_size=300), max_size=40)


def _field(excinfo: pytest.ExceptionInfo[DecodeError]) -> str:
    assert excinfo.value.protocol == "moldudp64"
    return excinfo.value.field


# ------------------------------------------------------------------ round trips


@given(sessions, seqs, messages)
def test_packet_round_trip(session: bytes, seq: int, msgs: list[bytes]) -> None:
    data = encode_packet(session, seq, msgs)
    assert len(data) == HEADER_SIZE + sum(2 + len(m) for m in msgs)
    packet = decode_packet(data)
    assert packet == MoldPacket(session, seq, tuple(msgs))
    assert packet.next_seq == seq + len(msgs)
    assert packet.is_heartbeat == (not msgs)


@given(sessions, st.integers(0, 2**64 - 1))
def test_heartbeat_and_end_of_session_round_trip(session: bytes, next_seq: int) -> None:
    hb = decode_packet(encode_heartbeat(session, next_seq))
    assert hb == MoldPacket(session, next_seq, ()) and hb.is_heartbeat and not hb.end_of_session
    eos = decode_packet(encode_end_of_session(session, next_seq))
    assert eos.end_of_session and not eos.is_heartbeat and eos.seq == next_seq


@given(sessions, seqs, st.integers(1, 0xFFFF))
def test_request_round_trip(session: bytes, seq: int, count: int) -> None:
    data = encode_request(session, seq, count)
    assert len(data) == 20
    assert decode_request(data) == MoldRequest(session, seq, count)


def test_literal_wire_bytes() -> None:
    data = encode_packet(S, 0x0102, [b"AB", b""])
    assert data == S + bytes.fromhex("0000000000000102" "0002" "0002") + b"AB" + b"\x00\x00"
    assert encode_heartbeat(S, 7) == S + struct.pack(">QH", 7, 0)
    assert encode_end_of_session(S, 7) == S + struct.pack(">QH", 7, 0xFFFF)
    assert encode_request(S, 5, 3) == S + struct.pack(">QH", 5, 3)


def test_decode_accepts_bytearray_and_memoryview() -> None:
    data = encode_packet(S, 1, [b"x"])
    assert decode_packet(bytearray(data)) == decode_packet(memoryview(data)) == decode_packet(data)
    assert type(decode_packet(memoryview(data)).messages[0]) is bytes


def test_space_padded_session_accepted_others_rejected() -> None:
    assert valid_session(b"ABC       ")
    for bad in (b"          ", b" ABC      ", b"AB CD     ", b"ABC\x00\x00\x00\x00\x00\x00\x00",
                b"CRUCIN000", b"CRUCIN00011", "CRUCIN0001", b"CRUC-N0001"):
        assert not valid_session(bad)
        with pytest.raises(ValueError):
            encode_heartbeat(bad, 1)  # type: ignore[arg-type]


# ------------------------------------------------------------------ malformed


def test_truncated_header() -> None:
    data = encode_heartbeat(S, 1)
    for cut in range(HEADER_SIZE):
        with pytest.raises(DecodeError) as e:
            decode_packet(data[:cut])
        assert _field(e) == "header"


def test_non_alnum_session() -> None:
    with pytest.raises(DecodeError) as e:
        decode_packet(b"CRUC\xe9N0001" + struct.pack(">QH", 1, 0))
    assert _field(e) == "session"
    with pytest.raises(DecodeError) as e:
        decode_request(b"CRUC N0001" + struct.pack(">QH", 1, 1))
    assert _field(e) == "session"


def test_block_running_past_the_end() -> None:
    data = S + struct.pack(">QHH", 1, 1, 10) + b"short"
    with pytest.raises(DecodeError) as e:
        decode_packet(data)
    assert _field(e) == "message_length[0]"


def test_datagram_ending_inside_a_block_length() -> None:
    data = encode_packet(S, 1, [b"abc", b"de"])
    with pytest.raises(DecodeError) as e:
        decode_packet(data[:-3])  # one byte of the second length remains
    assert _field(e) == "message_length[1]"


def test_count_larger_than_blocks() -> None:
    data = bytearray(encode_packet(S, 1, [b"abc", b"de"]))
    data[18:20] = struct.pack(">H", 3)
    with pytest.raises(DecodeError) as e:
        decode_packet(bytes(data))
    assert _field(e) == "message_count"


def test_trailing_garbage_and_count_smaller_than_blocks() -> None:
    data = encode_packet(S, 1, [b"abc", b"de"])
    with pytest.raises(DecodeError) as e:
        decode_packet(data + b"\x00")
    assert _field(e) == "message_count"
    short = bytearray(data)
    short[18:20] = struct.pack(">H", 1)
    with pytest.raises(DecodeError) as e:
        decode_packet(bytes(short))
    assert _field(e) == "message_count"


@pytest.mark.parametrize("count", [0, END_OF_SESSION])
def test_heartbeat_with_trailing_bytes(count: int) -> None:
    with pytest.raises(DecodeError) as e:
        decode_packet(S + struct.pack(">QH", 1, count) + b"\x00\x01x")
    assert _field(e) == "message_count"


def test_data_packet_sequence_zero_or_overflowing() -> None:
    with pytest.raises(DecodeError) as e:
        decode_packet(S + struct.pack(">QHH", 0, 1, 0))
    assert _field(e) == "sequence"
    with pytest.raises(DecodeError) as e:
        decode_packet(S + struct.pack(">QHHH", 2**64 - 1, 2, 0, 0))
    assert _field(e) == "sequence"


def test_malformed_requests() -> None:
    good = encode_request(S, 1, 1)
    for data, field in [(good[:-1], "header"), (good + b"\x00", "length"),
                        (S + struct.pack(">QH", 0, 1), "sequence"),
                        (S + struct.pack(">QH", 1, 0), "requested_count")]:
        with pytest.raises(DecodeError) as e:
            decode_request(data)
        assert _field(e) == field


@given(st.binary(max_size=120))
def test_arbitrary_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    for decoder in (decode_packet, decode_request):
        try:
            decoder(data)
        except DecodeError:
            pass


@given(sessions, seqs, messages)
def test_any_truncation_of_a_data_packet_is_rejected(session: bytes, seq: int,
                                                     msgs: list[bytes]) -> None:
    data = encode_packet(session, seq, msgs + [b"tail"])
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            decode_packet(data[:cut])


# ------------------------------------------------------------------ encode limits


def test_encode_refuses_what_the_wire_cannot_carry() -> None:
    with pytest.raises(ValueError):
        encode_packet(S, 1, [bytes(0x10000)])
    with pytest.raises(ValueError):
        encode_packet(S, 1, [b""] * (MAX_COUNT + 1))
    with pytest.raises(ValueError):
        encode_packet(S, 0, [b"x"])
    with pytest.raises(ValueError):
        encode_packet(S, 2**64 - 1, [b"x"])
    with pytest.raises(ValueError):
        encode_request(S, 1, 0)
    with pytest.raises(ValueError):
        encode_request(S, 1, 0x10000)
    with pytest.raises(ValueError):
        encode_request(S, 0, 1)
    assert decode_packet(encode_packet(S, 1, [b""] * MAX_COUNT)).next_seq == MAX_COUNT + 1


# ------------------------------------------------------------------ batching


@given(st.lists(st.binary(max_size=200), max_size=60), st.integers(222, 2000))
def test_plan_packets_is_greedy_ordered_and_bounded(msgs: list[bytes], max_payload: int) -> None:
    plan = plan_packets(msgs, max_payload)
    assert [m for group in plan for m in group] == msgs
    for i, group in enumerate(plan):
        assert group
        size = len(encode_packet(S, 1, group))
        assert size <= max_payload
        if i + 1 < len(plan):  # greedy: the next message would not have fitted
            assert size + 2 + len(plan[i + 1][0]) > max_payload


def test_plan_packets_edges() -> None:
    assert plan_packets([]) == []
    assert plan_packets([bytes(1378)]) == [[bytes(1378)]]  # 20 + 2 + 1378 = 1400
    with pytest.raises(ValueError):
        plan_packets([b"a", bytes(1379)])
    with pytest.raises(ValueError):
        plan_packets([b"a"], max_payload=21)
    plan = plan_packets([b""] * (MAX_COUNT + 5), max_payload=1 << 20)
    assert [len(g) for g in plan] == [MAX_COUNT, 5]
