"""The open-loop load generator (harness.loadgen) and ``crucible load`` (harness.cli.load).

The request calls are checked on literal order bodies. One short real run
(2 s at 500/s over OUCH, 1 s at 200/s over HTTP) against a ReferenceSut
checks the open-loop bookkeeping and the run directory; its verdict may be
pass or fail. The budget verdict itself is tested in test_latency_budget.py,
the result's bookkeeping in test_load_result.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness import history as hist
from harness.checkers.verdict import FAIL, PASS
from harness.cli.main import main
from harness.history import History
from harness.latency_budget import REQUIREMENT
from harness.load_result import LoadResult
from harness.loadgen import request_call, run_load
from harness.schedule import plan_schedule
from reference_impl.core.messages import Cancel, NewOrder, OrdType, Replace, Side, Tif

# ------------------------------------------------------------------ requests


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
    from harness.cli.load import record

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
    assert main(["load", "--profile", str(tmp_path / "nope.yaml"), "--results", str(tmp_path)]) == os.EX_USAGE
    bad = tmp_path / "bad.yaml"
    bad.write_text("shape: {kind: constant, duration_s: 1}\n")
    assert main(["load", "--profile", str(bad), "--results", str(tmp_path)]) == os.EX_USAGE
    assert not any(tmp_path.glob("*-s*"))  # no run directory
