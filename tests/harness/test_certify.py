"""``crucible certify`` end to end, against throwaway suites written into tmp_path.

Each suite is a conftest that loads the plugin plus a few tests chosen from
``BODIES``; every run goes through ``run_certify`` in this process (as the
CLI does), so these also check that one process can run several
certifications whose suites share module names.
"""

from __future__ import annotations

import io
import json
import os
import textwrap
import xml.etree.ElementTree as ET

import pytest
from rich.console import Console

from harness.cli.certify import ProgressObserver, find_suites_dir, run_certify
from harness.cli.certify_run import ObservedHistory, describe_sut
from harness.cli.main import main as cli
from harness.history import NEMESIS, OK
from harness.kit import kit_dir
from harness.profiles import load_profile
from harness.report.schema import load

HEAD = """\
import time

import pytest

from harness.cli.certify_plugin import require
from harness.checkers.verdict import Verdict
from harness.history import NEMESIS, OK
"""

BODIES = {
    "pass": '''
@pytest.mark.requirement("kit.pass", title="a requirement that holds")
def test_pass(history, certify_run, seed, profile, sut_name):
    assert profile["name"] and isinstance(seed, int) and sut_name
    for i in range(20):
        op = history.invoke(i % 2, "new", {"token": f"T{i}"})
        history.complete(op, OK)
    fault = history.invoke(NEMESIS, "fault", {"name": "kill logger"})
    time.sleep(0.01)
    history.complete(fault, OK)
    now = time.monotonic_ns()
    certify_run.record_latencies("engine", [(now - 10**7 + i * 10**5, 20_000 + 37 * i) for i in range(100)])
    certify_run.artefact_path("notes/trial-1.txt").write_text("evidence")
    require(Verdict.passed("kit.pass", "120 acked, none lost", {"acked": 120}))
''',
    "trials": '''
@pytest.mark.requirement("kit.trials", title="one requirement, two trials")
@pytest.mark.parametrize("trial", [1, 2])
def test_trials(trial, verdict):
    verdict(Verdict.passed("kit.trials", f"trial {trial} fine", {"trial": trial}))
''',
    "fail": '''
@pytest.mark.requirement("kit.fail")
def test_fail(verdict):
    verdict(Verdict.failed("kit.fail", "2 acked orders lost", {"lost": ["A", "B"]}))
''',
    "assert": '''
def test_assert():
    """A plain assertion failure."""
    assert 1 == 2, "one is not two"
''',
    "unknown": '''
def test_unknown():
    require(Verdict.unknown("kit.unknown", "only 3 acked, need 100", {"acked": 3}))
''',
    "na": '''
@pytest.mark.requirement("kit.na", title="the OUCH door rejects garbage")
def test_na():
    pytest.skip("N/A: the SUT has no OUCH door")
''',
    "skip": '''
def test_plain_skip():
    pytest.skip("no FUSE here")
''',
    "setup_error": '''
@pytest.fixture
def broken():
    raise RuntimeError("SUT did not start")

@pytest.mark.requirement("kit.setup")
def test_setup_error(broken):
    pass
''',
}


def make_suite(tmp_path, *names: str, extra_module: str | None = None):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text('pytest_plugins = ["harness.cli.certify_plugin"]\n')
    (suite / "test_kit.py").write_text(HEAD + "".join(textwrap.dedent(BODIES[n]) for n in names))
    if extra_module:
        (suite / "test_extra.py").write_text(extra_module)
    return suite


def certify(tmp_path, suite, **kw):
    console = Console(file=io.StringIO(), width=200)
    observer = ProgressObserver(console)
    code = run_certify(suites=suite, results=tmp_path / "results", seed=kw.pop("seed", 42),
                       observer=observer, **kw)
    latest = tmp_path / "results" / "latest"
    report = load(latest / "report.json") if latest.exists() else None
    return code, report, latest, console.file.getvalue(), observer


def statuses(report):
    return {r["id"]: r["status"] for r in report["requirements"]}


