"""The product's main job on the reference core: the quick certification passes end to end.

This is what the README's first command runs. It starts real clusters, so it
takes about a minute; it is part of the default test run on purpose (issue 4:
"the default test run includes the quick profile").
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def certify(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "certify", "--profile", "certify-quick",
                           "--seed", "7", "--results", str(tmp_path), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    report = json.loads((tmp_path / "latest" / "report.json").read_text())
    return proc, report


@pytest.mark.timeout(660)
def test_quick_certification_of_the_reference_passes_and_writes_the_run(tmp_path):
    proc, report = certify(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    statuses = {r["id"]: r["status"] for r in report["requirements"]}
    assert statuses and set(statuses.values()) <= {"pass", "n/a"}, statuses
    for must in ("determinism.replica_checkpoints", "exactly_once.bus_faults.same_final_state",
                 "zero_loss.kill_secondary", "zero_loss.power_off.fsync", "bad_input.ouch_door"):
        assert statuses.get(must) == "pass", (must, statuses.get(must))
    run = (tmp_path / "latest").resolve()
    for name in ("report.html", "history.jsonl", "junit.xml", "hardware.json"):
        assert (run / name).stat().st_size > 0, name
    assert report["seed"] == 7 and report["durability_policy"] == "fsync"


@pytest.mark.timeout(660)
def test_reference_described_as_an_external_sut_passes_the_suites(tmp_path):
    """docs/certify-your-exchange.md's worked example: what the descriptor offers passes, the rest is N/A."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "suites/", "-q", "-p", "no:cacheprovider",
                           "--sut", "docs/examples/reference-as-external.yaml", "--seed", "7",
                           "--results-dir", str(tmp_path / "run")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "run" / "latest" / "report.json").read_text())
    statuses = {r["id"]: r["status"] for r in report["requirements"]}
    assert report["sut"]["kind"] == "external"
    assert set(statuses.values()) <= {"pass", "n/a"}, statuses
    assert statuses["zero_loss.kill_secondary"] == "pass"
    assert statuses["auth.bad_password"] == "pass"
