"""The latency budget verdict (harness.latency_budget), checked as a computation over literal
histograms and stage-stamp rows, never against this machine's latency."""

from __future__ import annotations

import pytest
from hdrh.histogram import HdrHistogram

from harness.checkers.verdict import FAIL, PASS, UNKNOWN
from harness.latency_budget import (
    REQUIREMENT,
    min_samples,
    parse_budgets,
    stage_samples,
    value_at_percentile,
)
from harness.latency_budget import judge_budget as judge

BUDGET = {"engine_p99_us": 50}
MATCHED = {"profile": "hardware-ci", "matched": True, "reasons": []}
NOT_MATCHED = {"profile": "hardware-target", "matched": False, "reasons": ["logical_cpus: 2 < 8"]}


def hgram(values_ns: list[int]) -> HdrHistogram:
    h = HdrHistogram(1, 3_600 * 10**9, 3)
    for v in values_ns:
        h.record_value(v)
    return h


# ------------------------------------------------------------------ budget verdict


def test_p99_is_read_from_the_histogram() -> None:
    under = judge({"engine": hgram([10_000] * 99 + [60_000])}, BUDGET, MATCHED)
    assert under.status == PASS  # the one slow sample is above p99
    over = judge({"engine": hgram([10_000] * 98 + [60_000] * 2)}, BUDGET, MATCHED)
    assert over.status == FAIL
    (check,) = over.evidence["checks"]
    assert check["stage"] == "engine" and check["percentile"] == 99.0 and check["limit_us"] == 50
    assert 59.9 < check["value_us"] < 60.1 and check["count"] == 100 and check["status"] == FAIL
    assert "engine p99" in over.summary and "> 50 µs" in over.summary


def test_percentile_is_the_nearest_rank_rounded_against_the_sut() -> None:
    # 99 % of 2880 is rank 2851.2: the nearest rank is 2852, a slow sample; hdrh would round to 2851
    hists = {"engine": hgram([10_000] * 2851 + [60_000] * 29)}
    v = judge(hists, BUDGET, MATCHED)
    assert v.status == FAIL and v.evidence["checks"][0]["value_us"] >= 60.0
    assert value_at_percentile(hists["engine"], 99.0) >= 60_000
    assert value_at_percentile(hgram([10_000] * 100), 50.0) >= 10_000  # never below the value


def test_hardware_match_is_stated_and_never_changes_the_status() -> None:
    fast = {"engine": hgram([20_000] * 500)}
    slow = {"engine": hgram([90_000] * 500)}
    for hists, status in ((fast, PASS), (slow, FAIL)):
        for match in (MATCHED, NOT_MATCHED, {}):
            v = judge(hists, BUDGET, match)
            assert v.status == status and v.requirement == REQUIREMENT
            assert v.evidence["hardware_match"] == match
            assert v.evidence["hardware_matched"] == match.get("matched")
    assert "hardware matched hardware-ci" in judge(fast, BUDGET, MATCHED).summary
    assert "did NOT match hardware-target" in judge(fast, BUDGET, NOT_MATCHED).summary
    assert "no target profile" in judge(fast, BUDGET, {}).summary


def test_unknown_without_enough_evidence() -> None:
    few = judge({"engine": hgram([10_000] * 99)}, BUDGET, MATCHED)
    assert few.status == UNKNOWN and few.evidence["checks"][0]["needed"] == 100
    missing = judge({"wire": hgram([10_000] * 500)}, BUDGET, MATCHED)
    assert missing.status == UNKNOWN and missing.evidence["checks"][0]["count"] == 0
    subset = judge({"engine": hgram([10_000] * 900)}, BUDGET, MATCHED, expected={"engine": 1000})
    assert subset.status == UNKNOWN and "900 of 1000" in subset.summary
    covered = judge({"engine": hgram([10_000] * 995)}, BUDGET, MATCHED, expected={"engine": 1000})
    assert covered.status == PASS
    unanswered = judge({"engine": hgram([10_000] * 500)}, BUDGET, MATCHED, unanswered=3)
    assert unanswered.status == UNKNOWN and "3 requests got no answer" in unanswered.summary
    assert judge({}, {}, MATCHED).status == UNKNOWN


def test_a_fail_beats_unknown_and_unanswered() -> None:
    hists = {"engine": hgram([90_000] * 500), "wire": hgram([1] * 10)}
    v = judge(hists, {"engine_p99_us": 50, "wire_p99.9_us": 5000}, MATCHED, unanswered=2)
    assert v.status == FAIL
    assert [c["status"] for c in v.evidence["checks"]] == [FAIL, UNKNOWN]


def test_budget_keys() -> None:
    checks = parse_budgets({"engine_p99_us": 50, "wire_p99.9_us": 2000, "durable_p99_99_us": 9000})
    assert [(c.stage, c.percentile, c.limit_us) for c in checks] == [
        ("engine", 99.0, 50.0), ("wire", 99.9, 2000.0), ("durable", 99.99, 9000.0)]
    for bad in ({"engine_p99": 50}, {"engine_p99_us": 0}, {"engine_p99_us": "fast"}, {"engine_p100_us": 5}):
        with pytest.raises(ValueError):
            parse_budgets(bad)
    assert (min_samples(50), min_samples(99), min_samples(99.9)) == (2, 100, 1000)



# ------------------------------------------------------------------ stage stamps


def test_stage_samples_from_stamps() -> None:
    rows = [{"request_seq": 1, "input_seq": 1, "gateway_in_ns": 1000, "sequenced_ns": 1100,
             "decided_ns": 1150, "durable_ns": 1400, "gateway_out_ns": 1410},
            {"request_seq": 2, "input_seq": 2, "gateway_in_ns": 2000, "sequenced_ns": 1990,
             "decided_ns": 2050, "durable_ns": 0, "gateway_out_ns": 2100}]
    samples, negative = stage_samples(rows)
    assert samples["sequence"] == [(1000, 100), (2000, 0)] and negative == 1
    assert samples["engine"] == [(1000, 50), (2000, 60)]
    assert samples["durable"] == [(1000, 250)] and samples["release"] == [(1000, 10)]

