"""GatewayDesk resends: the timer runs only while nothing is being sequenced."""

from __future__ import annotations

from reference_impl.core.messages import Accepted, Side

from .test_gateway_desk import desk, forward, order, rec


def _sequenced(b, f, seq: int, now: int) -> None:
    b.on_output(rec(Accepted(seq, "ALICE", f"t{seq}", "ACME", Side.BUY, 10, 10_000, seq),
                    request_seq=f.request_seq), now)


def test_queued_requests_are_not_resent_while_earlier_ones_are_being_sequenced() -> None:
    b = desk("none", resend_ns=100)
    fs = [forward(b, "ALICE", order(f"t{i}"), now=0) for i in range(1, 4)]
    _sequenced(b, fs[0], 1, 150)
    assert b.due_resends(200) == []  # progress at 150: t2, t3 are queued, not lost
    assert b.due_resends(249) == []
    assert b.due_resends(250) == [fs[1].datagram, fs[2].datagram]  # no progress for 100: resend
    assert b.due_resends(300) == []
    assert b.counters["resends"] == 2


def test_a_request_overtaken_by_a_later_one_is_resent_despite_progress() -> None:
    b = desk("none", resend_ns=100)
    fs = [forward(b, "ALICE", order(f"t{i}"), now=0) for i in range(1, 4)]
    _sequenced(b, fs[1], 1, 90)  # t2 got through before t1: t1 was lost
    assert b.due_resends(99) == []
    assert b.due_resends(100) == [fs[0].datagram]  # t3 is still behind t2 in the queue
    assert b.unsequenced == 2
