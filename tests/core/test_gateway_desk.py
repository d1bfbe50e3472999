"""GatewayDesk and the per-account order view: literal scenarios, manual clock."""

from __future__ import annotations

import pytest

from reference_impl.core import sequenced_codec
from reference_impl.core.gateway_desk import Forward, GatewayDesk
from reference_impl.core.gateway_orders import CANCEL, NEW, Account
from reference_impl.core.messages import (
    Accepted,
    Cancel,
    CancelReason,
    Canceled,
    Executed,
    NewOrder,
    OrdType,
    RejectReason,
    Rejected,
    Replace,
    Replaced,
    Side,
    Tif,
)
from reference_impl.core.output_codec import OutputRecord
from reference_impl.core.rules import Instruments
from reference_impl.core.status_codec import EngineStatus, LoggerWatermark, SequencerStatus

GW = 3
INC = 7
INSTRUMENTS = Instruments({"ACME": 100, "GLOBEX": 100})


def desk(durability: str = "fsync", **kw) -> GatewayDesk:
    return GatewayDesk(GW, INC, durability, INSTRUMENTS, **kw)


def order(token: str = "t1", side: Side = Side.BUY, qty: int = 10, price: int = 10_000,
          **kw) -> NewOrder:
    return NewOrder(token, "ACME", side, qty, price, **kw)


def rec(output, index=0, count=1, epoch=1, gateway_id=GW, request_seq=0, decided=0) -> OutputRecord:
    return OutputRecord(index, count, epoch, gateway_id, request_seq, 1_000, 500, decided, output)


def forward(b: GatewayDesk, account: str, body, now: int = 0) -> Forward:
    result = b.admit(account, body, now)
    assert isinstance(result, Forward), result
    return result


# --------------------------------------------------------------- admission


def test_admit_builds_the_sequencer_datagram_with_incarnation_in_the_request_seq() -> None:
    b = desk()
    f = forward(b, "ALICE", order())
    assert f.request_seq == (INC << 32) + 1
    msg = sequenced_codec.decode(f.datagram)
    assert (msg.seq, msg.ts, msg.gateway_id, msg.incarnation) == (0, 0, GW, INC)
    assert (msg.request_seq, msg.account, msg.body) == (f.request_seq, "ALICE", order())
    assert forward(b, "ALICE", order("t2")).request_seq == f.request_seq + 1


@pytest.mark.parametrize("body, reason", [
    (NewOrder("t1", "NOPE", Side.BUY, 10, 10_000), RejectReason.UNKNOWN_SYMBOL),
    (order(price=10_050), RejectReason.BAD_PRICE),
    (order(qty=0), RejectReason.BAD_QTY),
    (order(qty=10**30), RejectReason.BAD_QTY),
    (order(min_qty=5), RejectReason.MIN_QTY_NOT_IOC),
    (order(tif=-1), RejectReason.BAD_TIF),
    (order(token="has space"), RejectReason.BAD_TOKEN),
    (Cancel("x" * 15, 0), RejectReason.BAD_TOKEN),
    (Cancel("t1", -1), RejectReason.BAD_QTY),
    (Replace("t1", "t2", 10, 10_050 + 10**10), RejectReason.BAD_PRICE),
    (Replace("t1", "", 10, 10_000), RejectReason.BAD_TOKEN),
])
def test_stateless_rejects_are_never_forwarded(body, reason) -> None:
    b = desk()
    assert b.admit("ALICE", body, 0) == reason
    assert b.pending == {} and b.unsequenced == 0
    assert b.counters["rejected_stateless"] == 1


def test_replace_checks_the_tick_of_the_known_order() -> None:
    b = desk("none")
    f = forward(b, "ALICE", order())
    b.on_output(rec(Accepted(1, "ALICE", "t1", "ACME", Side.BUY, 10, 10_000, 1),
                    request_seq=f.request_seq), 1)
    assert b.admit("ALICE", Replace("t1", "t2", 10, 10_050), 2) == RejectReason.BAD_PRICE
    # an order this gateway does not know yet: only encodability, the engine checks the rest
    assert isinstance(b.admit("ALICE", Replace("zz", "t3", 10, 10_050), 3), Forward)


