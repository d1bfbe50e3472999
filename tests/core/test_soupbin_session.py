"""The SoupBinTCP server session, driven with literal bytes and a manual clock.

Journal entries here are payload bytes and ``render`` is ``bytes``, so every
frame the session sends can be written out literally.
"""

from __future__ import annotations

import pytest

from reference_impl.core import soupbin_codec as sb
from reference_impl.core import soupbin_session as ss
from reference_impl.core.soupbin_session import Ended, LoggedIn, Send, SoupBinSession

S = 1_000_000_000
NAME = "42"

# ------------------------------------------------------------- literal frames
#: Login Request 'L', 47 = 0x2f: username 6 (left), password 10 (left),
#: session 10 (right-justified), sequence number 20 (right-justified)
LOGIN_ALICE = b"\x00\x2fL" + b"ALICE " + b"pw        " + b" " * 10 + b" " * 19 + b"0"
LOGIN_ALICE_AT_2 = b"\x00\x2fL" + b"ALICE " + b"pw        " + b"        42" + b" " * 19 + b"2"
LOGIN_WRONG_PASSWORD = b"\x00\x2fL" + b"ALICE " + b"nope      " + b" " * 10 + b" " * 19 + b"0"
LOGIN_UNKNOWN_USER = b"\x00\x2fL" + b"MALLRY" + b"pw        " + b" " * 10 + b" " * 19 + b"0"
LOGIN_OLD_SESSION = b"\x00\x2fL" + b"ALICE " + b"pw        " + b"        41" + b" " * 19 + b"0"
LOGIN_BAD_BOTH = b"\x00\x2fL" + b"ALICE " + b"nope      " + b"        41" + b" " * 19 + b"0"
DATA_X = b"\x00\x02Ux"  # Unsequenced Data "x"
DATA_Y = b"\x00\x02Uy"
CLIENT_HEARTBEAT = b"\x00\x01R"
LOGOUT = b"\x00\x01O"
DEBUG_HELLO = b"\x00\x06+hello"
SERVER_HEARTBEAT = b"\x00\x01H"
REJECTED_A = b"\x00\x02JA"
REJECTED_S = b"\x00\x02JS"


def accepted(seq: int) -> bytes:
    """Login Accepted 'A', 31 = 0x1f: session 10 (right), next sequence number 20 (right)."""
    return b"\x00\x1fA" + b"        42" + str(seq).rjust(20).encode()


def sequenced(payload: bytes) -> bytes:
    return bytes((0, len(payload) + 1)) + b"S" + payload


def debug(text: str) -> bytes:
    return bytes((0, len(text) + 1)) + b"+" + text.encode()


class Journal:
    """An account's outbound payloads, numbered from 1."""

    def __init__(self, *entries: bytes) -> None:
        self.entries = list(entries)

    @property
    def next_out_seq(self) -> int:
        return len(self.entries) + 1

    def since(self, from_seq: int) -> list[bytes]:
        return self.entries[max(from_seq, 1) - 1:]


class _Recorded(SoupBinSession):
    """A session that remembers which journals it opened (slots allow no new attribute)."""

    __slots__ = ("opened_journals",)


def make(journal: Journal | None = None, now_ns: int = 0, **kw) -> _Recorded:
    journals = {"ALICE": journal if journal is not None else Journal()}
    opened: list[str] = []

    def open_journal(account: str) -> Journal:
        opened.append(account)
        return journals[account]

    s = _Recorded(NAME, lambda user, password: (user, password) == ("ALICE", "pw"),
                  open_journal, bytes, now_ns, **kw)
    s.opened_journals = opened
    return s


def events(s: SoupBinSession) -> list:
    out = []
    while (event := s.next_event()) is not None:
        out.append(event)
    return out


def feed(s: SoupBinSession, data: bytes, now_ns: int = 0) -> list:
    s.receive_data(data, now_ns)
    return events(s)


def tick(s: SoupBinSession, now_ns: int) -> list:
    s.tick(now_ns)
    return events(s)


def logged_in(journal: Journal | None = None, **kw) -> _Recorded:
    s = make(journal, **kw)
    assert feed(s, LOGIN_ALICE)[-1] == LoggedIn("ALICE")
    return s


def test_the_literal_login_request_is_what_the_codec_encodes() -> None:
    assert LOGIN_ALICE == sb.encode(sb.LoginRequest("ALICE", "pw"))
    assert LOGIN_ALICE_AT_2 == sb.encode(sb.LoginRequest("ALICE", "pw", "42", 2))
    assert accepted(1) == sb.encode(sb.LoginAccepted("42", 1))


