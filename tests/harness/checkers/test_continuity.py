from __future__ import annotations

from reference_impl.core import sequenced_codec, wal_codec
from reference_impl.core.messages import Heartbeat, Sequenced

from harness.checkers.continuity import (
    check_sequence,
    check_stream_coverage,
    check_wal_continuity,
)


def test_contiguous_from_one_passes():
    v = check_sequence([1, 2, 3, 4, 5])
    assert v.status == "pass"
    assert (v.evidence["lowest"], v.evidence["highest"]) == (1, 5)


def test_gaps_are_reported_as_ranges():
    v = check_sequence([1, 2, 5, 6, 9])
    assert v.status == "fail"
    assert v.evidence["gaps"] == [[3, 4], [7, 8]]
    assert v.evidence["missing_count"] == 4
    assert "3..4" in v.summary


def test_reuse_is_reported():
    v = check_sequence([1, 2, 2, 3, 3, 3])
    assert v.status == "fail"
    assert v.evidence["reused"] == [2, 3]
    assert v.evidence["reuse_count"] == 3
    assert v.evidence["gaps"] == []


def test_must_start_at_first():
    v = check_sequence([3, 4, 5])
    assert v.status == "fail"
    assert v.evidence["gaps"] == [[1, 2]]
    assert check_sequence([3, 4, 5], first=3).status == "pass"
    assert check_sequence([3, 4, 5], first=None).status == "pass"
    below = check_sequence([2, 3, 4], first=3)
    assert below.status == "fail" and below.evidence["below_first"] == [2]


def test_out_of_order_fails_only_when_ordered():
    v = check_sequence([1, 3, 2, 4])
    assert v.status == "fail"
    assert v.evidence["out_of_order"] == [[3, 2]]
    assert check_sequence([1, 3, 2, 4], ordered=False).status == "pass"


def test_empty_is_unknown():
    assert check_sequence([]).status == "unknown"


def _rec(seq, payload_seq=None):
    msg = Sequenced(payload_seq if payload_seq is not None else seq, 0, 0, 0, 0, "", Heartbeat())
    return seq, sequenced_codec.encode(msg)


def test_wal_continuity_good_and_from_scanned_records():
    records = [_rec(s) for s in (1, 2, 3)]
    assert check_wal_continuity(records).status == "pass"
    buf = b"".join(wal_codec.encode_record(s, p) for s, p in records)
    scanned = wal_codec.scan(buf).records
    v = check_wal_continuity(scanned)
    assert v.status == "pass" and v.evidence["payload_seq_mismatch_count"] == 0


def test_wal_gap_and_foreign_payload_fail():
    v = check_wal_continuity([_rec(1), _rec(2), _rec(4)])
    assert v.status == "fail" and v.evidence["gaps"] == [[3, 3]]
    v = check_wal_continuity([_rec(1), _rec(2, payload_seq=7), _rec(3)])
    assert v.status == "fail"
    assert v.evidence["payload_seq_mismatches"] == [{"record_seq": 2, "payload_seq": 7}]
    assert check_wal_continuity([(1, b"x"), (2, b"y")], check_payload_seq=False).status == "pass"


def test_truncated_wal_may_start_later():
    assert check_wal_continuity([_rec(10), _rec(11)], first=None).status == "pass"
    assert check_wal_continuity([_rec(10), _rec(11)]).status == "fail"


def test_stream_fetched_whole_passes():
    v = check_stream_coverage({"engine-1": {"published_seq": 300, "fetched": 300},
                               "engine-2": {"published_seq": 0, "fetched": 0}})
    assert v.status == "pass" and v.evidence["partial"] == []


def test_stream_missing_what_the_ring_dropped_is_unknown():
    v = check_stream_coverage({"engine-1": {"published_seq": 5000, "fetched": 4096,
                                            "first_missing": 1},
                               "engine-2": {"published_seq": 10, "fetched": 10}})
    assert v.status == "unknown"
    assert v.evidence["partial"] == ["engine-1"]
    assert "4096 of the 5000" in v.summary and "first missing seq 1" in v.summary


def test_no_stream_is_unknown():
    assert check_stream_coverage({}).status == "unknown"


def test_seqs_the_sequencer_handed_out_but_the_stream_lacks_fail():
    """A seq consumed without a message: every receiver stops at the hole; the head went on."""
    v = check_wal_continuity([_rec(s) for s in range(1, 33)], last=50)
    assert v.status == "fail"
    assert "18 seqs missing" in v.summary and "first: 33..50" in v.summary
    assert "handed out seqs to 50, the stream stops at 32" in v.summary
    assert v.evidence["last_expected"] == 50


def test_a_head_at_or_below_the_highest_seq_adds_nothing():
    assert check_wal_continuity([_rec(s) for s in (1, 2, 3)], last=3).status == "pass"
    assert check_sequence([1, 2, 3], last=2).status == "pass"


def test_no_seqs_but_a_head_fails_rather_than_unknown():
    v = check_sequence([], last=4)
    assert v.status == "fail" and "4 seqs missing" in v.summary
    assert check_sequence([], last=None).status == "unknown"
    assert check_sequence([], last=0).status == "unknown"
