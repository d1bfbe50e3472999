"""A wheel carries the conformance suites and the profiles, and an install finds them from any directory.

setuptools' ``build_py`` (what a wheel build runs for the Python files and
package data, minus the C compile) is run into a temporary directory: the
suites and profiles must land under ``harness/kit/``, where ``harness.kit``
looks first.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness import kit
from harness.cli import certify
from harness.profiles import find_profile

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def build_lib(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build_lib")
    subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(out)], cwd=ROOT,
                   check=True, capture_output=True, timeout=120)
    return out


def test_the_wheel_carries_every_suite_and_profile(build_lib) -> None:
    packaged = build_lib / "harness" / "kit"
    suites = {p.name for p in (ROOT / "suites").glob("*.py")}
    profiles = {p.name for p in (ROOT / "profiles").glob("*.yaml")}
    assert "conftest.py" in suites and "certify-quick.yaml" in profiles
    assert suites <= {p.name for p in (packaged / "suites").glob("*.py")}
    assert profiles <= {p.name for p in (packaged / "profiles").glob("*.yaml")}
    assert (build_lib / "reference_impl" / "data" / "default.yaml").is_file()


def test_an_install_finds_its_own_copy_from_any_directory(build_lib, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(kit, "PACKAGED", build_lib / "harness" / "kit")
    monkeypatch.delenv("CRUCIBLE_SUITES", raising=False)
    monkeypatch.delenv("CRUCIBLE_PROFILES", raising=False)
    monkeypatch.chdir(tmp_path)
    assert certify.find_suites_dir() == (build_lib / "harness" / "kit" / "suites").resolve()
    assert find_profile("certify-quick") == build_lib / "harness" / "kit" / "profiles" / "certify-quick.yaml"


def test_a_checkout_reads_its_own_folders(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(kit, "PACKAGED", tmp_path / "no-wheel-here")
    assert kit.kit_dir("suites") == ROOT / "suites" and kit.kit_dir("profiles") == ROOT / "profiles"
