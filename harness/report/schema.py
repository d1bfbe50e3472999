"""``report.json``: the versioned, machine-readable result of a certification run.

The pytest plugin turns each finished test into a ``TestOutcome`` (its
requirement, tri-state status, summary and evidence); this module groups the
outcomes by requirement, folds them into the run's verdict and exit code, and
assembles the report. It is pure data in, data out: no pytest, no files
except ``load``/``dump``.

Several tests may check one requirement (trials, parametrized faults): the
requirement's status is their ``combine`` (fail beats unknown beats pass;
n/a only when every test is n/a) and its evidence lists every test.

The run's verdict is the ``combine`` of the requirements, except that a run
that did not finish (pytest interrupted or crashed) cannot pass: it is
unknown at best. No requirement at all is unknown (nothing was checked).
Exit codes: 0 pass (n/a allowed), 1 fail, 2 unknown.

Each row carries its requirement's evidence coverage (``harness.coverage``:
situation, seen, needed; summed over the requirement's tests), empty for a
requirement that declares none.

Versioning: ``schema_version`` is ``MAJOR.MINOR``. A reader accepts any
report with its own major version; minor versions only add fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.checkers.verdict import FAIL, NA, PASS, STATUSES, UNKNOWN, Verdict, combine
from harness.coverage import merge_rows

SCHEMA_VERSION = "1.2"
EXIT_CODES = {PASS: 0, NA: 0, FAIL: 1, UNKNOWN: 2}
PYTEST_COMPLETE = {0: "all tests passed", 1: "some tests failed", 5: "no tests were collected"}
PYTEST_EXIT_NAMES = {2: "interrupted", 3: "internal error", 4: "usage error"}

REQUIRED_KEYS: dict[str, type | tuple[type, ...]] = {
    "schema_version": str, "run_id": str, "started": str, "finished": str,
    "seed": int, "profile": dict, "sut": dict, "durability_policy": (str, type(None)),
    "requirements": list, "totals": dict, "verdict": str, "verdict_summary": str,
    "exit_code": int, "hardware": dict, "artefacts": dict,
}
ROW_KEYS: dict[str, type | tuple[type, ...]] = {
    "id": str, "title": str, "suite": str, "status": str, "summary": str,
    "evidence": dict, "duration_s": (int, float), "tests": list,
}


class ReportSchemaError(ValueError):
    """A report.json that this version of the kit cannot read."""


@dataclass(frozen=True)
class TestOutcome:
    """One test's result, as the plugin saw it."""

    __test__ = False  # not a pytest test class

    nodeid: str
    requirement: str
    title: str
    suite: str
    status: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    coverage: list[dict[str, Any]] = field(default_factory=list)  #: harness.coverage rows

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"outcome status must be one of {STATUSES}, got {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"nodeid": self.nodeid, "status": self.status, "summary": self.summary,
                "evidence": self.evidence, "duration_s": round(self.duration_s, 6)}


def _test_name(nodeid: str) -> str:
    return nodeid.rpartition("::")[2] or nodeid


def requirement_rows(outcomes: Iterable[TestOutcome]) -> list[dict[str, Any]]:
    """One row per requirement, in the order each was first seen."""
    groups: dict[str, list[TestOutcome]] = {}
    for o in outcomes:
        groups.setdefault(o.requirement, []).append(o)
    rows = []
    for rid, tests in groups.items():
        if len(tests) == 1:
            (t,) = tests
            status, summary, evidence = t.status, t.summary, t.evidence
        else:
            folded = combine([Verdict(_test_name(t.nodeid), t.status, t.summary) for t in tests], rid)
            status, evidence = folded.status, {"tests": [t.to_dict() for t in tests]}
            summary = f"all {len(tests)} tests pass" if status == PASS else folded.summary
        rows.append({
            "id": rid, "title": tests[0].title, "suite": tests[0].suite,
            "status": status, "summary": summary, "evidence": evidence,
            "duration_s": round(sum(t.duration_s for t in tests), 6),
            "tests": [t.nodeid for t in tests],
            "coverage": merge_rows([t.coverage for t in tests if t.coverage]),
        })
    return rows