def test_resend_after_the_timeout_until_the_first_output_arrives() -> None:
    b = desk(resend_ns=100)
    f = forward(b, "ALICE", order(), now=0)
    assert b.due_resends(99) == []
    assert b.due_resends(100) == [f.datagram]
    assert b.due_resends(150) == []
    assert b.due_resends(200) == [f.datagram]
    b.on_output(rec(Accepted(1, "ALICE", "t1", "ACME", Side.BUY, 10, 10_000, 1),
                    request_seq=f.request_seq), 250)
    assert b.due_resends(10_000) == []
    assert b.counters["resends"] == 2
    assert b.pending[f.request_seq].sends == 3  # held by the gate, no longer unsequenced


# ---------------------------------------------------------------- ack gate


def _place(b: GatewayDesk, now: int = 0):
    f = forward(b, "ALICE", order(), now)
    return f, rec(Accepted(1, "ALICE", "t1", "ACME", Side.BUY, 10, 10_000, 1),
                  request_seq=f.request_seq, decided=700)


def test_fsync_releases_only_when_the_durable_watermark_covers_the_seq() -> None:
    b = desk("fsync")
    f, r = _place(b)
    assert b.on_output(r, 10) == ([], [])
    assert b.held == 1
    assert b.on_logger(LoggerWatermark(1, 1, 0, 0), 20) == ([], [])  # written, not durable
    assert b.on_engine(EngineStatus(2, False, 1, 1, 1, 0), 25) == ([], [])
    released = b.on_logger(LoggerWatermark(1, 1, 1, 0), 30)
    assert [o.output for o in released.published] == [r.output]
    (answer,) = released.answers
    assert answer.pending.request_seq == f.request_seq
    assert [o.out_seq for o in answer.outputs] == [1]
    assert answer.stages == (f.request_seq, 1, 0, 500, 700, 30, 0)
    assert b.finish(answer.stages, 40).gateway_out_ns == 40
    assert list(b.stages)[-1].gateway_out_ns == 40
    assert b.pending == {}


def test_a_watermark_that_arrived_first_releases_on_completion() -> None:
    b = desk("fsync")
    _, r = _place(b)
    b.on_logger(LoggerWatermark(1, 5, 5, 0), 5)
    released = b.on_output(r, 10)
    assert len(released.published) == 1
    assert released.answers[0].stages.durable_ns == 10


def test_replicated_needs_logger_written_and_secondary_applied() -> None:
    b = desk("replicated")
    _, r = _place(b)
    b.on_output(r, 10)
    assert b.on_logger(LoggerWatermark(1, 1, 0, 0), 20) == ([], [])
    assert b.on_engine(EngineStatus(1, True, 1, 1, 0, 0), 21) == ([], [])  # primary: no
    released = b.on_engine(EngineStatus(2, False, 1, 1, 1, 0), 30)
    assert len(released.answers) == 1

    b2 = desk("replicated")
    _, r2 = _place(b2)
    b2.on_output(r2, 10)
    assert b2.on_engine(EngineStatus(2, False, 1, 1, 1, 0), 20) == ([], [])
    assert len(b2.on_logger(LoggerWatermark(1, 1, 0, 0), 30).answers) == 1


def test_replicated_without_a_secondary_gates_on_the_written_watermark() -> None:
    b = desk("replicated", has_secondary=False)
    _, r = _place(b)
    b.on_output(r, 10)
    assert len(b.on_logger(LoggerWatermark(1, 1, 0, 0), 20).answers) == 1


def test_none_and_ack_before_durable_release_on_completion() -> None:
    for b in (desk("none"), desk("fsync", ack_before_durable=True),
              desk("replicated", ack_before_durable=True)):
        _, r = _place(b)
        assert len(b.on_output(r, 10).answers) == 1


