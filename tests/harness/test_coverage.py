"""Evidence coverage: a pass below a minimum is UNKNOWN naming the missing counts; a fail stays a fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.checkers.verdict import Verdict
from harness.coverage import NEEDS, Need, coverage_rows, covered, merge_rows, minimums
from harness.profiles import ProfileError, load_profile

REPO = Path(__file__).resolve().parents[2]
RID = "example.resend"  #: a requirement of these tests' own, so the kit's minimums may change


@pytest.fixture(autouse=True)
def _example_needs(monkeypatch) -> None:
    monkeypatch.setitem(NEEDS, RID, (Need("resends", 1, "requests sent again"),
                                     Need("requests", 100, "requests checked")))


def test_enough_evidence_passes_with_its_table() -> None:
    v = covered(Verdict.passed(RID, "each sequenced once"), {"resends": 24, "requests": 2082}, {})
    assert v.status == "pass"
    rows = {r["situation"]: (r["seen"], r["needed"]) for r in v.evidence["coverage"]}
    assert rows["resends"] == (24, 1) and rows["requests"] == (2082, 100)


def test_a_pass_below_a_minimum_is_unknown_naming_every_missing_count() -> None:
    v = covered(Verdict.passed(RID, "each sequenced once"), {"resends": 0, "requests": 7}, {})
    assert v.status == "unknown"
    assert "resends: 0 of 1" in v.summary and "requests: 7 of 100" in v.summary
    assert v.summary.endswith("each sequenced once")


def test_a_fail_stays_a_fail_however_thin() -> None:
    v = covered(Verdict.failed(RID, "T1 sequenced twice"), {}, {})
    assert v.status == "fail" and v.summary == "T1 sequenced twice"
    assert all(r["seen"] == 0 for r in v.evidence["coverage"])


def test_the_profile_sets_the_minimums() -> None:
    profile = {"evidence": {RID: {"requests": 5000}}}
    assert minimums(profile, RID)["requests"] == 5000
    assert minimums(profile, RID)["resends"] == 1  # not named: the default
    assert covered(Verdict.passed(RID, "ok"), {"resends": 24, "requests": 2082}, profile).status == "unknown"
    assert covered(Verdict.passed(RID, "ok"), {"resends": 24, "requests": 5}, {
        "evidence": {RID: {"requests": 0}}}).status == "pass"


def test_an_undeclared_situation_or_requirement_is_an_error() -> None:
    with pytest.raises(KeyError, match="resend_count"):
        coverage_rows(RID, {"resend_count": 3}, {})
    with pytest.raises(KeyError, match="no.such"):
        minimums({}, "no.such")


def test_several_tests_of_one_requirement_sum_their_counts() -> None:
    a = coverage_rows(RID, {"resends": 2, "requests": 60}, {})
    b = coverage_rows(RID, {"resends": 3, "requests": 70}, {})
    assert {r["situation"]: r["seen"] for r in merge_rows([a, b])} == {"resends": 5, "requests": 130}


def test_a_misspelt_requirement_or_situation_in_a_profile_is_refused(tmp_path) -> None:
    quick = (REPO / "profiles" / "certify-quick.yaml").read_text()
    for bad, key in (("zero_loss.kill_loger:\n    acked_before_fault: 5", "evidence.zero_loss.kill_loger"),
                     ("zero_loss.kill_logger:\n    acked_before_fualt: 5",
                      "evidence.zero_loss.kill_logger.acked_before_fualt")):
        path = tmp_path / "p.yaml"
        path.write_text(quick + f"evidence:\n  {bad}\n")
        with pytest.raises(ProfileError) as err:
            load_profile(str(path))
        assert err.value.key == key and "did you mean" in err.value.reason


def test_every_suite_requirement_declares_its_evidence(suite_requirements: set[str]) -> None:
    missing = sorted(suite_requirements - set(NEEDS))
    assert not missing, f"add these requirements' situations to harness/coverage.py NEEDS: {missing}"