def test_all_pass_with_na_exits_0_and_writes_the_run(tmp_path):
    code, report, latest, out, observer = certify(tmp_path, make_suite(tmp_path, "pass", "trials", "na"))
    assert code == 0
    run_dir = latest.resolve()
    assert os.readlink(latest) == run_dir.name == report["run_id"]
    assert run_dir.name.endswith("Z-s42") and len(run_dir.name) == len("20261125T101500Z-s42")
    assert report["schema_version"] == "1.2" and report["seed"] == 42
    assert set(report["kit"]) == {"name", "version", "commit"}  # commit: see test_report
    assert report["verdict"] == "pass" and report["exit_code"] == 0
    assert statuses(report) == {"kit.pass": "pass", "kit.trials": "pass", "kit.na": "n/a"}
    assert report["totals"] == {"pass": 2, "fail": 0, "unknown": 0, "n/a": 1, "total": 3}
    rows = {r["id"]: r for r in report["requirements"]}
    assert rows["kit.pass"]["evidence"] == {"acked": 120}
    assert rows["kit.pass"]["title"] == "a requirement that holds" and rows["kit.pass"]["suite"] == "kit"
    assert rows["kit.na"]["summary"] == "the SUT has no OUCH door"
    assert [t["evidence"] for t in rows["kit.trials"]["evidence"]["tests"]] == [{"trial": 1}, {"trial": 2}]
    assert report["sut"] == {"name": "reference", "kind": "reference", "descriptor": None}
    assert report["profile"]["name"] == "certify-quick" and report["durability_policy"] == "fsync"
    assert report["hardware"]["logical_cpus"] >= 1 and report["hardware_match"]["profile"] == "hardware-ci"
    assert report["latency"]["stages"]["engine"]["count"] == 100
    assert [f["name"] for f in report["faults"]] == ["kill logger"]
    for name in ("report.json", "report.html", "history.jsonl", "junit.xml", "hardware.json", "pytest.log",
                 "latencies.csv", "latency-engine.hgrm", "notes/trial-1.txt"):
        assert (run_dir / name).is_file(), name
    assert report["artefacts"]["notes/trial-1.txt"] == "notes/trial-1.txt"
    cases = ET.parse(run_dir / "junit.xml").getroot().iter("testcase")
    assert sorted(c.get("name") for c in cases) == ["test_na", "test_pass", "test_trials[1]", "test_trials[2]"]
    html = (run_dir / "report.html").read_text()
    assert 'id="verdicts"' in html and "kit.trials" in html and html.count("data:image/png;base64,") == 2
    assert 'href="junit.xml"' in html and "fsync" in html
    ops = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert len(ops) == 42 and sum(op["process"] == NEMESIS for op in ops) == 2
    assert "seed 42" in out and "test_kit.py::test_pass (" in out and "N/A      test_kit.py::test_na" in out
    assert "fault started: kill logger" in out and observer.seen_faults == ["kill logger"]
    assert observer.faults == []


def test_any_failure_exits_1(tmp_path):
    code, report, _, out, _ = certify(tmp_path, make_suite(tmp_path, "pass", "fail", "assert", "unknown"))
    assert code == 1 and report["verdict"] == "fail"
    assert statuses(report) == {"kit.pass": "pass", "kit.fail": "fail", "kit::test_assert": "fail",
                                "kit.unknown": "unknown"}
    rows = {r["id"]: r for r in report["requirements"]}
    assert rows["kit.fail"]["summary"] == "2 acked orders lost" and rows["kit.fail"]["evidence"] == {"lost": ["A", "B"]}
    assert "one is not two" in rows["kit::test_assert"]["summary"]
    assert "assert 1 == 2" in rows["kit::test_assert"]["evidence"]["failure"]
    assert rows["kit::test_assert"]["title"] == "A plain assertion failure."
    assert "FAIL kit.fail" in report["verdict_summary"]