# --------------------------------------------------------------------- login


def test_login_accepted() -> None:
    s = make()
    assert feed(s, LOGIN_ALICE) == [Send(accepted(1)), LoggedIn("ALICE")]
    assert (s.state, s.account, s.next_seq) == (ss.LOGGED_IN, "ALICE", 1)
    assert s.opened_journals == ["ALICE"]


def test_login_split_into_single_bytes_is_the_same_login() -> None:
    s = make()
    got = []
    for i in range(len(LOGIN_ALICE)):
        got += feed(s, LOGIN_ALICE[i:i + 1])
    assert got == [Send(accepted(1)), LoggedIn("ALICE")]


@pytest.mark.parametrize("login", [LOGIN_WRONG_PASSWORD, LOGIN_UNKNOWN_USER, LOGIN_BAD_BOTH],
                         ids=["bad password", "unknown user", "bad password and session"])
def test_login_refused_not_authorized(login: bytes) -> None:
    s = make()
    assert feed(s, login) == [Send(REJECTED_A), Ended(ss.NOT_AUTHORIZED, False)]
    assert s.ended and s.account is None and s.opened_journals == []
    assert feed(s, LOGIN_ALICE) == []  # an ended session ignores everything


def test_login_refused_session_not_available() -> None:
    s = make()
    assert feed(s, LOGIN_OLD_SESSION) == [Send(REJECTED_S), Ended(ss.NO_SESSION, False)]
    assert s.opened_journals == []


def test_login_to_the_named_current_session_is_accepted() -> None:
    s = make(Journal(b"m1", b"m2"))
    assert feed(s, LOGIN_ALICE_AT_2) == [Send(accepted(2) + sequenced(b"m2")), LoggedIn("ALICE")]


# ------------------------------------------------------------ resume by seq


@pytest.mark.parametrize("requested, start", [(0, 4), (1, 1), (2, 2), (3, 3), (4, 4), (99, 4)])
def test_resume_replays_exactly_from_the_requested_number(requested: int, start: int) -> None:
    s = make(Journal(b"m1", b"m2", b"m3"))
    login = LOGIN_ALICE[:-20] + str(requested).rjust(20).encode()
    (send, _) = feed(s, login)
    replay = b"".join(sequenced(b"m%d" % n) for n in range(start, 4))
    assert send == Send(accepted(start) + replay)
    assert s.next_seq == 4
    # then live: numbering goes on from there
    assert s.send_sequenced([b"m4", b"m5"], 1) == sequenced(b"m4") + sequenced(b"m5")
    assert s.next_seq == 6


def test_nothing_is_sequenced_before_login_or_after_the_end() -> None:
    s = make()
    assert s.send_sequenced([b"m1"], 0) == b""
    feed(s, LOGIN_ALICE)
    feed(s, LOGOUT)
    assert s.send_sequenced([b"m1"], 0) == b""


# ------------------------------------------------------------------ deadlines


def test_login_deadline_ends_a_connection_that_only_sends_debug_packets() -> None:
    s = make(login_timeout_ns=2 * S)
    assert feed(s, DEBUG_HELLO, S) == []  # a Debug refreshes the idle clock ...
    assert tick(s, 2 * S - 1) == []
    assert tick(s, 2 * S) == [Send(debug("no Login Request within 2 s")),  # ... not this one
                              Ended(ss.LOGIN_DEADLINE, True)]


def test_a_silent_client_that_never_logs_in_ends_quietly_when_idle_comes_first() -> None:
    s = make(login_timeout_ns=20 * S, idle_timeout_ns=5 * S)
    assert tick(s, 5 * S) == [Ended(ss.CLIENT_SILENT, False)]