def test_an_incomplete_output_set_is_held_even_when_durable() -> None:
    b = desk("fsync")
    f = forward(b, "BOB", order("b1", Side.SELL, qty=5, price=10_000, ord_type=OrdType.LIMIT,
                                tif=Tif.IOC))
    outs = [Accepted(4, "BOB", "b1", "ACME", Side.SELL, 5, 10_000, 2),
            Executed(4, "ALICE", "a1", 5, 10_000, 1, "A"),
            Executed(4, "BOB", "b1", 5, 10_000, 1, "R")]
    b.on_logger(LoggerWatermark(1, 10, 10, 0), 0)
    assert b.on_output(rec(outs[0], 0, 3, request_seq=f.request_seq), 1) == ([], [])
    assert b.unsequenced == 0  # the first output proves it was sequenced
    assert b.on_output(rec(outs[2], 2, 3, request_seq=f.request_seq), 2) == ([], [])
    assert b.held == 0
    released = b.on_output(rec(outs[1], 1, 3, request_seq=f.request_seq), 3)
    assert [o.output for o in released.published] == outs  # whole, in index order


def test_passive_fill_is_routed_to_the_other_account_and_gated_too() -> None:
    b = desk("fsync")
    f = forward(b, "BOB", order("b1", Side.SELL, qty=5))
    outs = [Accepted(4, "BOB", "b1", "ACME", Side.SELL, 5, 10_000, 2),
            Executed(4, "ALICE", "a1", 5, 10_000, 1, "A"),
            Executed(4, "BOB", "b1", 5, 10_000, 1, "R")]
    for i, out in enumerate(outs):
        assert b.on_output(rec(out, i, 3, request_seq=f.request_seq), i) == ([], [])
    assert b.account("ALICE").journal == []  # nothing before durability
    released = b.on_logger(LoggerWatermark(1, 4, 4, 0), 9)
    alice = b.account("ALICE").journal
    assert [(o.out_seq, o.output) for o in alice] == [(1, outs[1])]
    assert alice[0].kind == ""  # not ALICE's request
    (answer,) = released.answers
    assert [o.output for o in answer.outputs] == [outs[0], outs[2]]  # BOB's own outputs only
    assert [o.out_seq for o in answer.outputs] == [1, 2]


def test_inputs_are_released_in_seq_order_up_to_the_gate() -> None:
    b = desk("fsync")
    for seq in (1, 2, 3):
        b.on_output(rec(Rejected(seq, "ALICE", f"x{seq}", RejectReason.UNKNOWN_ORDER),
                        gateway_id=9), seq)
    released = b.on_logger(LoggerWatermark(1, 3, 2, 0), 10)
    assert [o.output.seq for o in released.published] == [1, 2]
    assert [o.output.seq for o in b.on_logger(LoggerWatermark(1, 3, 3, 0), 11).published] == [3]


def test_duplicates_and_stale_epochs_are_dropped() -> None:
    b = desk("none")
    out = Accepted(1, "ALICE", "t1", "ACME", Side.BUY, 10, 10_000, 1)
    b.on_output(rec(out, 0, 2, epoch=1, gateway_id=9), 0)
    b.on_output(rec(out, 0, 2, epoch=1, gateway_id=9), 1)  # duplicate (seq, index)
    assert b.gate.counters["duplicate_outputs"] == 1
    b.on_engine(EngineStatus(2, True, 2, 1, 0, 0), 2)  # names the primary; records fence
    fill = Executed(1, "ALICE", "t1", 10, 10_000, 1, "R")
    # the first record of epoch 2 forgets the deposed primary's half input: the re-emission is whole
    assert b.on_output(rec(fill, 1, 2, epoch=2, gateway_id=9), 3) == ([], [])
    assert b.on_output(rec(fill, 1, 2, epoch=1, gateway_id=9), 4) == ([], [])  # zombie
    assert b.gate.counters["stale_epoch_outputs"] == 1
    released = b.on_output(rec(out, 0, 2, epoch=2, gateway_id=9), 5)  # re-emitted
    assert [o.output for o in released.published] == [out, fill]
    assert b.on_output(rec(out, 0, 2, epoch=2, gateway_id=9), 6) == ([], [])  # already done
    assert b.primary_id == 2


