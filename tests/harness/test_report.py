from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from harness import history as hist
from harness.history import History
from harness.report import html as report_html
from harness.report import make_run_dir, new_run_id, plots, point_latest, write_run
from harness.report.samples import from_history, percentile, read_csv, summarize, write_csv
from harness.report.schema import (
    SCHEMA_VERSION,
    ReportSchemaError,
    TestOutcome,
    build_report,
    load,
    overall,
    requirement_rows,
    validate,
)

HW = {"cpu_model": "Test CPU", "logical_cpus": 2, "physical_cores": 2, "governor": {"cpu0": "unknown"},
      "isolated_cpus": [], "kernel": "6.1.0", "clocksource": "tsc", "memory_bytes": 4 * 2**30,
      "virtualization": "kvm"}


def outcome(nodeid, rid, status, summary="s", evidence=None, duration=0.5):
    return TestOutcome(nodeid, rid, f"title of {rid}", "zero_loss", status, summary, evidence or {}, duration)


def clock():
    t = iter(range(10**9, 10**12, 10**6))  # 1 ms per op
    return lambda: next(t)


def report_for(outcomes, **kw):
    base = dict(run_id="20261125T101500Z-s42", started="2026-11-25T10:15:00.000Z",
                finished="2026-11-25T10:16:00.000Z", seed=42,
                profile={"name": "certify-quick", "path": "profiles/certify-quick.yaml", "settings": {}},
                sut={"name": "reference", "kind": "reference", "descriptor": None},
                durability_policy="fsync", outcomes=outcomes, hardware=HW)
    base.update(kw)
    return build_report(**base)


# ------------------------------------------------------------------ schema


def test_rows_group_tests_by_requirement_and_fold_their_status():
    rows = requirement_rows([
        outcome("s/t.py::test_kill[logger]", "zero_loss.kill", "pass", "100 acked, none lost"),
        outcome("s/t.py::test_kill[gateway]", "zero_loss.kill", "fail", "3 acked orders lost"),
        outcome("s/t.py::test_auth", "auth.token", "pass", "rejected", {"tries": 4}),
        outcome("s/t.py::test_ouch", "auth.ouch", "n/a", "no OUCH door"),
    ])
    assert [r["id"] for r in rows] == ["zero_loss.kill", "auth.token", "auth.ouch"]
    kill = rows[0]
    assert kill["status"] == "fail" and kill["tests"] == ["s/t.py::test_kill[logger]", "s/t.py::test_kill[gateway]"]
    assert "test_kill[gateway]: 3 acked orders lost" in kill["summary"]
    assert [t["status"] for t in kill["evidence"]["tests"]] == ["pass", "fail"]
    assert kill["duration_s"] == 1.0
    assert rows[1]["evidence"] == {"tries": 4} and rows[1]["summary"] == "rejected"


def test_all_passing_trials_say_so():
    rows = requirement_rows([outcome(f"t::x[{i}]", "r", "pass") for i in range(3)])
    assert rows[0]["status"] == "pass" and rows[0]["summary"] == "all 3 tests pass"


@pytest.mark.parametrize(("statuses", "pytest_code", "want", "code"), [
    (["pass", "n/a"], 0, "pass", 0),
    (["n/a"], 0, "n/a", 0),
    (["pass", "unknown", "n/a"], 0, "unknown", 2),
    (["pass", "unknown", "fail"], 1, "fail", 1),
    ([], 5, "unknown", 2),  # nothing checked is never a pass
    (["pass"], 2, "unknown", 2),  # interrupted: cannot pass
    (["fail"], 2, "fail", 1),
])
def test_overall_verdict_and_exit_code(statuses, pytest_code, want, code):
    outcomes = [outcome(f"t::{i}", f"r{i}", st) for i, st in enumerate(statuses)]
    report = report_for(outcomes, pytest_exit_code=pytest_code)
    assert report["verdict"] == want and report["exit_code"] == code
    assert report["totals"]["total"] == len(statuses)
    assert validate(report) == []


def test_overall_names_what_did_not_pass():
    rows = requirement_rows([outcome("a", "det", "pass"), outcome("b", "zl", "fail"), outcome("c", "fz", "unknown")])
    status, summary = overall(rows)
    assert status == "fail"
    assert summary == "3 requirements: 1 pass, 1 fail, 1 unknown (FAIL zl; UNKNOWN fz)"
    assert "did not complete (pytest: interrupted)" in overall(rows, 2)[1]


