"""The state of one certification session: profiles, the SUT's description, outcomes.

``CertifyRun`` is what the pytest plugin (``harness.cli.certify_plugin``) keeps
for a session and what suites reach through the ``certify_run`` fixture:
the seed, the profile, the SUT's description, the session's history (an
``ObservedHistory`` that announces nemesis faults as they start and end),
latency samples, extra artefacts, and the ``TestOutcome`` of every finished
test.

``outcome_of`` turns one test's pytest reports and recorded verdicts into its
(status, summary, evidence): passed -> pass; failed in the call -> fail; a
skip whose reason starts ``UNKNOWN:`` / ``N/A:`` -> unknown / n/a; any other
skip, an xfail, or an error in setup or teardown -> unknown (nothing was
shown either way). Summary and evidence come from the verdicts the test
recorded when they agree with that status, else from the failure or skip.

It owns the defaults every certification entry point shares (``DEFAULT_SUT``,
``DEFAULT_PROFILE``, ``SEED_RANGE``): the command (``certify``) and the plugin
(``certify_plugin``) import them from here, never from each other. Profiles
are found and checked by ``harness.profiles``.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import hardware as hw_mod
from harness.checkers.verdict import FAIL, UNKNOWN, Verdict, combine, status_from_skip_reason
from harness.coverage import NEEDS, merge_rows
from harness.history import NEMESIS, History, Op
from harness.profiles import ProfileError, load_profile
from harness.report import make_run_dir, new_run_id, utc_now
from harness.report.schema import PASS, TestOutcome

DEFAULT_SUT = "reference"
DEFAULT_PROFILE = "certify-quick"
SEED_RANGE = 1_000_000  #: random seeds are short: they go into run ids and command lines
TEXT_MAX = 4000  #: failure text kept in evidence
SUMMARY_MAX = 500


# ------------------------------------------------------------------ the SUT


def describe_sut(value: str) -> dict[str, Any]:
    """``{"name", "kind", "descriptor"}`` for a ``--sut`` value (the adapter may add to it)."""
    if value == DEFAULT_SUT:
        return {"name": DEFAULT_SUT, "kind": "reference", "descriptor": None}
    p = Path(value)
    if p.suffix in (".yaml", ".yml") or p.is_file():
        name = p.stem
        try:
            doc = yaml.safe_load(p.read_text())
            name = str(doc.get("name", name)) if isinstance(doc, dict) else name
        except (OSError, yaml.YAMLError):
            pass
        return {"name": name, "kind": "external", "descriptor": str(p.resolve())}
    return {"name": value, "kind": "named", "descriptor": None}


# ------------------------------------------------------------------ the run


class ObservedHistory(History):
    """A History that calls ``on_fault(name, active)`` when a nemesis op starts or ends."""

    def __init__(self, on_fault: Callable[[str, bool], None], clock: Callable[[], int] = time.monotonic_ns):
        super().__init__(clock)
        self._on_fault = on_fault

    def _notify(self, op: Op, active: bool) -> None:
        try:
            self._on_fault(str(op.value.get("name", op.f)), active)
        except Exception:  # noqa: BLE001 - a progress display must never break a test
            pass

    def invoke(self, process: int | str, f: str, value: dict[str, Any]) -> Op:
        op = super().invoke(process, f, value)
        if process == NEMESIS:
            self._notify(op, True)
        return op

    def complete(self, invoked: Op, type_: str, value: dict[str, Any] | None = None) -> Op:
        op = super().complete(invoked, type_, value)
        if invoked.process == NEMESIS:
            self._notify(invoked, False)
        return op


class CertifyRun:
    """Everything one session knows about the certification run (fixture ``certify_run``)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.sut_option: str = config.getoption("crucible_sut")
        self.sut: dict[str, Any] = describe_sut(self.sut_option)
        seed = config.getoption("crucible_seed")
        self.seed: int = seed if seed is not None else random.SystemRandom().randrange(SEED_RANGE)
        profile_arg = config.getoption("crucible_profile")
        try:
            self.profile, self.profile_path = load_profile(profile_arg)
        except ProfileError as exc:
            raise pytest.UsageError(str(exc)) from exc
        self.durability_policy: str | None = self.profile.get("durability")
        results = config.getoption("crucible_results_dir")
        self.results_dir: Path | None = Path(results) if results else None
        self.run_id: str = config.getoption("crucible_run_id") or new_run_id(self.seed)
        self.run_dir: Path | None = None
        self.started = utc_now()
        self.history = ObservedHistory(self._on_fault)
        self.samples: dict[str, list[tuple[int, int]]] = {}
        self.outcomes: list[TestOutcome] = []
        self.extra_artefacts: dict[str, str] = {}
        self.report: dict[str, Any] | None = None
        self.current_nodeid: str | None = None
        self._hardware: dict[str, Any] | None = None
        self._verdicts: dict[str, list[Verdict]] = {}
        self._reports: dict[str, dict[str, pytest.TestReport]] = {}
        self._meta: dict[str, tuple[str | None, str, str]] = {}
        self._scratch: Path | None = None
        self.previous: CertifyRun | None = None

    # -- for suites
    def record_latency(self, stage: str, time_ns: int, latency_ns: int) -> None:
        """One sample: ``time_ns`` the intended start (monotonic, the history's clock)."""
        self.samples.setdefault(stage, []).append((int(time_ns), int(latency_ns)))

    def record_latencies(self, stage: str, pts: Iterable[tuple[int, int]]) -> None:
        self.samples.setdefault(stage, []).extend((int(t), int(lat)) for t, lat in pts)

    def set_durability(self, policy: str) -> None:
        """The policy actually under test, when the SUT says otherwise than the profile."""
        self.durability_policy = policy

    def update_sut(self, **fields: Any) -> None:
        """Add to the SUT's description in the report (the adapter: version, components...)."""
        self.sut.update(fields)

    def artefact_path(self, name: str) -> Path:
        """A path for an artefact file inside the run directory (a scratch dir without one)."""
        base = self.ensure_run_dir()
        if base is None:
            self._scratch = self._scratch or Path(tempfile.mkdtemp(prefix="crucible-artefacts-"))
            base = self._scratch
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        self.extra_artefacts[name] = str(path)
        return path

    def add_artefact(self, label: str, path: str | Path) -> None:
        self.extra_artefacts[label] = str(path)

    @property
    def hardware(self) -> dict[str, Any]:
        if self._hardware is None:
            self._hardware = hw_mod.collect()
        return self._hardware

    def hardware_target(self) -> dict[str, Any] | None:
        name = self.profile.get("hardware_profile")
        if not name:
            return None
        try:
            return load_profile(str(name), "hardware")[0]
        except ProfileError as exc:  # the profile was checked at start; the file changed since
            return {"name": str(name), "target": {}, "error": str(exc)}

    def hardware_match(self) -> dict[str, Any]:
        target = self.hardware_target()
        if target is None:
            return {}
        if "error" in target:
            return {"profile": target["name"], "matched": False, "reasons": [target["error"]]}
        matched, reasons = hw_mod.matches(target, self.hardware)
        return {"profile": target.get("name"), "matched": matched, "reasons": reasons}

    def ensure_run_dir(self) -> Path | None:
        if self.results_dir is None:
            return None
        if self.run_dir is None:
            wanted = self.results_dir / self.run_id
            self.run_dir = wanted if wanted.is_dir() else make_run_dir(self.results_dir, self.run_id)
            self.run_id = self.run_dir.name
        return self.run_dir

    # -- plumbing
    def _on_fault(self, name: str, active: bool) -> None:
        self.config.hook.pytest_crucible_fault(name=name, active=active)

    def note_verdict(self, nodeid: str | None, verdict: Verdict) -> None:
        if nodeid is not None:
            self._verdicts.setdefault(nodeid, []).append(verdict)

    def finish_test(self, nodeid: str) -> TestOutcome | None:
        reports = self._reports.pop(nodeid, {})
        if not reports:
            return None
        rid, title, suite = self._meta.get(nodeid, (None, nodeid, suite_of(nodeid)))
        verdicts = self._verdicts.pop(nodeid, [])
        status, summary, evidence = outcome_of(reports, verdicts)
        if rid is None:
            names = {v.requirement for v in verdicts}
            rid = names.pop() if len(names) == 1 else f"{suite}::{nodeid.rpartition('::')[2]}"
        coverage = merge_rows([v.evidence["coverage"] for v in verdicts if "coverage" in v.evidence])
        if status == PASS and rid in NEEDS and not coverage:
            status, summary = UNKNOWN, (f"passed without counting its evidence: {rid} needs "
                                        f"{', '.join(n.situation for n in NEEDS[rid])} (harness/coverage.py)")
        duration = sum(r.duration for r in reports.values())
        outcome = TestOutcome(nodeid, rid, title, suite, status, summary, evidence, duration, coverage)
        self.outcomes.append(outcome)
        return outcome