def test_server_heartbeat_when_nothing_was_sent_for_a_second() -> None:
    s = logged_in()
    assert tick(s, S - 1) == []
    assert tick(s, S) == [Send(SERVER_HEARTBEAT)]
    assert tick(s, S + S // 2) == []
    s.send_sequenced([b"m1"], 2 * S)  # sending counts: the next heartbeat is due a second later
    assert tick(s, 3 * S - 1) == []
    assert tick(s, 3 * S) == [Send(SERVER_HEARTBEAT)]


def test_no_server_heartbeat_before_login() -> None:
    s = make()
    assert tick(s, 10 * S) == []


def test_client_heartbeats_keep_the_session_and_silence_ends_it() -> None:
    s = logged_in(idle_timeout_ns=5 * S)
    assert feed(s, CLIENT_HEARTBEAT, 4 * S) == []
    assert tick(s, 8 * S) == [Send(SERVER_HEARTBEAT)]  # alive: the client spoke at 4 s
    assert tick(s, 9 * S) == [Ended(ss.CLIENT_SILENT, False)]  # 5 s of silence
    assert s.ended and tick(s, 20 * S) == []


# ---------------------------------------------------------------- messages


def test_unsequenced_data_goes_to_the_application_in_order() -> None:
    s = logged_in()
    assert feed(s, DATA_X + CLIENT_HEARTBEAT + DEBUG_HELLO + DATA_Y) == [
        sb.UnsequencedData(b"x"), sb.UnsequencedData(b"y")]


def test_logout_ends_quietly() -> None:
    s = logged_in()
    assert feed(s, LOGOUT + DATA_X) == [Ended(ss.LOGOUT, False)]


def test_the_applications_verdict_stops_the_packets_behind_it() -> None:
    s = logged_in()
    s.receive_data(DATA_X + DATA_Y, 0)
    assert s.next_event() == sb.UnsequencedData(b"x")
    s.fail("not an OUCH 4.2 message", 0)
    assert events(s) == [Send(debug("not an OUCH 4.2 message")), Ended(ss.APP_ERROR, True)]


def test_debug_text_is_kept_printable_and_short() -> None:
    s = logged_in()
    s.fail("caf\u00e9\n" + "x" * 300, 0)
    (send, _) = events(s)
    assert send.data == debug("caf??" + "x" * 195)


# ---------------------------------------------------------------- bad frames


@pytest.mark.parametrize("packet, what", [(DATA_X, ss.DATA), (CLIENT_HEARTBEAT, ss.CLIENT_HEARTBEAT),
                                          (LOGOUT, ss.LOGOUT)])
def test_anything_but_a_login_first_ends_the_session(packet: bytes, what: str) -> None:
    s = make()
    assert feed(s, packet) == [Send(debug("the first packet must be a Login Request")),
                               Ended(what, True)]


def test_a_second_login_ends_the_session() -> None:
    s = logged_in()
    assert feed(s, LOGIN_ALICE) == [Send(debug("already logged in")), Ended(ss.LOGIN_AGAIN, True)]


@pytest.mark.parametrize("bad, field", [
    (b"\x00\x01Q", "packet_type"),  # an unknown packet type
    (b"\x00\x01S", "packet_type"),  # a server's packet type from a client
    (b"\xff\xff", "length"),  # oversized: refused once the two length bytes are in
    (b"\x04\x02U" + b"x" * 1025, "length"),  # one byte over the 1024-byte payload bound
    (b"\x00\x00", "length"),  # zero
    (b"\x00\x05Lxxxx", "length"),  # a login of the wrong length
])
@pytest.mark.parametrize("when", ["before login", "after login"])
def test_bad_frames_end_the_session_with_a_debug_naming_the_field(bad: bytes, field: str,
                                                                   when: str) -> None:
    s = make() if when == "before login" else logged_in()
    got = feed(s, bad)
    assert got[-1] == Ended(ss.BAD_FRAME, True)
    (send,) = got[:-1]
    assert send.data[2:3] == b"+" and f"field {field}".encode() in send.data
    assert feed(s, DATA_X) == []


def test_packets_before_a_bad_frame_are_judged_first() -> None:
    s = make()
    got = feed(s, LOGIN_ALICE + DATA_X + b"\x00\x01Q" + DATA_Y)
    assert got[:3] == [Send(accepted(1)), LoggedIn("ALICE"), sb.UnsequencedData(b"x")]
    assert got[3].data.startswith(b"\x00") and got[4] == Ended(ss.BAD_FRAME, True)
    assert len(got) == 5


def test_eof_ends_quietly_and_a_cut_packet_is_truncated() -> None:
    s = logged_in()
    s.receive_eof()
    assert events(s) == [Ended(ss.EOF, False)]
    s = make()
    feed(s, LOGIN_ALICE[:20])
    s.receive_eof()
    assert events(s) == [Ended(ss.TRUNCATED, False)]


# ---------------------------------------------------------------- the table


def test_the_transition_table_leaves_nothing_to_an_ended_session() -> None:
    states = {ss.AWAITING_LOGIN, ss.LOGGED_IN, ss.ENDED}
    assert {state for state, _ in ss.TRANSITIONS} == {ss.AWAITING_LOGIN, ss.LOGGED_IN}
    assert {nxt for nxt, _, _ in ss.TRANSITIONS.values()} <= states
    ending = {action for nxt, action, _ in ss.TRANSITIONS.values() if nxt == ss.ENDED}
    assert ending == {ss.REFUSE, ss.FAIL, ss.END}
