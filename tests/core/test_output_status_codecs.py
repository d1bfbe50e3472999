from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.core import output_codec, status_codec
from reference_impl.core.errors import DecodeError
from reference_impl.core.messages import (
    Accepted, CancelReason, Canceled, Executed, RejectReason, Rejected, Replaced, Side,
)

u8, u16, u32, u64 = (st.integers(0, 2**b - 1) for b in (8, 16, 32, 64))
token = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#", min_size=1, max_size=14)
account = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=6)
symbol = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=8)
outputs = st.one_of(
    st.builds(Accepted, u64, account, token, symbol, st.sampled_from(Side), u32, u32, u64),
    st.builds(Executed, u64, account, token, u32, u32, u64, st.sampled_from("AR")),
    st.builds(Canceled, u64, account, token, u32, st.sampled_from(CancelReason)),
    st.builds(Replaced, u64, account, token, token, u32, u32, u64),
    st.builds(Rejected, u64, account, token, st.sampled_from(RejectReason)),
)


@st.composite
def records(draw):
    count = draw(st.integers(1, 2**16 - 1))
    return output_codec.OutputRecord(draw(st.integers(0, count - 1)), count, draw(u32), draw(u16),
                                     draw(u64), draw(u64), draw(u64), draw(u64), draw(outputs))


@given(records())
def test_output_round_trip(rec):
    assert output_codec.decode(output_codec.encode(rec)) == rec


@given(records(), st.data())
def test_output_truncation_is_a_decode_error(rec, data):
    raw = output_codec.encode(rec)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(DecodeError) as err:
        output_codec.decode(raw[:cut])
    assert err.value.field == "length"


def test_output_bad_fields_are_named():
    rec = output_codec.OutputRecord(0, 1, 1, 1, 1, 1, 1, 1, Rejected(5, "DEMO1", "T1", RejectReason.BAD_QTY))
    raw = bytearray(output_codec.encode(rec))
    tag_at = output_codec.HEADER.size - 1
    bad_type = raw[:]
    bad_type[tag_at] = ord("Z")
    bad_reason = raw[:]
    bad_reason[-1] = 200
    bad_text = raw[:]
    bad_text[tag_at + 1] = 0xC3
    bad_index = raw[:]
    bad_index[8:10] = b"\x00\x05"
    for blob, field in ((bad_type, "type"), (bad_reason, "reason"), (bad_text, "token"),
                        (bad_index, "index"), (raw + b"x", "length")):
        with pytest.raises(DecodeError) as err:
            output_codec.decode(bytes(blob))
        assert err.value.field == field


statuses = st.one_of(
    st.builds(status_codec.EngineStatus, u16, st.booleans(), u32, u64, u64, u64),
    st.builds(status_codec.Checkpoint, u16, u64, st.binary(min_size=32, max_size=32), u64),
    st.builds(status_codec.LoggerWatermark, u16, u64, u64, u64),
    st.builds(status_codec.SequencerStatus, u16, u64, u64),
)


@given(statuses)
def test_status_round_trip(rec):
    assert status_codec.decode(status_codec.encode(rec)) == rec


@pytest.mark.parametrize("blob,field", [(b"", "type"), (b"Z" + bytes(20), "type"),
                                        (b"W" + bytes(3), "length")])
def test_status_malformed(blob, field):
    with pytest.raises(DecodeError) as err:
        status_codec.decode(blob)
    assert err.value.field == field
