"""Matching rules: scripted scenarios, one or more per rule of docs/matching-rules.md, through every door.

Each scenario (``_scenarios``) is a short list of requests by three accounts
with the events each account must see, written from its rule. It runs
through every door the SUT has (``_scenarios_run``: HTTP and OUCH; a door
the SUT lacks is left out, both lacking is N/A) and each account's stream is
compared exactly (``harness.checkers.rule_conformance``): one requirement,
with a per-rule, per-door evidence table.
"""

from __future__ import annotations

import time

import _support as s
import pytest
from _scenarios import ACCOUNTS, RULES
from _scenarios_run import run_door

from harness.checkers.rule_conformance import REQUIREMENT, check_rule_conformance

DOORS = ("http", "ouch")


@pytest.fixture(scope="module")
def rules_sut(sut_name, seed, profile, tmp_path_factory):
    with s.open_sut(sut_name, tmp_path_factory.mktemp("rules"), seed, profile) as sut:
        yield sut


def run_nonce() -> str:
    """Four characters that make this run's tokens new to a SUT that outlives runs."""
    n, digits = time.time_ns() // 1000, "0123456789abcdefghijklmnopqrstuvwxyz"
    return "".join(digits[(n // 36 ** k) % 36] for k in range(4))


@pytest.mark.requirement(REQUIREMENT, title="every matching rule's scenarios give exactly the "
                                            "events the rule says, through every door")
def test_rule_conformance(rules_sut, history):
    sut = rules_sut
    if len(sut.accounts()) < len(ACCOUNTS):
        s.na(f"{sut.name} has fewer than {len(ACCOUNTS)} accounts")
    doors = [d for d in DOORS if sut.offers(d)]
    if not doors:
        s.na(f"{sut.name} has neither an HTTP nor an OUCH door")
    nonce = run_nonce()
    results = [r for door in doors for r in run_door(sut, door, history, nonce)]
    s.judge(check_rule_conformance(results, RULES))