def test_validate_catches_broken_reports(tmp_path):
    good = report_for([outcome("a", "r", "pass")])
    assert good["schema_version"] == SCHEMA_VERSION == "1.2"
    bad = json.loads(json.dumps(good))
    bad["requirements"][0]["status"] = "maybe"
    bad["exit_code"] = 1
    del bad["seed"]
    assert validate(bad) == ["missing seed"]
    bad["seed"] = 42
    problems = validate(bad)
    assert any("status 'maybe'" in p for p in problems)
    assert any("exit_code 1 does not match" in p for p in problems)
    future = dict(good, schema_version="2.0")
    (tmp_path / "r.json").write_text(json.dumps(future))
    with pytest.raises(ReportSchemaError, match="is not 1.x"):
        load(tmp_path / "r.json")
    (tmp_path / "r.json").write_text(json.dumps(dict(good, schema_version="1.7", new_field=1)))
    assert load(tmp_path / "r.json")["new_field"] == 1  # minor versions only add fields


def test_outcome_status_is_checked():
    with pytest.raises(ValueError):
        outcome("a", "r", "passed")


# ------------------------------------------------------------------ samples


def test_percentiles_and_summary():
    values = list(range(1, 1001))
    assert percentile(values, 50) == 500 and percentile(values, 99.9) == 999 and percentile(values, 100) == 1000
    s = summarize({"engine": [(i, v * 1000) for i, v in enumerate(values)], "empty": []})
    assert list(s) == ["engine"]
    assert s["engine"]["count"] == 1000 and s["engine"]["p99_us"] == 990 and s["engine"]["max_us"] == 1000


def test_client_latency_from_history_uses_the_intended_time():
    h = History(clock=clock())
    a = h.invoke(1, "new", {"token": "A", "intended_ns": 10**9 - 5 * 10**6})  # sent 5 ms late
    h.complete(a, hist.OK)
    b = h.invoke(2, "new", {"token": "B"})
    h.complete(b, hist.FAIL)
    f = h.invoke(hist.NEMESIS, "fault", {"name": "kill logger"})
    h.complete(f, hist.OK)
    assert from_history(h.ops) == {"client": [(10**9 - 5 * 10**6, 6 * 10**6)]}
    assert from_history([]) == {}


def test_csv_round_trip(tmp_path):
    data = {"engine": [(1, 20), (2, 30)], "client": [(3, 40)]}
    write_csv(tmp_path / "l.csv", data)
    assert read_csv(tmp_path / "l.csv") == data


# ------------------------------------------------------------------ plots and html


def test_nines_axis():
    assert plots.nines(90) == pytest.approx(1) and plots.nines(99.9) == pytest.approx(3)


def test_plots_are_base64_pngs_or_none():
    import base64

    pts = [(i * 10**6, 20_000 + (i % 97) * 100) for i in range(6000)]  # binned above RAW_POINTS_MAX
    png = plots.latency_over_time({"engine": pts}, [("pause logger", 10**9, 2 * 10**9), ("kill", 3 * 10**9, None)],
                                  throughput=[i * 10**7 for i in range(500)])
    assert base64.b64decode(png).startswith(b"\x89PNG")
    assert base64.b64decode(plots.percentile_spectrum({"engine": pts})).startswith(b"\x89PNG")
    assert plots.latency_over_time({}, []) is None
    assert plots.percentile_spectrum({"engine": []}) is None
    assert plots.latency_over_time({}, [("kill", 0, 10)]) is not None  # faults alone still make a timeline


def test_html_page_without_history_or_latencies():
    page = report_html.render(report_for([outcome("a", "r<1>", "n/a", "no <door>")]))
    assert page.startswith("<!DOCTYPE html>") and 'id="verdicts"' in page
    assert "r&lt;1&gt;" in page and "no &lt;door&gt;" in page  # escaped
    assert "base64," not in page and "No latency samples and no fault windows" in page
    assert "Durability policy under test</td><td>fsync" in page


