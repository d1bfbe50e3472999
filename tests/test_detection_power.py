"""Detection power: every broken variant of the reference fails the requirement meant to catch it.

For each test-only fault flag (docs/config.md ``faults:``) the reference is
certified with that flag on, against only the suite test that should catch
it (``pytest suites/<module> -k <test>`` in a subprocess, the flag passed
through ``CRUCIBLE_SUT_FAULTS``), and the run must FAIL exactly that
requirement: pytest exit code 1 and the requirement's status ``fail`` in
``report.json`` (an order-type fault's verdict must also name the rule of
docs/matching-rules.md it breaks; a sequencer fault's verdict must say which
part of the check caught it). The clean reference, run once over the same selection, must
pass every one of those requirements, so a failure is the fault's doing.

A variant the reference cannot run yet (a node that refuses its flag) is
skipped as UNKNOWN with the node's reason, never passed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SEED = 20261125
RUN_TIMEOUT_S = 240

pytestmark = pytest.mark.timeout(600)

#: fault flag -> (suite module, -k expression, requirement that must fail)
VARIANTS = {
    "ack_before_durable": ("test_zero_loss.py", "kill-logger", "zero_loss.kill_logger"),
    "skip_dedup": ("test_exactly_once.py", "resend", "exactly_once.gateway_resend.sequenced_once"),
    "nondeterministic_tiebreak": ("test_determinism.py", "replica_checkpoints",
                                  "determinism.replica_checkpoints"),
    "unmuted_secondary": ("test_exactly_once.py", "reported_once",
                          "exactly_once.bus_faults.reported_once"),
    "ignore_wal_crc": ("test_zero_loss.py", "bitflip", "zero_loss.bitflip_wal_tail"),
    "no_gap_rerequest": ("test_exactly_once.py", "same_final_state",
                         "exactly_once.bus_faults.same_final_state"),
    "stall_after_fault": ("test_exactly_once.py", "resend", "exactly_once.gateway_resend.sequenced_once"),
    "seq_without_message": ("test_exactly_once.py", "continuity", "exactly_once.sequence_continuity"),
    **{fault: ("test_matching_rules.py", "rule_conformance", "matching.rule_conformance")
       for fault in ("fok_partial_fill", "min_qty_ignored", "market_remainder_rests",
                     "reduce_loses_priority", "replace_keeps_priority")},
}
#: order-type fault -> the rule of docs/matching-rules.md its failing verdict must name
RULE_BROKEN = {"fok_partial_fill": "R6", "min_qty_ignored": "R7", "market_remainder_rests": "R8",
               "reduce_loses_priority": "R9", "replace_keeps_priority": "R11"}
#: fault -> how its failing verdict must begin (the part of the check that caught it)
CAUSE = {"stall_after_fault": "liveness after the fault: ", "seq_without_message": "WAL records: "}


def certify(tmp: Path, modules: list[str], expr: str, faults: str = "") -> tuple[int, dict, str]:
    """Run the selected suite tests; ``(exit code, {requirement: row}, output tail)``."""
    results = tmp / "results"
    env = dict(os.environ, CRUCIBLE_SUT_FAULTS=faults, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "pytest", *[f"suites/{m}" for m in modules], "-k", expr,
           "-p", "no:cacheprovider", "--seed", str(SEED), "--profile", "certify-quick",
           "--results-dir", str(results), "-q"]
    proc = subprocess.run(cmd, check=False, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)
    tail = (proc.stdout + proc.stderr)[-3000:]
    reports = sorted(results.glob("*/report.json"))
    if not reports:
        pytest.fail(f"no report.json from {' '.join(cmd)}\n{tail}")
    rows = {r["id"]: r for r in json.loads(reports[-1].read_text())["requirements"]}
    return proc.returncode, rows, tail


@pytest.fixture(scope="module")
def clean_rows(tmp_path_factory):
    """The clean reference over every selection at once."""
    modules = sorted({m for m, _, _ in VARIANTS.values()})
    expr = " or ".join(sorted({k for _, k, _ in VARIANTS.values()}))
    code, rows, tail = certify(tmp_path_factory.mktemp("clean"), modules, expr)
    return code, rows, tail


@pytest.mark.parametrize("requirement", sorted({r for _, _, r in VARIANTS.values()}))
def test_clean_reference_passes(clean_rows, requirement):
    _code, rows, tail = clean_rows
    row = rows.get(requirement)
    assert row is not None, f"{requirement} was not run:\n{tail}"
    assert row["status"] == "pass", f"{requirement}: {row['status']}: {row['summary']}"


@pytest.mark.parametrize("fault", list(VARIANTS))
def test_broken_variant_fails_its_requirement(fault, tmp_path):
    module, expr, requirement = VARIANTS[fault]
    code, rows, tail = certify(tmp_path, [module], expr, faults=fault)
    row = rows.get(requirement)
    assert row is not None, f"{requirement} was not run with {fault}:\n{tail}"
    if row["status"] == "unknown" and "did not start" in row["summary"]:
        pytest.skip(f"UNKNOWN: {fault}: the reference cannot run this variant yet: "
                    f"{row['summary'][:300]}")
    assert row["status"] == "fail", (f"{fault} was not caught: {requirement} is "
                                     f"{row['status']}: {row['summary']}\n{tail}")
    assert code == 1, f"pytest exit code {code}, expected 1 (a failed requirement)\n{tail}"
    if fault in RULE_BROKEN:
        assert f"{RULE_BROKEN[fault]} (" in row["summary"], row["summary"]
    assert row["summary"].startswith(CAUSE.get(fault, "")), row["summary"]
