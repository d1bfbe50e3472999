"""RetransmitRing: what it holds, what a re-request gets back."""

from __future__ import annotations

from reference_impl.core import mold_codec
from reference_impl.edges.retransmit_ring import MAX_REPLY_PACKETS, RetransmitRing

SESSION = b"CRUCIN0001"


def filled(capacity: int, n: int, size: int = 40) -> RetransmitRing:
    ring = RetransmitRing(capacity)
    for seq in range(1, n + 1):
        ring.put(seq, seq.to_bytes(8, "big") * (size // 8))
    return ring


def decode_all(datagrams: list[bytes]) -> dict[int, bytes]:
    out = {}
    for d in datagrams:
        assert len(d) <= 1400
        p = mold_codec.decode_packet(d)
        out.update({p.seq + i: m for i, m in enumerate(p.messages)})
    return out


def test_holds_the_last_capacity_messages() -> None:
    ring = filled(10, 25)
    assert (ring.low, ring.head) == (16, 25)
    assert ring.get(15) is None and ring.get(26) is None
    assert ring.get(16) == (16).to_bytes(8, "big") * 5


def test_reply_is_the_held_part_in_small_packets() -> None:
    ring = filled(1000, 500)
    got = decode_all(ring.serve_request(SESSION, 10, 300))
    assert sorted(got) == list(range(10, 310))
    assert all(got[s] == ring.get(s) for s in got)
    small = filled(10, 25)
    assert sorted(decode_all(small.serve_request(SESSION, 10, 10))) == list(range(16, 20))


def test_request_past_head_gets_heartbeat_with_next_seq() -> None:
    (reply,) = filled(10, 5).serve_request(SESSION, 9, 3)
    packet = mold_codec.decode_packet(reply)
    assert packet.is_heartbeat and packet.seq == 6


def test_reply_is_capped() -> None:
    ring = filled(100_000, 60_000)
    reply = ring.serve_request(SESSION, 1, 0xFFFF)
    assert len(reply) <= MAX_REPLY_PACKETS
    got = decode_all(reply)
    assert sorted(got) == list(range(1, len(got) + 1))


def test_a_run_starting_late_claims_nothing_before_it() -> None:
    ring = RetransmitRing(10)
    ring.put(500, b"x")
    ring.put(501, b"y")
    assert (ring.low, ring.head) == (500, 501)
    assert ring.get(499) is None
    assert decode_all(ring.serve_request(SESSION, 495, 10)) == {500: b"x", 501: b"y"}