def test_outputs_of_an_earlier_incarnation_never_answer_a_request() -> None:
    b = desk("none")
    f = forward(b, "ALICE", order())
    old_request_seq = ((INC - 1) << 32) + 1
    released = b.on_output(rec(Accepted(1, "ALICE", "t1", "ACME", Side.BUY, 10, 10_000, 1),
                               request_seq=old_request_seq), 1)
    assert released.answers == [] and f.request_seq in b.pending and b.unsequenced == 1


# ------------------------------------------------------------ backpressure


def test_backpressure_threshold_counts_engine_lag_and_unsequenced_requests() -> None:
    b = desk(capacity=100, ratio=0.5)  # limit 50
    assert b.limit == 50
    b.on_sequencer(SequencerStatus(0, 1000, 0), 0)
    b.on_engine(EngineStatus(1, True, 1, 960, 0, 0), 0)
    b.on_engine(EngineStatus(2, False, 1, 952, 0, 0), 0)  # the slowest engine counts: lag 48
    assert b.depth(0) == 48
    forward(b, "ALICE", order("a"))
    forward(b, "ALICE", order("b"))  # depth 49 before this one: admitted
    assert b.depth(0) == 50
    assert b.admit("ALICE", order("c"), 0) == RejectReason.BACKPRESSURE
    assert b.admit("ALICE", Replace("a", "d", 5, 10_000), 0) == RejectReason.BACKPRESSURE
    assert isinstance(b.admit("ALICE", Cancel("a", 0), 0), Forward)  # cancels pass
    assert b.counters["backpressure"] == 2
    b.on_engine(EngineStatus(2, False, 1, 1000, 0, 0), 1)
    assert isinstance(b.admit("ALICE", order("e"), 1), Forward)


def test_a_silent_engine_stops_counting_after_stale_ns() -> None:
    b = desk(capacity=100, ratio=0.5, stale_ns=1000)
    b.on_sequencer(SequencerStatus(0, 1000, 0), 0)
    b.on_engine(EngineStatus(2, False, 1, 0, 0, 0), 0)
    assert b.depth(0) == 1000
    assert b.depth(1001) == 0


def test_the_dedup_window_bounds_requests_in_flight_with_a_reserve_for_cancels() -> None:
    b = desk("none", window=16)  # reserve 2
    for i in range(14):
        forward(b, "ALICE", order(f"o{i}"))
    assert b.admit("ALICE", order("late"), 0) == RejectReason.BACKPRESSURE
    forward(b, "ALICE", Cancel("o1", 0))
    forward(b, "ALICE", Cancel("o2", 0))
    assert b.admit("ALICE", Cancel("o3", 0), 0) == RejectReason.BACKPRESSURE
    # the oldest request is sequenced: the window slides by one
    oldest = next(iter(b.pending))
    b.on_output(rec(Accepted(1, "ALICE", "o0", "ACME", Side.BUY, 10, 10_000, 1),
                    request_seq=oldest), 1)
    assert isinstance(b.admit("ALICE", Cancel("o3", 0), 1), Forward)


# ------------------------------------------------------ outbound sequences


def test_outbound_seq_is_per_account_and_shared_by_all_messages() -> None:
    b = desk("none")
    b.on_output(rec(Accepted(1, "ALICE", "a1", "ACME", Side.BUY, 10, 10_000, 1), gateway_id=9), 0)
    b.on_output(rec(Accepted(2, "BOB", "b1", "ACME", Side.SELL, 4, 10_000, 2), 0, 3,
                    gateway_id=9), 1)
    b.on_output(rec(Executed(2, "ALICE", "a1", 4, 10_000, 1, "A"), 1, 3, gateway_id=9), 2)
    b.on_output(rec(Executed(2, "BOB", "b1", 4, 10_000, 1, "R"), 2, 3, gateway_id=9), 3)
    local = b.local_reject("ALICE", order("zz"), RejectReason.BAD_PRICE, ts=99)
    assert local.out_seq == 3 and local.output == Rejected(0, "ALICE", "zz", RejectReason.BAD_PRICE)
    assert (local.ts, local.kind) == (99, NEW)
    assert [o.out_seq for o in b.account("ALICE").journal] == [1, 2, 3]
    assert [o.out_seq for o in b.account("BOB").journal] == [1, 2]
    assert [o.output.seq for o in b.account("ALICE").since(2)] == [2, 0]
    assert b.account("ALICE").next_out_seq == 4


