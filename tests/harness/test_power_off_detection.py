"""The power-off requirements on the real reference: the clean one passes, a premature ack fails.

The power-off suite runs (in a subprocess, as ``tests/test_detection_power.py``
runs its selections) under a copy of certify-quick that also tries
``replicated``. Clean: ``zero_loss.power_off.fsync`` passes having cut a flush
(bytes discarded), ``zero_loss.power_off.replicated`` is N/A with its loss
measured, ``zero_loss.ack_after_flush`` passes under a slowed fsync, and the
run exits 0. With the test-only fault ``ack_before_durable`` the
acknowledgements of the flush the power-off cut are lost, and the fsync
requirement FAILS; so does ``zero_loss.ack_after_flush``, on every order. UNKNOWN (skipped) where the lossy filesystem cannot mount.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.nemesis.power import fuse_available

REPO = Path(__file__).resolve().parents[2]
SEED = 20261206
pytestmark = pytest.mark.timeout(300)


def run_power_off(tmp: Path, faults: str = "") -> tuple[int, dict, Path]:
    """``(pytest exit code, {requirement: row}, junit.xml)`` of the power-off suite."""
    quick = (REPO / "profiles" / "certify-quick.yaml").read_text()
    profile = tmp / "power.yaml"
    profile.write_text(quick.replace("power_off_policies: [fsync]", "power_off_policies: [fsync, replicated]")
                       .replace("name: certify-quick", "name: power-both"))
    junit = tmp / "junit.xml"
    env = dict(os.environ, CRUCIBLE_SUT_FAULTS=faults, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/test_zero_loss_power.py", "-p", "no:cacheprovider", "-q",
         "--seed", str(SEED), "--profile", str(profile), "--results-dir", str(tmp / "results"),
         f"--junitxml={junit}"],
        check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    reports = sorted((tmp / "results").glob("*/report.json"))
    assert reports, (proc.stdout + proc.stderr)[-3000:]
    rows = {r["id"]: r for r in json.loads(reports[-1].read_text())["requirements"]}
    return proc.returncode, rows, junit


@pytest.fixture(scope="module", autouse=True)
def _fuse() -> None:
    ok, why = fuse_available()
    if not ok:
        pytest.skip(f"UNKNOWN: the lossy filesystem cannot run here: {why}")


def test_clean_reference_passes_fsync_and_shows_replicated_outside_its_promise(tmp_path):
    code, rows, junit = run_power_off(tmp_path)
    fsync, replicated = rows["zero_loss.power_off.fsync"], rows["zero_loss.power_off.replicated"]
    assert (code, fsync["status"], replicated["status"]) == (0, "pass", "n/a"), (fsync, replicated)
    (trial,) = fsync["evidence"]["trials"]
    assert trial["bytes_discarded"] > 0 and trial["flushes_cut"] >= 1
    assert "outside the promise of durability 'replicated'" in replicated["summary"]
    assert "acknowledged orders lost, RPO" in replicated["summary"]
    assert rows["zero_loss.ack_after_flush"]["status"] == "pass"
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    props = {p.get("name"): p.get("value") for p in cases["test_power_off[replicated]"].iter("property")}
    assert props == {"requirement": "zero_loss.power_off.replicated", "seed": str(SEED),
                     "sut": "reference", "profile": "power-both"}
    assert cases["test_power_off[replicated]"].find("skipped") is not None


def test_ack_before_durable_fails_the_power_off_and_the_timing(tmp_path):
    code, rows, _ = run_power_off(tmp_path, faults="ack_before_durable")
    fsync = rows["zero_loss.power_off.fsync"]
    assert code == 1 and fsync["status"] == "fail", fsync
    assert "acknowledged orders missing from the WAL" in fsync["summary"]
    timing = rows["zero_loss.ack_after_flush"]
    assert timing["status"] == "fail" and timing["evidence"]["early_count"] > 100, timing
