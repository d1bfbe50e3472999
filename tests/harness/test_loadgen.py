"""The open-loop load generator (harness.loadgen) and ``crucible load`` (harness.load_cmd).

The budget verdict is checked as a computation over literal histograms, never
against this machine's latency. One short real run (2 s at 500/s over OUCH, 1 s
at 200/s over HTTP) against a ReferenceSut checks the open-loop bookkeeping and
the run directory; its verdict may be pass or fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram

from harness import history as hist
from harness.checkers.verdict import FAIL, PASS, UNKNOWN
from harness.cli import main
from harness.history import History
from harness.loadgen import (
    REQUIREMENT,
    LoadResult,
    min_samples,
    parse_budgets,
    request_call,
    run_load,
    stage_samples,
    value_at_percentile,
)
from harness.loadgen import judge_budget as judge
from harness.schedule import plan_schedule
from reference_impl.core.messages import Cancel, NewOrder, OrdType, Replace, Side, Tif

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


# ------------------------------------------------------------------ pure pieces


def test_stage_samples_from_stamps() -> None:
    rows = [{"request_seq": 1, "input_seq": 1, "gateway_in_ns": 1000, "sequenced_ns": 1100,
             "decided_ns": 1150, "durable_ns": 1400, "gateway_out_ns": 1410},
            {"request_seq": 2, "input_seq": 2, "gateway_in_ns": 2000, "sequenced_ns": 1990,
             "decided_ns": 2050, "durable_ns": 0, "gateway_out_ns": 2100}]
    samples, negative = stage_samples(rows)
    assert samples["sequence"] == [(1000, 100), (2000, 0)] and negative == 1
    assert samples["engine"] == [(1000, 50), (2000, 60)]
    assert samples["durable"] == [(1000, 250)] and samples["release"] == [(1000, 10)]


def test_request_calls_carry_the_replay_fields() -> None:
    limit = NewOrder("T0000000000001", "ACME", Side.BUY, 10, 1_000_000, OrdType.LIMIT, Tif.DAY)
    assert request_call(limit) == ("new_order", {"token": "T0000000000001", "symbol": "ACME", "side": "B",
                                                 "qty": 10, "price": 1_000_000, "tif": "DAY"})
    fok = NewOrder("T0000000000002", "ACME", Side.SELL, 10, 900_000, OrdType.LIMIT, Tif.IOC, 10)
    assert request_call(fok)[1]["tif"] == "FOK" and "min_qty" not in request_call(fok)[1]
    market = NewOrder("T0000000000003", "ACME", Side.SELL, 5, 0, OrdType.MARKET, Tif.IOC)
    assert request_call(market)[1] == {"token": "T0000000000003", "symbol": "ACME", "side": "S", "qty": 5,
                                       "ord_type": "market", "tif": "IOC"}
    assert request_call(Cancel("T0000000000001", 0), "L1") == ("cancel", {"token": "L1000000000001", "qty": 0})
    method, kw = request_call(Replace("T0000000000001", "T0000000000004", 3, 1_000_100), "L1")
    assert method == "replace" and (kw["token"], kw["new_token"]) == ("L1000000000001", "L1000000000004")


def test_result_bookkeeping_on_literal_ops() -> None:
    h = History(clock=iter(range(0, 10**12, 1000)).__next__)
    t0, offsets = 0, [0, 1_000_000, 2_000_000]
    a = h.invoke(0, "new", {"token": "A", "intended_ns": 0})
    b = h.invoke(0, "new", {"token": "B", "intended_ns": 1_000_000})
    c = h.invoke(0, "cancel", {"token": "A", "intended_ns": 2_000_000})
    done = [h.complete(a, hist.OK, {"outputs": []}),
            h.complete(b, hist.FAIL, {"outputs": [{"type": "rejected", "reason": "backpressure"}]}),
            h.complete(c, hist.INFO, {"outputs": [], "reason": "timeout"})]
    r = LoadResult("ouch", {"duration_s": 3}, t0, offsets, [a, b, c], done, 3.0)
    counts = r.counts()
    assert (counts["ok"], counts["fail"], counts["info"], counts["backpressure"]) == (1, 1, 1, 1)
    assert r.unanswered == 1
    samples = r.samples()
    assert [t for t, _ in samples["wire"]] == [0, 1_000_000, 2_000_000]  # timed from the intended send
    assert samples["send_lag"][1] == (1_000_000, b.time_ns - 1_000_000)


# ------------------------------------------------------------------ a real run


@pytest.fixture(scope="module")
def sut(tmp_path_factory: pytest.TempPathFactory):
    from harness.sut import load_sut

    s = load_sut("reference", tmp_path_factory.mktemp("load-sut"), seed=5)
    s.start()
    yield s
    s.stop()


PROFILE = {"name": "test-load", "shape": {"kind": "constant", "rate_per_s": 500, "duration_s": 2},
           "drain_s": 5, "hardware_profile": "hardware-ci", "budgets": {"engine_p99_us": 50}}


def check_history(result: LoadResult, ops: list, schedule: list[int]) -> None:
    invokes = [op for op in ops if op.type == hist.INVOKE]
    assert len(invokes) == len(schedule)  # every slot was sent, none twice
    assert all(inv.value["intended_ns"] == result.t0_ns + off
               for inv, off in zip(sorted(invokes, key=lambda o: o.value["intended_ns"]), schedule, strict=True))
    assert all(inv.time_ns >= inv.value["intended_ns"] for inv in invokes)  # never early
    assert all(done is not None for _, done in hist.pairs(ops))  # every op completed ok / fail / info
    assert all({"account", "token"} <= set(inv.value) for inv in invokes)


def test_open_loop_run_over_ouch_writes_a_run_dir(sut, tmp_path: Path) -> None:
    from harness.load_cmd import record

    history = History()
    result = run_load(sut, PROFILE, history, seed=11, door="ouch", token_prefix="O")
    schedule = plan_schedule(PROFILE["shape"], 11)
    check_history(result, history.ops, schedule)
    samples = result.samples()
    assert len(samples["wire"]) + result.counts()["not_sent"] == len(schedule)
    assert result.answered is not None and len(result.stage_rows) >= 0.99 * result.answered
    assert samples["engine"] and all(lat >= 0 for _, lat in samples["engine"])

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    report = record(run_dir, seed=11, started="2026-01-01T00:00:00.000Z", profile=PROFILE,
                    profile_path="test-load.yaml", sut={"name": "reference", "kind": "reference",
                                                        "descriptor": None, "door": "ouch"},
                    durability=sut.durability, result=result, ops=history.ops)
    for stage in ("wire", "sequence", "engine", "durable", "release"):
        assert (run_dir / f"latency-{stage}.hgrm").stat().st_size > 0
        assert report["artefacts"][f"hgrm:{stage}"] == f"latency-{stage}.hgrm"
    for name in ("report.json", "report.html", "history.jsonl", "hardware.json", "load.json"):
        assert (run_dir / name).is_file()
    (row,) = report["requirements"]
    assert row["id"] == REQUIREMENT and row["status"] in (PASS, FAIL)
    assert report["verdict"] == row["status"] and report["exit_code"] == {PASS: 0, FAIL: 1}[row["status"]]
    ev = row["evidence"]
    assert ev["hardware_match"]["profile"] == "hardware-ci" and isinstance(ev["hardware_matched"], bool)
    (check,) = ev["checks"]
    assert {"stage", "percentile", "limit_us", "count", "value_us", "status"} <= set(check)
    assert check["count"] == len(samples["engine"])
    assert ev["load"]["counts"]["scheduled"] == len(schedule)
    assert report["latency"]["stages"]["wire"]["count"] == len(samples["wire"])
    assert len(hist.read(run_dir / "history.jsonl")) == len(history.ops)
    assert json.loads((run_dir / "load.json").read_text())["counts"]["sent"] == len(schedule)


def test_open_loop_run_over_http_capped_to_the_first_second(sut) -> None:
    profile = {**PROFILE, "shape": {"kind": "constant", "rate_per_s": 200, "duration_s": 30}, "http_workers": 4}
    history = History()
    result = run_load(sut, profile, history, seed=12, door="http", duration_s=1, token_prefix="H")
    schedule = [t for t in plan_schedule(profile["shape"], 12) if t < 10**9]
    assert len(schedule) == 200 and result.duration_s == 1
    check_history(result, history.ops, schedule)
    assert result.answered and len(result.stage_rows) == result.answered  # stages ride on every 200
    assert {op.process for op in history.ops} <= set(range(4 * len(sut.accounts())))


def test_cli_without_a_profile_runs_nothing(tmp_path: Path) -> None:
    assert main(["load", "--profile", str(tmp_path / "nope.yaml"), "--results", str(tmp_path)]) == 4
    bad = tmp_path / "bad.yaml"
    bad.write_text("shape: {kind: constant, duration_s: 1}\n")
    assert main(["load", "--profile", str(bad), "--results", str(tmp_path)]) == 4
    assert not any(tmp_path.glob("*-s*"))  # no run directory