def totals(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts = {s: 0 for s in STATUSES}
    for row in rows:
        counts[row["status"]] += 1
    return {**counts, "total": len(rows)}


def overall(rows: Sequence[Mapping[str, Any]], pytest_exit_code: int = 0) -> tuple[str, str]:
    """The run's (status, summary)."""
    if not rows:
        status, summary = UNKNOWN, "no requirement was checked"
    else:
        t = totals(rows)
        counts = ", ".join(f"{t[s]} {s}" for s in STATUSES if t[s])
        status = combine([Verdict(r["id"], r["status"], r["summary"]) for r in rows]).status
        named = [f"{r['status'].upper()} {r['id']}" for r in rows if r["status"] in (FAIL, UNKNOWN)]
        summary = f"{len(rows)} requirements: {counts}" + (f" ({'; '.join(named)})" if named else "")
    if pytest_exit_code not in PYTEST_COMPLETE:
        why = PYTEST_EXIT_NAMES.get(pytest_exit_code, f"exit code {pytest_exit_code}")
        summary += f"; the run did not complete (pytest: {why})"
        if status in (PASS, NA):
            status = UNKNOWN
    return status, summary


def exit_code_for(status: str) -> int:
    return EXIT_CODES[status]


def build_report(*, run_id: str, started: str, finished: str, seed: int,
                 profile: Mapping[str, Any], sut: Mapping[str, Any], durability_policy: str | None,
                 outcomes: Iterable[TestOutcome], hardware: Mapping[str, Any],
                 hardware_match: Mapping[str, Any] | None = None,
                 artefacts: Mapping[str, str] | None = None,
                 latency: Mapping[str, Any] | None = None,
                 faults: Sequence[Mapping[str, Any]] = (),
                 pytest_exit_code: int = 0, pytest_args: Sequence[str] = (),
                 kit_version: str = "unknown", kit_commit: str | None = None) -> dict[str, Any]:
    rows = requirement_rows(outcomes)
    status, summary = overall(rows, pytest_exit_code)
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "started": started,
        "finished": finished,
        "seed": seed,
        "profile": dict(profile),
        "sut": dict(sut),
        "durability_policy": durability_policy,
        "requirements": rows,
        "totals": totals(rows),
        "verdict": status,
        "verdict_summary": summary,
        "exit_code": exit_code_for(status),
        "hardware": dict(hardware),
        "hardware_match": dict(hardware_match or {}),
        "artefacts": dict(artefacts or {}),
        "latency": dict(latency or {}),
        "faults": [dict(f) for f in faults],
        "pytest": {"exit_code": pytest_exit_code, "args": list(pytest_args)},
        "kit": {"name": "exchange-crucible", "version": kit_version, "commit": kit_commit},
    }


def validate(report: Mapping[str, Any]) -> list[str]:
    """Every way ``report`` breaks this schema version (an empty list: it is valid)."""
    problems = []
    for key, kind in REQUIRED_KEYS.items():
        if key not in report:
            problems.append(f"missing {key}")
        elif not isinstance(report[key], kind):
            problems.append(f"{key} has type {type(report[key]).__name__}")
    if problems:
        return problems
    if report["schema_version"].split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        problems.append(f"schema_version {report['schema_version']} is not {SCHEMA_VERSION.split('.')[0]}.x")
    for i, row in enumerate(report["requirements"]):
        for key, kind in ROW_KEYS.items():
            if not isinstance(row.get(key), kind):
                problems.append(f"requirements[{i}].{key} missing or of the wrong type")
        if row.get("status") not in STATUSES:
            problems.append(f"requirements[{i}].status {row.get('status')!r} is not one of {STATUSES}")
    if not problems and report["totals"] != totals(report["requirements"]):
        problems.append("totals do not match the requirements")
    if report["verdict"] not in STATUSES:
        problems.append(f"verdict {report['verdict']!r} is not one of {STATUSES}")
    elif report["exit_code"] != EXIT_CODES[report["verdict"]]:
        problems.append(f"exit_code {report['exit_code']} does not match verdict {report['verdict']}")
    for name in ("name", "kind"):
        if name not in report["sut"]:
            problems.append(f"sut.{name} missing")
    return problems


def dump(report: Mapping[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(report, indent=2, sort_keys=False, default=str) + "\n")


def load(path: str | Path) -> dict[str, Any]:
    """Read and check a report.json; raise ``ReportSchemaError`` if it is not one this kit reads."""
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportSchemaError(f"{path}: {exc}") from exc
    if not isinstance(report, dict):
        raise ReportSchemaError(f"{path}: not a JSON object")
    problems = validate(report)
    if problems:
        raise ReportSchemaError(f"{path}: " + "; ".join(problems))
    return report
