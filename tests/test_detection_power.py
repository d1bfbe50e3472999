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

The table (variant -> suite selection, requirement, rule, cause) is
``harness.detection``, shared with ``crucible self-check``.

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

from harness.detection import BY_VARIANT, DETECTIONS

REPO = Path(__file__).resolve().parent.parent
SEED = 20261125
RUN_TIMEOUT_S = 240

pytestmark = pytest.mark.timeout(600)

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
    modules = sorted({d.module for d in DETECTIONS})
    expr = " or ".join(sorted({d.keyword for d in DETECTIONS}))
    code, rows, tail = certify(tmp_path_factory.mktemp("clean"), modules, expr)
    return code, rows, tail


@pytest.mark.parametrize("requirement", sorted({d.requirement for d in DETECTIONS}))
def test_clean_reference_passes(clean_rows, requirement):
    _code, rows, tail = clean_rows
    row = rows.get(requirement)
    assert row is not None, f"{requirement} was not run:\n{tail}"
    assert row["status"] == "pass", f"{requirement}: {row['status']}: {row['summary']}"


@pytest.mark.parametrize("fault", list(BY_VARIANT))
def test_broken_variant_fails_its_requirement(fault, tmp_path):
    detection = BY_VARIANT[fault]
    requirement = detection.requirement
    code, rows, tail = certify(tmp_path, [detection.module], detection.keyword, faults=fault)
    row = rows.get(requirement)
    assert row is not None, f"{requirement} was not run with {fault}:\n{tail}"
    if row["status"] == "unknown" and "did not start" in row["summary"]:
        pytest.skip(f"UNKNOWN: {fault}: the reference cannot run this variant yet: "
                    f"{row['summary'][:300]}")
    assert row["status"] == "fail", (f"{fault} was not caught: {requirement} is "
                                     f"{row['status']}: {row['summary']}\n{tail}")
    assert code == 1, f"pytest exit code {code}, expected 1 (a failed requirement)\n{tail}"
    if detection.rule:
        assert f"{detection.rule} (" in row["summary"], row["summary"]
    assert row["summary"].startswith(detection.cause), row["summary"]