def test_write_run_fills_the_directory(tmp_path):
    h = History(clock=clock())
    for i in range(50):
        op = h.invoke(i % 4, "new", {"token": f"T{i}"})
        h.complete(op, hist.OK if i % 10 else hist.INFO)
    fault = h.invoke(hist.NEMESIS, "fault", {"name": "kill engine-2"})
    h.complete(fault, hist.OK)
    h.invoke(hist.NEMESIS, "fault", {"name": "pause logger"})  # never healed: open window
    (tmp_path / "junit.xml").write_text("<testsuites/>")
    (tmp_path / "wal-copy.bin").write_bytes(b"x")
    report = write_run(tmp_path, run_id="r1", started="2026-11-25T10:15:00.000Z", seed=7,
                       profile={"name": "certify-quick", "settings": {"trials": 1}},
                       sut={"name": "reference", "kind": "reference", "descriptor": None},
                       durability_policy="replicated",
                       outcomes=[outcome("t::a", "zero_loss.power_off", "fail",
                                         "2 acked orders lost under durability policy replicated",
                                         {"policy": "replicated", "lost": ["T1", "T2"]})],
                       ops=h.ops, hardware=HW,
                       hardware_target={"name": "hardware-target", "target": {"virtualization": "none"}},
                       extra_artefacts={"wal": tmp_path / "wal-copy.bin", "missing": "nope.txt"})
    assert report["exit_code"] == 1 and report["durability_policy"] == "replicated"
    assert load(tmp_path / "report.json") == report
    assert report["artefacts"] == {"html": "report.html", "history": "history.jsonl", "hardware": "hardware.json",
                                   "junit": "junit.xml", "latencies": "latencies.csv",
                                   "hgrm:client": "latency-client.hgrm", "wal": "wal-copy.bin"}
    assert report["latency"]["source"].startswith("history") and report["latency"]["stages"]["client"]["count"] == 45
    assert report["hardware_match"] == {"profile": "hardware-target", "matched": False,
                                        "reasons": ["virtualization: kvm is not one of ['none']"]}
    assert [f["name"] for f in report["faults"]] == ["kill engine-2", "pause logger"]
    assert report["faults"][1]["end_ns"] is None
    assert hist.read(tmp_path / "history.jsonl") == h.ops
    assert json.loads((tmp_path / "hardware.json").read_text()) == HW
    assert "Value" in (tmp_path / "latency-client.hgrm").read_text()
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2
    assert 'href="history.jsonl"' in page and "still open" in page
    assert report_html.render_run(tmp_path).count("data:image/png;base64,") == 2  # rebuilt from artefacts


def test_write_run_with_nothing_recorded(tmp_path):
    report = write_run(tmp_path, run_id="r0", started="x", seed=1, profile={"name": "p"},
                       sut={"name": "s", "kind": "named"}, durability_policy=None, outcomes=[], hardware=HW)
    assert report["verdict"] == "unknown" and report["exit_code"] == 2 and report["latency"] == {}
    assert (tmp_path / "history.jsonl").read_text() == ""
    assert not (tmp_path / "latencies.csv").exists()
    assert "No requirement was checked" in (tmp_path / "report.html").read_text()


# ------------------------------------------------------------------ run directories


def test_run_ids_and_directories(tmp_path):
    when = dt.datetime(2026, 11, 25, 10, 15, 0, tzinfo=dt.UTC)
    assert new_run_id(42, when) == "20261125T101500Z-s42"
    first = make_run_dir(tmp_path / "results", "20261125T101500Z-s42")
    second = make_run_dir(tmp_path / "results", "20261125T101500Z-s42")
    assert first.name == "20261125T101500Z-s42" and second.name == "20261125T101500Z-s42-2"


def test_latest_is_a_relative_symlink_replaced_atomically(tmp_path):
    results = tmp_path / "results"
    a, b = make_run_dir(results, "a"), make_run_dir(results, "b")
    point_latest(results, a)
    assert os.readlink(results / "latest") == "a"
    point_latest(results, b)
    assert os.readlink(results / "latest") == "b" and (results / "latest").resolve() == b.resolve()
    assert sorted(p.name for p in results.iterdir()) == ["a", "b", "latest"]  # no temp link left


def test_kit_commit_names_the_checkout():
    import re
    import shutil
    import subprocess

    from harness.report import kit_commit

    root = Path(__file__).resolve().parents[2]
    if shutil.which("git") is None or subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        assert kit_commit() is None
        return
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    commit = kit_commit()
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", commit) and commit.startswith(head)
