"""Matching rules: scripted scenarios per rule of docs/matching-rules.md, and a dense randomized flow.

Each scenario (``_scenarios``) is a short list of requests by three accounts
with the events each account must see, written from its rule. It runs
through every door the SUT has (``_scenarios_run``: HTTP and OUCH; a door
the SUT lacks is left out, both lacking is N/A) and each account's stream is
compared exactly (``harness.checkers.rule_conformance``): one requirement,
with a per-rule, per-door evidence table.

The dense run (``_scenarios_dense``, seeded by the certification's seed) sends
a few hundred requests at few price levels, weighted toward the rare order
types, closed loop through each door; every account's events must be the
naive model's (``harness.model``), and the run must meet each situation
where a broken order-type rule would show. A failing run is shrunk on the
SUT to a short reproduction that the verdict prints.
"""

from __future__ import annotations

import random
import time

import _support as s
import pytest
from _continuity import CONTINUITY, TITLE, module_continuity
from _scenarios import ACCOUNTS, RULES
from _scenarios_dense import describe, differs, generate, run_dense, shrink_on_sut
from _scenarios_run import run_door

from harness.checkers.rule_conformance import DENSE, REQUIREMENT, check_dense_workload, check_rule_conformance
from harness.coverage import covered, minimums

DOORS = ("http", "ouch")
DENSE_ORDERS = 400  #: requests of the dense run, per door
DENSE_RUN = 900  #: the dense runs' indexes start here: bands and tokens apart from the scenarios'
SHRINK_S = 20.0  #: the longest a failing dense run is shrunk on the SUT


@pytest.fixture(scope="module")
def rules_sut(sut_name, seed, profile, tmp_path_factory):
    with s.open_sut(sut_name, tmp_path_factory.mktemp("rules"), seed, profile) as sut:
        yield sut


def run_nonce() -> str:
    """Four characters that make this run's tokens new to a SUT that outlives runs."""
    n, digits = time.time_ns() // 1000, "0123456789abcdefghijklmnopqrstuvwxyz"
    return "".join(digits[(n // 36 ** k) % 36] for k in range(4))


def doors_of(sut) -> list[str]:
    """The doors to run through (N/A: too few accounts, or no door)."""
    if len(sut.accounts()) < len(ACCOUNTS):
        s.na(f"{sut.name} has fewer than {len(ACCOUNTS)} accounts")
    doors = [d for d in DOORS if sut.offers(d)]
    if not doors:
        s.na(f"{sut.name} has neither an HTTP nor an OUCH door")
    return doors


@pytest.mark.requirement(REQUIREMENT, title="every matching rule's scenarios give exactly the "
                                            "events the rule says, through every door")
def test_rule_conformance(rules_sut, history, profile):
    sut, nonce = rules_sut, run_nonce()
    doors = doors_of(sut)
    results = [r for door in doors for r in run_door(sut, door, history, nonce)]
    v = check_rule_conformance(results, RULES)
    judged = {rule: min(sum(1 for r in results if r["rule"] == rule and r["door"] == d and not r.get("unknown"))
                        for d in doors) for rule in RULES}
    s.judge(covered(v, {**judged, "doors": len(doors)}, profile))


@pytest.mark.requirement(DENSE, title="a dense randomized order flow gives, fill for fill, the "
                                      "events of the naive model, through every door")
def test_dense_workload(rules_sut, history, seed, profile):
    sut, nonce = rules_sut, run_nonce()
    steps = generate(random.Random(seed), DENSE_ORDERS)
    runs = [run_dense(sut, door, history, nonce, steps, DENSE_RUN + k)
            for k, door in enumerate(doors_of(sut))]
    failing = next((run for run in runs if differs(run)), None)
    if failing is not None:  # one reproduction: the doors share the engine
        small = shrink_on_sut(sut, failing, steps, history, nonce, DENSE_RUN + 10, SHRINK_S)
        failing["reproduction"] = [describe(step) for step in small]
    need = minimums(profile, DENSE)
    v = check_dense_workload(runs, need)  # per door: each door must meet every minimum
    s.judge(covered(v, {name: min(r["situations"].get(name, 0) for r in runs) for name in need}, profile))


@pytest.mark.requirement(CONTINUITY, title=TITLE)
def test_sequence_continuity(rules_sut, profile):
    """Last in the module: everything it sequenced is in the sequenced input once, in order."""
    s.judge(module_continuity(rules_sut, profile))
