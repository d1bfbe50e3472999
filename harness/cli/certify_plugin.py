"""The pytest plugin behind the conformance suites and ``crucible certify``.

``suites/conftest.py`` loads it (``pytest_plugins = ["harness.cli.certify_plugin"]``),
so ``pytest suites/ --sut S --seed N`` and ``crucible certify`` run the same
thing. What a suite gets:

- options ``--sut`` (a name, default ``reference``, or a descriptor path),
  ``--seed`` (default: random, printed in the header), ``--profile`` (a name
  in ``profiles/`` or a YAML path, default ``certify-quick``),
  ``--results-dir`` (write the run's report there; ``--run-id`` names it);
- session fixtures ``sut_name``, ``seed``, ``profile`` (the profile dict),
  ``history`` (one ``harness.history.History`` for the session, written to
  ``history.jsonl``), ``hardware``, ``certify_run`` (latencies, artefacts,
  the durability policy, the SUT's description);
- ``require(verdict)`` (module function) or the ``verdict`` fixture: records
  the ``Verdict`` as the current test's evidence, then passes, fails or skips
  with ``UNKNOWN:`` / ``N/A:`` (``checkers.verdict.enforce``);
- the marker ``@pytest.mark.requirement("id", title="...")``.

Theory of operation
-------------------
Every test becomes a ``TestOutcome`` when it finishes
(``pytest_runtest_logfinish``): its status comes from pytest's own reports
(passed -> pass, failed in the call -> fail, a skip whose reason starts
``UNKNOWN:`` / ``N/A:`` -> unknown / n/a, any other skip, an xfail or an
error in setup or teardown -> unknown: nothing was shown either way), its
summary and evidence from the verdicts it recorded (else from the failure or
skip). A module skipped or broken at collection becomes one outcome too. At
session end (last, after ``--junitxml`` is written; UNKNOWN skips there become
errors, and every testcase carries its requirement, seed, SUT and profile as
properties: ``harness.report.junit``) the outcomes, history,
latencies and hardware go to ``harness.report.write_run`` when a results dir
was given, and ``results/latest`` points at the run.

Two hooks of our own let an observer (the ``crucible certify`` progress bar)
follow along: ``pytest_crucible_fault(name, active)`` whenever a nemesis op
starts or ends in the history, and ``pytest_crucible_outcome(outcome)``
for every finished test.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import pytest

from harness.checkers.verdict import NA, UNKNOWN, Verdict, enforce, status_from_skip_reason
from harness.cli.certify_run import (
    DEFAULT_PROFILE,
    DEFAULT_SUT,
    TEXT_MAX,
    CertifyRun,
    failure_message,
    skip_reason,
    suite_of,
)
from harness.history import History
from harness.report import point_latest, write_run
from harness.report.junit import junit_properties, mark_unknown_as_error
from harness.report.schema import TestOutcome, overall, requirement_rows

__all__ = ["RUN_KEY", "CertifyRun", "CrucibleHookSpecs", "require"]

_ACTIVE: CertifyRun | None = None  #: the configured session's run, for ``require``


def require(verdict: Verdict) -> Verdict:
    """Record ``verdict`` for the running test, then pass / fail / skip it (see ``enforce``)."""
    if _ACTIVE is not None:
        _ACTIVE.note_verdict(_ACTIVE.current_nodeid, verdict)
    return enforce(verdict)


# ------------------------------------------------------------------ hooks


class CrucibleHookSpecs:
    @pytest.hookspec
    def pytest_crucible_fault(self, name: str, active: bool) -> None:
        """A nemesis fault ``name`` started (``active``) or ended, per the history."""

    @pytest.hookspec
    def pytest_crucible_outcome(self, outcome: TestOutcome) -> None:
        """A test finished with this outcome."""


RUN_KEY = pytest.StashKey[CertifyRun]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(CrucibleHookSpecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("crucible", "Crucible certification")
    group.addoption("--sut", dest="crucible_sut", default=DEFAULT_SUT,
                    help="system under test: 'reference' (default) or a SUT descriptor YAML path")
    group.addoption("--seed", dest="crucible_seed", type=int, default=None,
                    help="seed for workloads and fault plans (default: random, printed)")
    group.addoption("--profile", dest="crucible_profile", default=DEFAULT_PROFILE,
                    help="profile name in profiles/ or a YAML path (default: certify-quick)")
    group.addoption("--results-dir", dest="crucible_results_dir", default=None,
                    help="write report.json, report.html... to DIR/<run-id> and point DIR/latest at it")
    group.addoption("--run-id", dest="crucible_run_id", default=None,
                    help="the run directory's name (default: UTC time and seed, e.g. 20261125T101500Z-s42)")


def pytest_configure(config: pytest.Config) -> None:
    global _ACTIVE
    config.addinivalue_line("markers", "requirement(id, title=None): the certified requirement a test checks")
    run = CertifyRun(config)
    run.previous = _ACTIVE  # a kit test may run certify inside another session
    config.stash[RUN_KEY] = run
    _ACTIVE = run


def pytest_unconfigure(config: pytest.Config) -> None:
    global _ACTIVE
    run = config.stash.get(RUN_KEY, None)
    if run is not None and _ACTIVE is run:
        _ACTIVE = run.previous


def pytest_report_header(config: pytest.Config) -> str:
    run = config.stash[RUN_KEY]
    return (f"crucible: sut={run.sut_option} profile={run.profile['name']} seed={run.seed} "
            f"durability={run.durability_policy} (reproduce with --seed {run.seed})")


def pytest_itemcollected(item: pytest.Item) -> None:
    marker = item.get_closest_marker("requirement")
    rid = str(marker.args[0]) if marker is not None and marker.args else None
    title = marker.kwargs.get("title") if marker is not None else None
    if not title:
        doc = getattr(getattr(item, "obj", None), "__doc__", None)
        title = doc.strip().splitlines()[0] if doc and doc.strip() else item.name
    run = item.config.stash[RUN_KEY]
    run._meta[item.nodeid] = (rid, str(title), suite_of(item.nodeid))
    item.user_properties.extend(junit_properties(rid, run.seed, run.sut_option, run.profile["name"]))


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if not report.nodeid or report.passed:
        return
    run = _ACTIVE
    if run is None:
        return
    suite = suite_of(report.nodeid)
    if report.skipped:
        reason = skip_reason(report).removeprefix("Skipped: ")
        status = status_from_skip_reason(reason) or UNKNOWN
        summary = reason.split(":", 1)[1].strip() if status in (NA, UNKNOWN) and ":" in reason else reason
        evidence = {"skip_reason": reason}
    else:
        status, summary = UNKNOWN, f"collection error: {failure_message(report)}"
        evidence = {"error": report.longreprtext[-TEXT_MAX:]}
    outcome = TestOutcome(report.nodeid, f"{suite} (module)", f"suite {report.nodeid}", suite,
                          status, summary, evidence)
    run.outcomes.append(outcome)
    run.config.hook.pytest_crucible_outcome(outcome=outcome)


def pytest_runtest_logstart(nodeid: str) -> None:
    if _ACTIVE is not None:
        _ACTIVE.current_nodeid = nodeid


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if _ACTIVE is not None:
        _ACTIVE._reports.setdefault(report.nodeid, {})[report.when] = report


def pytest_runtest_logfinish(nodeid: str) -> None:
    run = _ACTIVE
    if run is None:
        return
    run.current_nodeid = None
    outcome = run.finish_test(nodeid)
    if outcome is not None:
        run.config.hook.pytest_crucible_outcome(outcome=outcome)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    run = session.config.stash[RUN_KEY]
    for nodeid in list(run._reports):  # a test interrupted before its logfinish
        run.finish_test(nodeid)
    xml_path = getattr(session.config.option, "xmlpath", None)
    if xml_path and os.path.exists(xml_path):  # written by pytest's junitxml before this hook
        mark_unknown_as_error(xml_path)
    run_dir = run.ensure_run_dir()
    if run_dir is None or run.results_dir is None:
        return
    run.report = write_run(
        run_dir, run_id=run.run_id, started=run.started, seed=run.seed,
        profile={"name": run.profile["name"], "path": str(run.profile_path), "settings": run.profile},
        sut=run.sut, durability_policy=run.durability_policy, outcomes=run.outcomes,
        ops=run.history.ops, samples=run.samples, hardware=run.hardware,
        hardware_target=run.hardware_target(), extra_artefacts=run.extra_artefacts,
        pytest_exit_code=int(exitstatus), pytest_args=[str(a) for a in session.config.invocation_params.args])
    try:
        point_latest(run.results_dir, run_dir)
    except OSError as exc:
        print(f"crucible: could not point {run.results_dir / 'latest'} at {run_dir}: {exc}", file=sys.stderr)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int) -> None:
    run = terminalreporter.config.stash[RUN_KEY]
    rows = requirement_rows(run.outcomes)
    if not rows:
        return
    tr = terminalreporter
    tr.section("crucible verdicts")
    for row in rows:
        tr.write_line(f"{row['status'].upper():8} {row['id']}: {row['summary']}")
    status, summary = overall(rows, int(exitstatus))
    tr.write_line(f"overall: {status.upper()} - {summary} (seed {run.seed})")
    if run.report is not None and run.run_dir is not None:
        tr.write_line(f"report: {run.run_dir / 'report.html'}")


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def certify_run(pytestconfig: pytest.Config) -> CertifyRun:
    return pytestconfig.stash[RUN_KEY]


@pytest.fixture(scope="session")
def sut_name(certify_run: CertifyRun) -> str:
    """The ``--sut`` value as given: ``reference`` or a descriptor path."""
    return certify_run.sut_option


@pytest.fixture(scope="session")
def seed(certify_run: CertifyRun) -> int:
    return certify_run.seed


@pytest.fixture(scope="session")
def profile(certify_run: CertifyRun) -> dict[str, Any]:
    return certify_run.profile


@pytest.fixture(scope="session")
def history(certify_run: CertifyRun) -> History:
    return certify_run.history


@pytest.fixture(scope="session")
def hardware(certify_run: CertifyRun) -> dict[str, Any]:
    """This machine (``hardware.json``) plus ``match``: how it compares with the profile's target."""
    return {**certify_run.hardware, "match": certify_run.hardware_match()}


@pytest.fixture
def verdict(request: pytest.FixtureRequest, certify_run: CertifyRun) -> Callable[[Verdict], Verdict]:
    """``verdict(v)``: record ``v`` as this test's evidence, then pass / fail / skip per its status."""
    nodeid = request.node.nodeid

    def _require(v: Verdict) -> Verdict:
        certify_run.note_verdict(nodeid, v)
        return enforce(v)

    return _require
