from __future__ import annotations

from reference_impl.core import sequenced_codec
from reference_impl.core.engine import Engine
from reference_impl.core.messages import NewOrder, Sequenced, Side

from harness.checkers.determinism import (
    check_checkpoints,
    check_offline_replay,
    check_output_streams,
    hex_hash,
)

H1, H2, H3 = "aa" * 32, "bb" * 32, "cc" * 32


# ----------------------------------------------------------- checkpoints


def test_replicas_agreeing_at_common_seqs_pass():
    v = check_checkpoints({"engine-1": [(100, H1), (200, H2)],
                           "engine-2": [(100, H1), (200, H2), (300, H3)]})
    assert v.status == "pass"
    assert v.evidence["seqs_compared"] == 2  # 300 has one replica only
    assert v.evidence["highest_compared"] == 200


def test_divergence_names_seq_and_hashes():
    v = check_checkpoints({"engine-1": [(100, H1), (200, H2)],
                           "engine-2": [(100, H1), (200, H3)]})
    assert v.status == "fail"
    assert v.evidence["first_divergence"] == {"seq": 200,
                                              "hashes": {"engine-1": H2, "engine-2": H3}}
    assert "seq 200" in v.summary


def test_raw_bytes_and_hex_compare_equal():
    v = check_checkpoints({"a": [(10, bytes.fromhex(H1))], "b": [(10, H1.upper())]})
    assert v.status == "pass"
    assert hex_hash(b"\x01\x02") == "0102" and hex_hash(None) is None


def test_no_common_seq_is_unknown():
    assert check_checkpoints({"a": [(100, H1)], "b": [(200, H1)]}).status == "unknown"
    assert check_checkpoints({"a": [(100, H1)]}).status == "unknown"
    assert check_checkpoints({}).status == "unknown"


def test_replica_disagreeing_with_itself_fails():
    v = check_checkpoints({"a": [(100, H1), (100, H2)]})
    assert v.status == "fail"
    assert v.evidence["first_divergence"]["hashes"] == {"a": [H1, H2]}


# -------------------------------------------------------- offline replay


def _orders(n):
    msgs = []
    for i in range(1, n + 1):
        side = Side.BUY if i % 2 else Side.SELL
        body = NewOrder(f"T{i}", "ACME", side, 10, 10_000 + (i % 3) * 100)
        msgs.append(Sequenced(i, 1_000 + i, 1, 1, i, "ACC1", body))
    return msgs


def _live(msgs, upto):
    engine = Engine()
    for m in msgs[:upto]:
        engine.apply(m)
    return {"applied_seq": engine.last_applied_seq, "state_hash": engine.state_hash()}


def _wal(msgs):
    return [(m.seq, sequenced_codec.encode(m)) for m in msgs]


def test_replay_matching_live_hash_passes():
    msgs = _orders(20)
    v = check_offline_replay(_wal(msgs), _live(msgs, 20))
    assert v.status == "pass"
    assert v.evidence["records_applied"] == 20


def test_replay_stops_at_live_applied_seq():
    msgs = _orders(20)
    v = check_offline_replay(_wal(msgs), _live(msgs, 12))  # the WAL runs ahead of the engine
    assert v.status == "pass" and v.evidence["replayed_to"] == 12


def test_replay_disagreeing_with_live_fails_with_both_hashes():
    msgs = _orders(20)
    live = _live(msgs, 20)
    live["state_hash"] = H1
    v = check_offline_replay(_wal(msgs), live)
    assert v.status == "fail"
    assert v.evidence["live_hash"] == H1 and v.evidence["replay_hash"] != H1


def test_altered_wal_record_fails():
    msgs = _orders(10)
    live = _live(msgs, 10)
    msgs[4] = Sequenced(5, 0, 1, 1, 5, "ACC1", NewOrder("T5", "ACME", Side.BUY, 11, 10_000))
    assert check_offline_replay(_wal(msgs), live).status == "fail"


def test_short_gapped_or_garbled_wal_is_unknown():
    msgs = _orders(10)
    live = _live(msgs, 10)
    short = check_offline_replay(_wal(msgs[:6]), live)
    assert short.status == "unknown" and "ends at seq 6" in short.summary
    gapped = check_offline_replay(_wal(msgs[:3] + msgs[4:]), live)
    assert gapped.status == "unknown" and gapped.evidence["gap_at"] == 5
    garbled = _wal(msgs)
    garbled[2] = (3, b"garbage")
    bad = check_offline_replay(garbled, live)
    assert bad.status == "unknown" and bad.evidence["undecodable_seq"] == 3


def test_replay_from_snapshot_of_truncated_wal():
    msgs = _orders(10)
    base = Engine()
    for m in msgs[:5]:
        base.apply(m)
    v = check_offline_replay(_wal(msgs[5:]), _live(msgs, 10), snapshot=base.snapshot())
    assert v.status == "pass" and v.evidence["started_at"] == 5


def test_instruments_mapping_is_used():
    msgs = _orders(4)  # ACME is not tradable under these instruments: all rejected
    engine = Engine()
    for m in msgs:
        engine.apply(m)
    live = {"applied_seq": 4, "state_hash": engine.state_hash()}
    assert check_offline_replay(_wal(msgs), live, {"OTHER": 100}).status == "fail"


# -------------------------------------------------------- output streams


A = ['{"seq":1,"type":"accepted"}', '{"seq":2,"type":"rejected"}', '{"type":"end"}']


def test_identical_streams_pass():
    v = check_output_streams(A, list(A))
    assert v.status == "pass" and v.evidence["lines_a"] == 3


def test_first_differing_line_is_named():
    b = list(A)
    b[1] = '{"seq":2,"type":"accepted"}'
    v = check_output_streams(A, b)
    assert v.status == "fail"
    assert v.evidence["first_difference"] == {"line": 2, "a": A[1], "b": b[1]}


def test_byte_level_difference_fails():
    b = list(A)
    b[0] = A[0].replace(",", ", ")
    assert check_output_streams(A, b).status == "fail"


def test_truncated_stream_fails_and_empty_is_unknown():
    v = check_output_streams(A, A[:2])
    assert v.status == "fail"
    assert v.evidence["first_difference"] == {"line": 3, "a": A[2], "b": None}
    assert check_output_streams([], []).status == "unknown"


def test_live_applied_seq_zero_is_unknown_not_pass():
    msgs = _orders(5)
    live = {"applied_seq": 0, "state_hash": Engine().state_hash()}
    v = check_offline_replay(_wal(msgs), live)
    assert v.status == "unknown" and "applied seq 0" in v.summary
    assert check_offline_replay([], live).status == "unknown"


def test_snapshot_at_the_live_seq_replays_nothing_and_is_unknown():
    msgs = _orders(6)
    engine = Engine()
    for m in msgs:
        engine.apply(m)
    live = {"applied_seq": 6, "state_hash": engine.state_hash()}
    v = check_offline_replay(_wal(msgs), live, snapshot=engine.snapshot())
    assert v.status == "unknown" and v.evidence["records_applied"] == 0
