"""junit.xml: UNKNOWN is an error, N/A a skip, each testcase names requirement, seed, SUT and profile."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

from harness.report.junit import UNKNOWN_TYPE, junit_properties, mark_unknown_as_error
from tests.harness.test_certify import certify, make_suite

LITERAL = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="4" tests="6">
<testcase classname="t" name="passes"/>
<testcase classname="t" name="fails"><failure message="FAIL x: lost">lost</failure></testcase>
<testcase classname="t" name="unknown"><skipped type="pytest.skip" message="UNKNOWN: x: thin">t</skipped></testcase>
<testcase classname="t" name="na"><skipped type="pytest.skip" message="N/A: no door">t</skipped></testcase>
<testcase classname="t" name="plain"><skipped type="pytest.skip" message="no FUSE here">t</skipped></testcase>
<testcase classname="t" name="na2"><skipped type="pytest.skip" message="Skipped: N/A: off">t</skipped></testcase>
</testsuite></testsuites>
"""


def cases(path) -> dict[str, ET.Element]:
    return {c.get("name"): c for c in ET.parse(path).getroot().iter("testcase")}


def test_unknown_and_plain_skips_become_errors_na_stays_skipped(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(LITERAL)
    assert mark_unknown_as_error(path) == 2
    got = cases(path)
    assert [e.tag for e in got["unknown"]] == ["error"] and got["unknown"][0].get("type") == UNKNOWN_TYPE
    assert got["unknown"][0].get("message") == "UNKNOWN: x: thin"
    assert [e.tag for e in got["plain"]] == ["error"]
    assert [e.tag for e in got["na"]] == [e.tag for e in got["na2"]] == ["skipped"]
    assert [e.tag for e in got["fails"]] == ["failure"] and list(got["passes"]) == []
    suite = ET.parse(path).getroot().find("testsuite")
    assert (suite.get("errors"), suite.get("skipped"), suite.get("failures")) == ("2", "2", "1")
    assert mark_unknown_as_error(path) == 0           # idempotent


def test_junit_properties_name_the_run():
    assert junit_properties("zero_loss.power_off.fsync", 7, "reference", "certify-quick") == [
        ("requirement", "zero_loss.power_off.fsync"), ("seed", "7"), ("sut", "reference"),
        ("profile", "certify-quick")]
    assert [k for k, _ in junit_properties(None, 7, "x.yaml", "p")] == ["seed", "sut", "profile"]


def test_certify_writes_the_junit_ci_reads(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "test_kit", raising=False)   # a plain pytest.main run may leave it
    code, _, latest, _, _ = certify(tmp_path, make_suite(tmp_path, "pass", "unknown", "na"), seed=9)
    assert code == 2
    got = cases(latest.resolve() / "junit.xml")
    assert [e.tag for e in got["test_unknown"] if e.tag != "properties"] == ["error"]
    assert [e.tag for e in got["test_na"] if e.tag != "properties"] == ["skipped"]
    props = {p.get("name"): p.get("value") for p in got["test_pass"].iter("property")}
    assert props == {"requirement": "kit.pass", "seed": "9", "sut": "reference", "profile": "certify-quick"}
    assert "requirement" not in {p.get("name") for p in got["test_unknown"].iter("property")}
