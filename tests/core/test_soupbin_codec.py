"""SoupBinTCP 3.0 codec and framer: round trips, golden bytes, malformed input, stream splits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_impl.core import soupbin_codec as sb
from reference_impl.core.errors import DecodeError

PRINTABLE = "".join(map(chr, range(0x20, 0x7F)))
SERVER = (sb.Debug, sb.LoginAccepted, sb.LoginRejected, sb.SequencedData, sb.ServerHeartbeat,
          sb.EndOfSession)
CLIENT = (sb.Debug, sb.LoginRequest, sb.UnsequencedData, sb.ClientHeartbeat, sb.LogoutRequest)


def field_text(width: int):
    """What a padded field can carry: printable, no edge spaces (they are padding)."""
    return st.text(PRINTABLE, max_size=width).map(lambda s: s.strip(" "))


seq = st.integers(0, 10**20 - 1)
payload = st.binary(max_size=300)
server_packets = st.one_of(
    st.builds(sb.Debug, st.text(PRINTABLE, max_size=200)),
    st.builds(sb.LoginAccepted, field_text(10), seq),
    st.builds(sb.LoginRejected, st.sampled_from([b"A", b"S"])),
    st.builds(sb.SequencedData, payload),
    st.just(sb.ServerHeartbeat()),
    st.just(sb.EndOfSession()),
)
client_packets = st.one_of(
    st.builds(sb.Debug, st.text(PRINTABLE, max_size=200)),
    st.builds(sb.LoginRequest, field_text(6), field_text(10), field_text(10), seq),
    st.builds(sb.UnsequencedData, payload),
    st.just(sb.ClientHeartbeat()),
    st.just(sb.LogoutRequest()),
)


def field_of(call) -> str:
    with pytest.raises(DecodeError) as info:
        call()
    assert info.value.protocol == "SoupBinTCP"
    return info.value.field


# ------------------------------------------------------------- round trips


@given(server_packets)
def test_server_packets_round_trip(packet):
    raw = sb.encode(packet)
    assert int.from_bytes(raw[:2], "big") == len(raw) - 2
    assert sb.decode(raw, from_client=False) == sb.decode(raw) == packet


@given(client_packets)
def test_client_packets_round_trip(packet):
    raw = sb.encode(packet)
    assert int.from_bytes(raw[:2], "big") == len(raw) - 2
    assert sb.decode(raw, from_client=True) == sb.decode(raw) == packet


# ------------------------------------------------------------ golden bytes


def test_golden_login_request():
    raw = sb.encode(sb.LoginRequest("acct01", "secret", "SESS", 42))
    golden = (b"\x00\x2f" + b"L" + b"acct01" + b"secret    " + b"      SESS"
              + b"                  42")
    assert len(golden) == 49
    assert raw == golden
    assert sb.decode(golden, from_client=True) == sb.LoginRequest("acct01", "secret", "SESS", 42)


def test_golden_login_accepted_and_rejected():
    raw = sb.encode(sb.LoginAccepted("20261125", 1))
    assert raw == b"\x00\x1f" + b"A" + b"  20261125" + b" " * 19 + b"1"
    assert sb.encode(sb.LoginRejected(b"S")) == b"\x00\x02JS"


def test_golden_data_and_empty_packets():
    assert sb.encode(sb.SequencedData(b"OUCH")) == b"\x00\x05SOUCH"
    assert sb.encode(sb.UnsequencedData(b"")) == b"\x00\x01U"
    assert sb.encode(sb.Debug("hi there")) == b"\x00\x09+hi there"
    assert sb.encode(sb.ServerHeartbeat()) == b"\x00\x01H"
    assert sb.encode(sb.EndOfSession()) == b"\x00\x01Z"
    assert sb.encode(sb.ClientHeartbeat()) == b"\x00\x01R"
    assert sb.encode(sb.LogoutRequest()) == b"\x00\x01O"


def test_blank_session_and_either_justification_decode():
    blank = b"\x00\x2fL" + b"u     " + b"p         " + b" " * 10 + b" " * 19 + b"0"
    assert sb.decode(blank) == sb.LoginRequest("u", "p", "", 0)
    left_justified = b"\x00\x1fA" + b"ABC       " + b"00000000000000000007"
    assert sb.decode(left_justified) == sb.LoginAccepted("ABC", 7)


# ---------------------------------------------------------- malformed input

SAMPLES = [
    sb.Debug("x"), sb.LoginAccepted("S", 1), sb.LoginRejected(b"A"), sb.SequencedData(b"abc"),
    sb.ServerHeartbeat(), sb.EndOfSession(), sb.LoginRequest("u", "p", "", 1),
    sb.UnsequencedData(b"abc"), sb.ClientHeartbeat(), sb.LogoutRequest(),
]


@pytest.mark.parametrize("packet", SAMPLES, ids=lambda p: type(p).__name__)
def test_truncated_oversized_and_misdeclared_are_length_errors(packet):
    raw = sb.encode(packet)
    for cut in range(len(raw)):
        assert field_of(lambda: sb.decode(raw[:cut])) == "length"
    assert field_of(lambda: sb.decode(raw + b"x")) == "length"
    declared = int.from_bytes(raw[:2], "big")
    assert field_of(lambda: sb.decode((declared + 1).to_bytes(2, "big") + raw[2:])) == "length"


def test_fixed_size_packets_with_a_wrong_size():
    assert field_of(lambda: sb.decode(b"\x00\x02HX")) == "length"
    assert field_of(lambda: sb.decode(b"\x00\x03JAS")) == "length"
    assert field_of(lambda: sb.decode(b"\x00\x01J")) == "length"
    assert field_of(lambda: sb.decode(b"\x00\x2eL" + b" " * 45)) == "length"
    assert field_of(lambda: sb.decode(b"\x00\x00")) == "length"
    assert field_of(lambda: sb.decode(b"\x00\x00H")) == "length"


def test_decode_bounds_the_payload_when_asked():
    raw = sb.encode(sb.SequencedData(b"x" * 100))
    assert field_of(lambda: sb.decode(raw, max_payload=99)) == "length"
    assert sb.decode(raw, max_payload=100) == sb.SequencedData(b"x" * 100)


@pytest.mark.parametrize("type_byte", [b"Q", b"a", b"\x00", b"\xff", b"s"])
def test_unknown_packet_type(type_byte):
    assert field_of(lambda: sb.decode(b"\x00\x01" + type_byte)) == "packet_type"


@pytest.mark.parametrize("packet", SAMPLES[1:6], ids=lambda p: type(p).__name__)
def test_server_packet_from_a_client_is_refused(packet):
    assert field_of(lambda: sb.decode(sb.encode(packet), from_client=True)) == "packet_type"


@pytest.mark.parametrize("packet", SAMPLES[6:], ids=lambda p: type(p).__name__)
def test_client_packet_from_a_server_is_refused(packet):
    assert field_of(lambda: sb.decode(sb.encode(packet), from_client=False)) == "packet_type"


def test_debug_goes_both_ways():
    raw = sb.encode(sb.Debug("x"))
    assert sb.decode(raw, from_client=True) == sb.decode(raw, from_client=False)


def login(username=b"u     ", password=b"p         ", session=b"          ",
          number=b"                   1") -> bytes:
    body = username + password + session + number
    return (len(body) + 1).to_bytes(2, "big") + b"L" + body


def accepted(session=b"         S", number=b"                   1") -> bytes:
    return b"\x00\x1fA" + session + number


@pytest.mark.parametrize("bad", [b"\x80", b"\xe9", b"\x00", b"\x07", b"\x7f"])
def test_non_printable_alpha_fields_name_the_field(bad):
    assert field_of(lambda: sb.decode(login(username=bad + b"     "))) == "username"
    assert field_of(lambda: sb.decode(login(password=b"pw" + bad + b"       "))) == "password"
    session = login(session=b"     " + bad + b"SESS")
    assert field_of(lambda: sb.decode(session)) == "requested_session"
    assert field_of(lambda: sb.decode(accepted(session=b"     " + bad + b"SESS"))) == "session"
    assert field_of(lambda: sb.decode(b"\x00\x03+a" + bad)) == "text"


@pytest.mark.parametrize("number", [
    b"                  1a", b"                 -12", b"                 +12",
    b" " * 20, b"          12    3456", b"                 0x1", b"\x80" * 20,
    b"                \xd9\xa1\xd9\xa2",  # Arabic-Indic digits: not ASCII digits
])
def test_non_numeric_sequence_numbers_name_the_field(number):
    assert field_of(lambda: sb.decode(login(number=number))) == "requested_sequence_number"
    assert field_of(lambda: sb.decode(accepted(number=number))) == "sequence_number"


@pytest.mark.parametrize("reason", [b"X", b"a", b" ", b"\x80"])
def test_bad_login_reject_reason(reason):
    assert field_of(lambda: sb.decode(b"\x00\x02J" + reason)) == "reason"


@pytest.mark.parametrize("packet", [
    sb.LoginRequest("toolong", "p"), sb.LoginRequest("u", "p" * 11),
    sb.LoginRequest("u", "p", "S" * 11), sb.LoginRequest("u", "p", "", -1),
    sb.LoginRequest("u", "p", "", 10**20), sb.LoginRequest("\u00fc", "p"),
    sb.LoginRequest("u ", "p"), sb.LoginAccepted(" S", 1), sb.LoginRejected(b"X"),
    sb.Debug("tab\there"), sb.SequencedData(b"x" * 65535),
])
def test_encode_refuses_what_the_layout_cannot_carry(packet):
    with pytest.raises(ValueError):
        sb.encode(packet)


def test_largest_payload_fits():
    raw = sb.encode(sb.SequencedData(b"x" * 65534))
    assert raw[:2] == b"\xff\xff"
    assert sb.decode(raw) == sb.SequencedData(b"x" * 65534)


# ------------------------------------------------------------------ framer

STREAM = [
    sb.LoginRequest("acct01", "secret", "SESS", 42),
    sb.UnsequencedData(b"O" + bytes(48)),
    sb.ClientHeartbeat(),
    sb.Debug("hello"),
    sb.UnsequencedData(b""),
    sb.UnsequencedData(b"X" * 19),
    sb.LogoutRequest(),
]
STREAM_BYTES = b"".join(map(sb.encode, STREAM))


def test_framer_whole_stream_in_one_chunk():
    framer = sb.SoupBinFramer(from_client=True)
    assert framer.feed(STREAM_BYTES) == STREAM
    assert framer.buffered == 0


def test_framer_split_at_every_byte_boundary():
    for cut in range(len(STREAM_BYTES) + 1):
        framer = sb.SoupBinFramer(from_client=True)
        got = framer.feed(STREAM_BYTES[:cut])
        got += framer.feed(STREAM_BYTES[cut:])
        assert got == STREAM, cut
        assert framer.buffered == 0


def test_framer_one_byte_at_a_time():
    framer = sb.SoupBinFramer(from_client=True)
    got = []
    for i in range(len(STREAM_BYTES)):
        got += framer.feed(STREAM_BYTES[i:i + 1])
        assert framer.buffered <= 2 + 1 + 48  # never more than one partial packet
    assert got == STREAM and framer.buffered == 0


@given(st.lists(server_packets, max_size=20), st.data())
def test_framer_any_chunking_gives_the_same_packets(packets, data):
    stream = b"".join(map(sb.encode, packets))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    framer = sb.SoupBinFramer(max_payload=300, from_client=False)
    got, last = [], 0
    for cut in cuts + [len(stream)]:
        got += framer.feed(stream[last:cut])
        last = cut
    assert got == packets and framer.buffered == 0


def test_framer_rejects_an_oversized_length_from_its_two_bytes():
    framer = sb.SoupBinFramer(max_payload=64)
    assert framer.feed(b"\x00") == []
    with pytest.raises(DecodeError) as info:
        framer.feed(b"\x42")  # declares 65 bytes: type + 64 payload is the bound, this is 1 over
    assert info.value.field == "length" and info.value.value == 0x42
    with pytest.raises(DecodeError):
        framer.feed(b"anything")  # the stream cannot be resynchronised


def test_framer_accepts_exactly_the_bound():
    framer = sb.SoupBinFramer(max_payload=64, from_client=False)
    assert framer.feed(sb.encode(sb.SequencedData(b"y" * 64))) == [sb.SequencedData(b"y" * 64)]


def test_framer_rejects_a_fixed_size_type_with_a_wrong_length_early():
    framer = sb.SoupBinFramer(from_client=True)
    with pytest.raises(DecodeError) as info:
        framer.feed(b"\x03\xe8L")  # a 999-byte login request; nothing more needs to arrive
    assert info.value.field == "length"


def test_framer_rejects_the_wrong_direction_at_the_type_byte():
    framer = sb.SoupBinFramer(from_client=False)
    with pytest.raises(DecodeError) as info:
        framer.feed(b"\x00\x2fL")
    assert info.value.field == "packet_type"


def test_framer_zero_length_is_an_error_not_a_stall():
    with pytest.raises(DecodeError) as info:
        sb.SoupBinFramer().feed(b"\x00\x00")
    assert info.value.field == "length"


def test_framer_delivers_packets_before_a_bad_one_then_raises():
    good = sb.encode(sb.ClientHeartbeat()) + sb.encode(sb.UnsequencedData(b"q"))
    framer = sb.SoupBinFramer(from_client=True)
    assert framer.feed(good + b"\x00\x01Q") == [sb.ClientHeartbeat(), sb.UnsequencedData(b"q")]
    assert framer.error is not None and framer.error.field == "packet_type"
    with pytest.raises(DecodeError):
        framer.feed(b"")
    with pytest.raises(DecodeError):
        framer.feed(sb.encode(sb.ClientHeartbeat()))


def test_framer_bad_content_names_the_field():
    framer = sb.SoupBinFramer(from_client=True)
    with pytest.raises(DecodeError) as info:
        framer.feed(login(number=b"x" * 20))
    assert info.value.field == "requested_sequence_number"


@settings(max_examples=300)
@given(st.binary(max_size=400), st.integers(1, 50))
def test_framer_on_garbage_raises_only_decode_error_and_stays_bounded(garbage, chunk):
    framer = sb.SoupBinFramer(max_payload=100)
    try:
        for i in range(0, len(garbage), chunk):
            framer.feed(garbage[i:i + chunk])
            assert framer.buffered < 2 + 1 + 100
    except DecodeError:
        pass


def test_framer_constructor_bounds():
    with pytest.raises(ValueError):
        sb.SoupBinFramer(max_payload=65535)
    with pytest.raises(ValueError):
        sb.SoupBinFramer(max_payload=-1)
