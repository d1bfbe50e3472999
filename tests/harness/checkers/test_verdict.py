from __future__ import annotations

import pytest

from harness.checkers.verdict import (
    FAIL,
    NA,
    PASS,
    UNKNOWN,
    Verdict,
    combine,
    enforce,
    exit_code,
    first,
    status_from_skip_reason,
    too_thin,
)

P = Verdict.passed("a", "fine", {"n": 3})
F = Verdict.failed("b", "broken at 7")
U = Verdict.unknown("c", "only 5 acked")
N = Verdict.not_applicable("d", "no DR site")


def test_helpers_set_status_and_copy_evidence():
    ev = {"n": 1}
    v = Verdict.passed("r", "s", ev)
    ev["n"] = 2
    assert (v.status, v.evidence) == (PASS, {"n": 1})
    assert F.status == FAIL and U.status == UNKNOWN and N.status == NA
    assert P.ok and N.ok and not F.ok and not U.ok
    with pytest.raises(ValueError):
        Verdict("r", "maybe", "s", {})
    with pytest.raises(AttributeError):
        P.status = FAIL  # frozen


def test_round_trip_and_str():
    assert Verdict.from_dict(F.to_dict()) == F
    assert str(F) == "FAIL b: broken at 7"


def test_combine_fail_beats_unknown_beats_pass_and_na_is_ignored():
    assert combine([P, U, F, N]).status == FAIL
    assert combine([P, U, N]).status == UNKNOWN
    assert combine([P, N]).status == PASS
    assert combine([N, N]).status == NA
    assert combine([]).status == UNKNOWN
    c = combine([P, F], requirement="exactly_once")
    assert c.requirement == "exactly_once"
    assert "b: broken at 7" in c.summary
    assert [p["status"] for p in c.evidence["parts"]] == [PASS, FAIL]


def test_exit_codes():
    assert exit_code([P, N]) == 0
    assert exit_code([P, U]) == 2
    assert exit_code([U, F]) == 1
    assert exit_code([]) == 0


def test_enforce_maps_to_pytest_outcomes():
    assert enforce(P) is P
    with pytest.raises(pytest.fail.Exception, match="broken at 7"):
        enforce(F)
    with pytest.raises(pytest.skip.Exception) as u:
        enforce(U)
    assert str(u.value).startswith("UNKNOWN: c")
    with pytest.raises(pytest.skip.Exception) as n:
        enforce(N)
    assert str(n.value).startswith("N/A: d")
    assert status_from_skip_reason(str(u.value)) == UNKNOWN
    assert status_from_skip_reason("Skipped: N/A: d: x") == NA
    assert status_from_skip_reason("needs root") is None


def test_first_bounds_examples():
    assert first(range(100)) == list(range(10))
    assert first([1, 2], 5) == [1, 2]


def test_too_thin_withholds_a_pass_but_keeps_a_fail_and_na():
    v = too_thin(P, "only 2 resends")
    assert v.status == UNKNOWN and v.summary == "only 2 resends" and v.evidence == {"n": 3}
    assert v.requirement == "a"
    assert too_thin(F, "thin") is F
    assert too_thin(N, "thin") is N
    assert too_thin(U, "thinner").summary == "thinner"
