"""junit.xml for CI: UNKNOWN is an error, N/A a skip, and every test names its run.

pytest writes ``junit.xml`` (``--junitxml``) with every skip as ``<skipped>``,
so a CI reading it would count an UNKNOWN verdict (too little evidence, never
a pass) as a harmless skip. After pytest has written the file,
``mark_unknown_as_error`` turns every skip whose reason does not start
``N/A:`` into an ``<error type="crucible.unknown">`` (the plugin's rule: any
other skip is UNKNOWN too) and corrects the suite's ``errors`` and
``skipped`` counts. ``junit_properties`` are the properties the plugin
gives each test (``user_properties``, which pytest writes as the testcase's
``<property>`` elements): the requirement id, seed, SUT and profile.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

from harness.checkers.verdict import NA, status_from_skip_reason

UNKNOWN_TYPE = "crucible.unknown"


def junit_properties(requirement: str | None, seed: int, sut: str,
                        profile: str) -> list[tuple[str, str]]:
    """The ``(name, value)`` properties of one testcase (no requirement: none named)."""
    props = [("seed", str(seed)), ("sut", sut), ("profile", profile)]
    return ([("requirement", requirement)] if requirement else []) + props


def mark_unknown_as_error(path: str | os.PathLike) -> int:
    """Rewrite ``path`` in place: UNKNOWN skips become errors. Returns how many changed."""
    tree = ET.parse(path)
    changed = 0
    for suite in tree.getroot().iter("testsuite"):
        moved = 0
        for case in suite.iter("testcase"):
            skipped = case.find("skipped")
            if skipped is None or status_from_skip_reason(skipped.get("message", "")) == NA:
                continue
            skipped.tag = "error"
            skipped.set("type", UNKNOWN_TYPE)
            moved += 1
        if moved:
            for key, delta in (("errors", moved), ("skipped", -moved)):
                suite.set(key, str(int(suite.get(key, "0")) + delta))
        changed += moved
    if changed:
        tree.write(path, encoding="utf-8", xml_declaration=True)
    return changed