def suite_of(nodeid: str) -> str:
    return Path(nodeid.split("::")[0]).stem.removeprefix("test_")


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr or "")


def failure_message(report: pytest.TestReport | pytest.CollectReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr or "failed")
    text = " ".join(line.strip() for line in text.splitlines() if line.strip()) or "failed"
    return text if len(text) <= SUMMARY_MAX else text[:SUMMARY_MAX] + "..."


def outcome_of(reports: dict[str, Any], verdicts: list[Verdict]) -> tuple[str, str, dict[str, Any]]:
    """(status, summary, evidence) of one test from its phase reports and recorded verdicts."""
    setup, call, teardown = (reports.get(p) for p in ("setup", "call", "teardown"))
    evidence: dict[str, Any] = {}
    folded = None
    if verdicts:
        folded = verdicts[0] if len(verdicts) == 1 else combine(verdicts)
        evidence = dict(folded.evidence) if len(verdicts) == 1 else {"verdicts": [v.to_dict() for v in verdicts]}
    skipped = next((r for r in (setup, call, teardown) if r is not None and r.skipped), None)
    if skipped is not None:
        reason = skip_reason(skipped).removeprefix("Skipped: ")
        if hasattr(skipped, "wasxfail"):
            status, summary = UNKNOWN, f"expected failure (xfail): {skipped.wasxfail or reason}"
        else:
            status = status_from_skip_reason(reason) or UNKNOWN
            if status == UNKNOWN and not reason.startswith("UNKNOWN:"):
                summary = f"skipped: {reason}"
            else:
                summary = reason.split(":", 1)[1].strip()
            if not verdicts:
                evidence = {"skip_reason": reason}
    elif setup is not None and setup.failed:
        status, summary = UNKNOWN, f"error in setup: {failure_message(setup)}"
        evidence = {**evidence, "error": setup.longreprtext[-TEXT_MAX:]}
    elif call is not None and call.failed:
        status, summary = FAIL, failure_message(call)
        if folded is None or folded.status != FAIL:
            evidence = {**evidence, "failure": call.longreprtext[-TEXT_MAX:]}
    elif teardown is not None and teardown.failed:
        status, summary = UNKNOWN, f"error in teardown: {failure_message(teardown)}"
        evidence = {**evidence, "error": teardown.longreprtext[-TEXT_MAX:]}
    else:
        status, summary = PASS, "passed"
    if folded is not None and folded.status == status:
        summary = folded.summary
    return status, summary, evidence
