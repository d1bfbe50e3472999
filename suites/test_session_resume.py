"""Session resume on both doors: a re-login at any sequence number replays exactly from there.

One SUT for the module; one account per door (the SUT's first account on the
SoupBinTCP door, its second on the HTTP door's SSE stream). ``_resume``
builds the account's outbound history (hundreds of accepts, executions and
cancels), records it whole once, and re-logs in at the edge points and at
seeded-random ones, some while traffic is being released, each session
kept open through a later burst; ``check_session_resume`` judges every
session against the history: the first message exactly where asked, no gap,
no duplicate, the same content, up to the head. An exchange that stops
answering (the account's stream does not move for ``SETTLE_S`` after a burst)
ends the run there and FAILS it (liveness), rather than waiting out every
step. A SUT without the door is N/A for that requirement.
"""

from __future__ import annotations

import random

import _support as s
import pytest
from _continuity import CONTINUITY, TITLE, module_continuity
from _resume import OuchDriver, SseDriver, run_resumes

from harness.checkers.session_resume import check_session_resume
from harness.checkers.verdict import Verdict
from harness.coverage import covered

STEPS = 12  #: resume steps per door: two sessions each (one at rest, one during traffic)
ROUNDS = 8  #: traffic rounds per burst: five outbound messages each


@pytest.fixture(scope="module")
def resume_sut(sut_name, seed, profile, tmp_path_factory):
    with s.open_sut(sut_name, tmp_path_factory.mktemp("resume"), seed, profile) as sut:
        yield sut


def _account(sut, index: int) -> tuple[str, str]:
    accounts = list(sut.accounts().items())
    if len(accounts) <= index:
        s.na(f"{sut.name} has fewer than {index + 1} accounts")
    return accounts[index]


def _market(sut) -> tuple[str, int]:
    symbol = next(iter(sut.instruments()), "ACME")
    return symbol, 100 * sut.instruments().get(symbol, 100)


def _judge(requirement: str, driver, seed: int, profile: dict, prefix: str) -> None:
    trial = run_resumes(driver, random.Random(f"{seed}:{requirement}"), STEPS, ROUNDS, prefix)
    v = check_session_resume(requirement, trial.history, trial.resumes)
    e = v.evidence
    if trial.stalled:  # a stalled exchange fails the trial, whatever the resumes before it showed
        v = Verdict.failed(requirement, f"liveness: {trial.stalled}; {v.summary}", {**e, "stalled": trial.stalled})
    s.judge(covered(v, {"resumes": e["resumes"], "edge_points": len(e["edges"]),
                        "mid_traffic": e["mid_traffic"], "messages": e["messages"]}, profile))


@pytest.mark.requirement("exactly_once.session_resume.soupbintcp",
                         title="a SoupBinTCP login at sequence number N replays exactly from N")
def test_soupbintcp_resume(resume_sut, seed, profile):
    sut = resume_sut
    s.require_features(sut, "ouch")
    account, password = _account(sut, 0)
    _judge("exactly_once.session_resume.soupbintcp",
           OuchDriver(sut, account, password, *_market(sut)), seed, profile, "RSO")


@pytest.mark.requirement("exactly_once.session_resume.sse",
                         title="an SSE stream resumed with Last-Event-ID K replays exactly after K")
def test_sse_resume(resume_sut, seed, profile):
    sut = resume_sut
    s.require_features(sut, "http")
    account, password = _account(sut, 1)
    _judge("exactly_once.session_resume.sse",
           SseDriver(sut, account, password, *_market(sut)), seed, profile, "RSH")


@pytest.mark.requirement(CONTINUITY, title=TITLE)
def test_sequence_continuity(resume_sut, profile):
    """Last in the module: everything it sequenced is in the sequenced input once, in order."""
    s.judge(module_continuity(resume_sut, profile))