def test_unknown_without_failures_exits_2(tmp_path):
    code, report, latest, _, _ = certify(tmp_path, make_suite(tmp_path, "pass", "unknown", "na", "skip",
                                                              "setup_error"))
    assert code == 2 and report["verdict"] == "unknown" and report["exit_code"] == 2
    assert statuses(report) == {"kit.pass": "pass", "kit.unknown": "unknown", "kit.na": "n/a",
                                "kit::test_plain_skip": "unknown", "kit.setup": "unknown"}
    rows = {r["id"]: r for r in report["requirements"]}
    assert rows["kit.unknown"]["summary"] == "only 3 acked, need 100"
    assert rows["kit.unknown"]["evidence"] == {"acked": 3}
    assert rows["kit::test_plain_skip"]["summary"] == "skipped: no FUSE here"
    assert rows["kit.setup"]["summary"].startswith("error in setup: RuntimeError: SUT did not start")


def test_no_history_no_latencies_still_reports(tmp_path):
    code, report, latest, _, _ = certify(tmp_path, make_suite(tmp_path, "na"))
    assert code == 0 and report["verdict"] == "n/a" and report["latency"] == {} and report["faults"] == []
    html = (latest / "report.html").read_text()
    assert 'id="verdicts"' in html and "base64," not in html
    assert (latest / "history.jsonl").read_text() == ""


def test_a_broken_suite_module_is_unknown_never_a_pass(tmp_path):
    suite = make_suite(tmp_path, "pass", extra_module="def broken(:\n")
    code, report, _, _, _ = certify(tmp_path, suite)
    assert code == 2 and report["verdict"] == "unknown"
    assert "did not complete" in report["verdict_summary"]
    row = next(r for r in report["requirements"] if r["id"] == "extra (module)")
    assert row["status"] == "unknown" and row["summary"].startswith("collection error")


def test_module_level_na_skip(tmp_path):
    module = 'import pytest\npytest.skip("N/A: no HTTP door", allow_module_level=True)\n'
    code, report, _, _, _ = certify(tmp_path, make_suite(tmp_path, "pass", extra_module=module))
    assert code == 0
    assert statuses(report) == {"extra (module)": "n/a", "kit.pass": "pass"}


def test_keyword_selects_tests_and_random_seed_is_recorded(tmp_path):
    code, report, latest, out, _ = certify(tmp_path, make_suite(tmp_path, "pass", "fail"), keyword="test_pass",
                                           seed=None)
    assert code == 0 and list(statuses(report)) == ["kit.pass"]
    assert latest.resolve().name.endswith(f"-s{report['seed']}") and f"seed {report['seed']}" in out


def test_pytest_stopping_before_the_session_still_leaves_a_report(tmp_path):
    code, report, latest, out, _ = certify(tmp_path, make_suite(tmp_path, "pass"),
                                           extra_pytest_args=["--no-such-option"])
    assert code == 2 and report["verdict"] == "unknown" and report["requirements"] == []
    assert report["pytest"]["exit_code"] == 4 and "did not complete (pytest: usage error)" in report["verdict_summary"]
    assert "no-such-option" in (latest / "pytest.log").read_text() + out


def test_cannot_start_without_profile_or_suites(tmp_path):
    suite = make_suite(tmp_path, "pass")
    assert certify(tmp_path, suite, profile="no-such-profile")[0] == os.EX_USAGE
    assert certify(tmp_path, tmp_path / "nowhere")[0] == os.EX_USAGE
    assert not (tmp_path / "results").exists()


def test_external_sut_descriptor_and_profile_path(tmp_path):
    desc = tmp_path / "my-exchange.yaml"
    desc.write_text("name: acme-exchange\ncomponents: {}\n")
    prof = tmp_path / "mine.yaml"
    prof.write_text("name: mine\ndurability: replicated\norders_per_trial: 10\n")
    code, report, _, _, _ = certify(tmp_path, make_suite(tmp_path, "pass"), sut=str(desc), profile=str(prof))
    assert code == 0
    assert report["sut"] == {"name": "acme-exchange", "kind": "external", "descriptor": str(desc.resolve())}
    assert report["profile"]["name"] == "mine" and report["durability_policy"] == "replicated"
    assert report["hardware_match"] == {}  # the profile names no target hardware


