"""``crucible self-check``: its usage errors, its judgement of literal runs, and one real run.

The real run is the reference over one suite test (``-k rule_conformance``),
clean and with ``fok_partial_fill``: about 15 s. The whole self-check (every
variant over the whole profile, ~20 min) is ``tox -e self-check``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli.main import main as cli
from harness.detection import RUN, RunResult, render, summarize

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(180)


def run(variant: str = "", seed: int = 7, verdict: str = "pass", **statuses: str) -> RunResult:
    """A literal run: requirement ids spelled with ``__`` for ``.``."""
    st = {k.replace("__", "."): v for k, v in statuses.items()}
    return RunResult(variant, seed, st, {k: f"{k} said {v}" for k, v in st.items()}, verdict,
                     f"verdict {verdict}", 70.0, f"/r/{variant or 'clean'}")


# ------------------------------------------------------------------ usage errors


@pytest.mark.parametrize(("args", "message"), [
    (["--variants", "fok_partal_fill"],
     "unknown variant 'fok_partal_fill' (did you mean fok_partial_fill?); known: ack_before_durable"),
    (["--profile", "certfy-quick"], "unknown profile (did you mean certify-quick?)"),
    (["--variants", "none", "--clean-seeds", "0"], "nothing to run"),
    (["--clean-seeds", "-1"], "--clean-seeds -1: must be 0 or more"),
])
def test_usage_errors_exit_64_before_anything_runs(args, message, capsys, tmp_path):
    assert cli(["self-check", *args, "--results", str(tmp_path / "out")]) == os.EX_USAGE
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_no_sut_but_the_reference(capsys):
    with pytest.raises(SystemExit) as exc:
        cli(["self-check", "--sut", "mine.yaml"])
    assert exc.value.code == os.EX_USAGE
    assert "unrecognized arguments: --sut" in capsys.readouterr().err


# ------------------------------------------------------------------ judgement


def test_all_caught_and_no_false_alarm_exits_0():
    s = summarize([run(seed=7, matching__rule_conformance="pass", book_invariants="n/a"),
                   run(seed=8, matching__rule_conformance="pass")],
                  [run("fok_partial_fill", matching__rule_conformance="fail", verdict="fail"),
                   run("skip_dedup", exactly_once__gateway_resend__sequenced_once="fail", matching__x="fail",
                       verdict="fail")])
    assert (s["caught"], s["of"], s["false_alarms"], s["exit_code"]) == (2, 2, [], 0)
    assert s["variants"][1]["failed"] == ["exactly_once.gateway_resend.sequenced_once", "matching.x"]
    text = render(s)
    assert "caught 2 of 2" in text and "0 false alarms in 2 clean runs (seeds 7, 8)" in text
    assert ("| `fok_partial_fill` | a fill-or-kill that partly fills | `matching.rule_conformance` | FAIL | yes | "
            "matching.rule_conformance |") in text


def test_a_variant_caught_only_by_another_requirement_is_not_caught():
    s = summarize([], [run("fok_partial_fill", matching__rule_conformance="pass", matching__dense_workload="fail",
                           verdict="fail"),
                       run("skip_dedup", verdict="unknown")])
    assert [(v["status"], v["caught"]) for v in s["variants"]] == [("pass", False), ("not run", False)]
    assert (s["caught"], s["of"], s["exit_code"]) == (0, 2, 1)
    assert "caught 0 of 2" in render(s) and "| PASS | **NO** | matching.dense_workload |" in render(s)


def test_a_clean_run_not_passing_is_a_false_alarm_named_with_its_seed():
    s = summarize([run(seed=7, a="pass"), run(seed=8, a="unknown", b="fail", c="n/a", verdict="fail"),
                   run(seed=9, verdict="unknown")],
                  [run("fok_partial_fill", matching__rule_conformance="fail", verdict="fail")])
    assert [(a["seed"], a["requirement"], a["status"]) for a in s["false_alarms"]] == [
        (8, "a", "unknown"), (8, "b", "fail"), (9, RUN, "unknown")]
    assert s["exit_code"] == 1
    text = render(s)
    assert "3 false alarms in 3 clean runs (seeds 7, 8, 9)" in text
    assert "- seed 8: `b` FAIL: b said fail" in text and f"- seed 9: `{RUN}` UNKNOWN: verdict unknown" in text


# ------------------------------------------------------------------ a real run


def test_a_real_self_check_catches_fok_partial_fill_and_raises_no_false_alarm(tmp_path):
    out = tmp_path / "sc"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "self-check", "--variants", "fok_partial_fill", "--clean-seeds", "1",
         "--seed", "11", "-k", "rule_conformance", "--results", str(out)],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=150,
        env={k: v for k, v in os.environ.items() if k != "CRUCIBLE_SUT_FAULTS"})
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-3000:]
    assert "[1/2] clean-s11: no false alarm" in text
    assert "[2/2] fok_partial_fill: caught: matching.rule_conformance FAIL" in text
    summary = json.loads((out / "self-check.json").read_text())
    assert (summary["caught"], summary["of"], summary["false_alarms"]) == (1, 1, [])
    assert "R6 (" in summary["variants"][0]["summary"]
    assert "caught 1 of 1" in (out / "self-check.md").read_text()