def test_a_local_reject_names_the_token_the_request_would_have_used() -> None:
    b = desk("none")
    cancel = b.local_reject("ALICE", Cancel("c1", 0), RejectReason.BAD_QTY, ts=1)
    replace = b.local_reject("ALICE", Replace("c1", "r2", 5, 10_050), RejectReason.BAD_PRICE, ts=2)
    assert (cancel.output.token, cancel.kind) == ("c1", CANCEL)
    assert (replace.output.token, replace.kind, replace.out_seq) == ("r2", "replace", 2)
    assert b.account("ALICE").orders == {}  # never sequenced: no order changes


# --------------------------------------------------------------- order state


def test_order_state_from_outputs() -> None:
    a = Account("ALICE")
    a.apply(Accepted(1, "ALICE", "a1", "ACME", Side.BUY, 10, 10_000, 1), 0, NEW, Tif.DAY)
    assert a.order("a1").to_json() == {
        "token": "a1", "state": "open", "symbol": "ACME", "side": "B", "price": 10_000,
        "qty": 10, "open_qty": 10, "executed_qty": 0, "order_ref": 1, "last_seq": 1}
    a.apply(Executed(2, "ALICE", "a1", 4, 10_000, 1, "A"), 0, "")
    assert (a.order("a1").open_qty, a.order("a1").executed_qty, a.order("a1").state) == (6, 4, "open")
    a.apply(Canceled(3, "ALICE", "a1", 2, CancelReason.USER), 0, CANCEL)  # reduce
    assert (a.order("a1").open_qty, a.order("a1").state) == (4, "open")
    a.apply(Replaced(4, "ALICE", "a2", "a1", 8, 10_100, 2), 0, "replace")
    assert a.order("a1").state == "replaced" and a.order("a1").open_qty == 0
    a2 = a.order("a2")
    assert (a2.state, a2.open_qty, a2.symbol, a2.side, a2.price) == ("open", 8, "ACME", Side.BUY, 10_100)
    entry = a.journal[-1]
    assert (entry.side, entry.symbol) == (Side.BUY, "ACME")  # described from the old order
    a.apply(Executed(5, "ALICE", "a2", 8, 10_100, 2, "A"), 0, "")
    assert a.order("a2").state == "filled"
    a.apply(Rejected(6, "ALICE", "a2", RejectReason.DUPLICATE_TOKEN), 0, NEW)
    assert a.order("a2").state == "filled"  # a reject naming an existing order changes nothing
    a.apply(Rejected(7, "ALICE", "bad", RejectReason.BAD_PRICE), 0, NEW)
    assert a.order("bad").state == "rejected"
    a.apply(Accepted(8, "ALICE", "m1", "ACME", Side.BUY, 5, 0, 3), 0, NEW, Tif.IOC)
    a.apply(Canceled(8, "ALICE", "m1", 5, CancelReason.IOC), 0, NEW)
    assert a.order("m1").state == "canceled"
    assert [o.token for o in a.open_orders()] == [] and a.open_count == 0


def test_orders_are_served_only_after_release() -> None:
    b = desk("fsync")
    _, r = _place(b)
    b.on_output(r, 1)
    assert b.order("ALICE", "t1") is None
    assert b.pending_for("ALICE", "t1") is not None
    b.on_logger(LoggerWatermark(1, 1, 1, 0), 2)
    assert b.order("ALICE", "t1").state == "open"
    assert b.pending_for("ALICE", "t1") is None


def test_state_hash_follows_released_state() -> None:
    b1, b2 = desk("none"), desk("none")
    assert b1.state_hash() == b2.state_hash()
    out = Accepted(1, "ALICE", "a1", "ACME", Side.BUY, 10, 10_000, 1)
    b1.on_output(rec(out, gateway_id=9), 0)
    assert b1.state_hash() != b2.state_hash()
    b2.on_output(rec(out, gateway_id=9), 5)
    assert b1.state_hash() == b2.state_hash()
    assert b1.digest(0)["accounts"] == {"ALICE": {"next_out_seq": 2, "open_orders": 1}}