def test_cli_certify(tmp_path, monkeypatch):
    suite = make_suite(tmp_path, "pass", "unknown")
    monkeypatch.setattr("harness.cli.certify._default_console", lambda: Console(file=io.StringIO()))
    code = cli(["certify", "--suites", str(suite), "--results", str(tmp_path / "r"), "--seed", "7",
                     "--profile", "certify-full"])
    assert code == 2
    report = load(tmp_path / "r" / "latest" / "report.json")
    assert report["seed"] == 7 and report["profile"]["settings"]["orders_per_trial"] == 2000


def test_plain_pytest_writes_the_same_report(tmp_path):
    suite = make_suite(tmp_path, "pass", "fail")
    code = pytest.main([str(suite), "-p", "no:cacheprovider", "-q", "--seed", "9",
                        "--results-dir", str(tmp_path / "res"), "--run-id", "manual"])
    assert code == 1  # pytest's own exit code: tests failed
    report = load(tmp_path / "res" / "latest" / "report.json")
    assert report["run_id"] == "manual" and report["exit_code"] == 1 and report["seed"] == 9


# ------------------------------------------------------------------ pieces


def test_observed_history_announces_faults():
    seen = []
    h = ObservedHistory(lambda name, active: seen.append((name, active)))
    op = h.invoke(1, "new", {"token": "A"})
    h.complete(op, OK)
    fault = h.invoke(NEMESIS, "fault", {"name": "pause engine-2"})
    h.complete(fault, OK)
    assert seen == [("pause engine-2", True), ("pause engine-2", False)]
    broken = ObservedHistory(lambda name, active: 1 / 0)
    broken.invoke(NEMESIS, "fault", {"name": "x"})  # a display error never reaches the test
    assert len(broken.ops) == 1


def test_shipped_profiles_and_suites_dir():
    quick, _ = load_profile("certify-quick")
    full, _ = load_profile("certify-full")
    assert (quick["orders_per_trial"], full["orders_per_trial"]) == (300, 2000)
    assert (quick["fuzz_frames_per_door"], full["fuzz_frames_per_door"]) == (2000, 10000)
    assert (quick["trials"], full["trials"]) == (1, 3)
    assert quick["durability"] == "fsync"
    assert set(quick) == set(full)
    for name in ("hardware-ci", "hardware-target"):
        assert "target" in load_profile(name, "hardware")[0]
    assert (find_suites_dir() / "conftest.py").is_file()
    assert describe_sut("reference")["kind"] == "reference"


# ------------------------------------------------------------------ usage errors: exit 64 before anything runs


MARKER_MODULE = "from pathlib import Path\nPath(__file__).with_name('collected').write_text('yes')\n"


@pytest.mark.parametrize(("old", "new", "key"), [
    ("- kill-secondary", "- kill-secondry", "faults[0]"),
    ("trials: 1", "trails: 1", "trails"),
    ("trials: 1", "trials: [1", "line "),
])
def test_a_profile_typo_exits_64_before_any_suite_runs(tmp_path, old, new, key):
    profile = tmp_path / "typo.yaml"
    profile.write_text((kit_dir("profiles") / "certify-quick.yaml").read_text().replace(old, new, 1))
    suite = make_suite(tmp_path, "pass", extra_module=MARKER_MODULE)
    code, report, _, out, _ = certify(tmp_path, suite, profile=str(profile))
    assert code == os.EX_USAGE == 64 and report is None
    assert not (tmp_path / "results").exists() and not (suite / "collected").exists()  # pytest never started
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"crucible certify: {profile}: {key}")


def test_cli_usage_errors_and_version(tmp_path, capsys):
    from importlib import metadata

    assert cli(["certify", "--suites", str(tmp_path), "--profile", "certify-quik"]) == os.EX_USAGE
    assert "did you mean certify-quick?" in capsys.readouterr().err
    assert cli(["certify", "--sut", str(tmp_path / "nope.yaml")]) == os.EX_USAGE
    for argv in (["certify", "--seed", "x"], ["no-such-command"], []):
        with pytest.raises(SystemExit) as exit_:
            cli(argv)
        assert exit_.value.code == os.EX_USAGE
    with pytest.raises(SystemExit) as exit_:
        cli(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"crucible {metadata.version('exchange-crucible')}"
