"""Tri-state verdicts: what every checker returns and every report shows.

A requirement is ``pass`` (the evidence shows it holds), ``fail`` (the
evidence shows it broken), ``unknown`` (not enough evidence either way: too
few acknowledged orders, no common checkpoint, a missing privilege; never
silently a pass) or ``n/a`` (the SUT does not offer what the requirement is
about). ``evidence`` is plain JSON data: counts, and at most
``MAX_EXAMPLES`` counterexamples of each kind, so a report can show why.

``combine`` folds several verdicts into one: fail beats unknown beats pass;
``n/a`` is ignored unless every part is ``n/a``. ``too_thin`` withholds a pass
for lack of evidence but keeps a fail: a checker judges the problems its
evidence shows before it asks whether that evidence is enough. ``exit_code`` is the
``crucible certify`` exit code (0 all pass or n/a, 1 any fail, 2 none fail but
some unknown). In pytest, ``enforce`` turns a verdict into the issue's
outcome: a pass returns, a fail fails the test, unknown and n/a are skips
whose reasons start ``UNKNOWN:`` and ``N/A:``; ``status_from_skip_reason``
reads such a reason back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PASS, FAIL, UNKNOWN, NA = "pass", "fail", "unknown", "n/a"
STATUSES = (PASS, FAIL, UNKNOWN, NA)
MAX_EXAMPLES = 10  #: counterexamples of one kind kept in evidence
SKIP_PREFIX = {UNKNOWN: "UNKNOWN:", NA: "N/A:"}
_RANK = {PASS: 0, UNKNOWN: 1, FAIL: 2}

__all__ = [
    "FAIL", "MAX_EXAMPLES", "NA", "PASS", "STATUSES", "UNKNOWN", "Verdict",
    "combine", "enforce", "exit_code", "first", "status_from_skip_reason", "too_thin",
]


def first(items: Iterable[Any], n: int = MAX_EXAMPLES) -> list[Any]:
    """The first ``n`` items as a list: the bounded counterexample list of evidence."""
    out = []
    for item in items:
        if len(out) >= n:
            break
        out.append(item)
    return out


@dataclass(frozen=True)
class Verdict:
    requirement: str
    status: str  #: pass | fail | unknown | n/a
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"verdict status must be one of {STATUSES}, got {self.status!r}")

    @classmethod
    def passed(cls, requirement: str, summary: str,
               evidence: Mapping[str, Any] | None = None) -> Verdict:
        return cls(requirement, PASS, summary, dict(evidence or {}))

    @classmethod
    def failed(cls, requirement: str, summary: str,
               evidence: Mapping[str, Any] | None = None) -> Verdict:
        return cls(requirement, FAIL, summary, dict(evidence or {}))

    @classmethod
    def unknown(cls, requirement: str, summary: str,
                evidence: Mapping[str, Any] | None = None) -> Verdict:
        return cls(requirement, UNKNOWN, summary, dict(evidence or {}))

    @classmethod
    def not_applicable(cls, requirement: str, summary: str,
                       evidence: Mapping[str, Any] | None = None) -> Verdict:
        return cls(requirement, NA, summary, dict(evidence or {}))

    @property
    def ok(self) -> bool:
        """True for pass and n/a: nothing stands against the requirement."""
        return self.status in (PASS, NA)

    def to_dict(self) -> dict[str, Any]:
        return {"requirement": self.requirement, "status": self.status,
                "summary": self.summary, "evidence": self.evidence}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        return cls(d["requirement"], d["status"], d["summary"], dict(d.get("evidence", {})))

    def __str__(self) -> str:
        return f"{self.status.upper()} {self.requirement}: {self.summary}"


def combine(verdicts: Iterable[Verdict], requirement: str | None = None) -> Verdict:
    """One verdict for many: fail > unknown > pass; n/a counts only if all are n/a.

    No verdicts at all is UNKNOWN (nothing was checked). The evidence lists
    every part's requirement, status and summary.
    """
    parts = list(verdicts)
    name = requirement or "+".join(dict.fromkeys(v.requirement for v in parts)) or "combined"
    evidence = {"parts": [{"requirement": v.requirement, "status": v.status,
                           "summary": v.summary} for v in parts]}
    if not parts:
        return Verdict.unknown(name, "no checks were run", evidence)
    counted = [v for v in parts if v.status != NA]
    if not counted:
        return Verdict.not_applicable(name, "; ".join(v.summary for v in parts), evidence)
    worst = max(_RANK[v.status] for v in counted)
    status = next(s for s, r in _RANK.items() if r == worst)
    if status == PASS:
        summary = f"all {len(counted)} checks pass"
    else:
        summary = "; ".join(f"{v.requirement}: {v.summary}" for v in counted if v.status == status)
    return Verdict(name, status, summary, evidence)


def too_thin(verdict: Verdict, reason: str) -> Verdict:
    """UNKNOWN for ``reason`` (too little evidence to pass), unless ``verdict`` FAILS or is N/A.

    Problems are judged before thinness: what the evidence shows broken stays
    a FAIL however thin the rest of it is; thinness only withholds a PASS.
    """
    if verdict.status in (FAIL, NA):
        return verdict
    return Verdict.unknown(verdict.requirement, reason, verdict.evidence)


def exit_code(verdicts: Iterable[Verdict]) -> int:
    """0 when every verdict passes (n/a allowed), 1 when any fails, 2 when some are unknown."""
    statuses = {v.status for v in verdicts}
    if FAIL in statuses:
        return 1
    if UNKNOWN in statuses:
        return 2
    return 0


def enforce(verdict: Verdict) -> Verdict:
    """Inside a pytest test: fail on FAIL, skip with ``UNKNOWN:`` / ``N/A:`` reasons."""
    import pytest  # only the suites need it

    if verdict.status == FAIL:
        pytest.fail(str(verdict), pytrace=False)
    if verdict.status in SKIP_PREFIX:
        pytest.skip(f"{SKIP_PREFIX[verdict.status]} {verdict.requirement}: {verdict.summary}")
    return verdict


def status_from_skip_reason(reason: str) -> str | None:
    """``unknown`` / ``n/a`` for a skip reason written by ``enforce`` (pytest may prefix
    ``Skipped: ``), else None (an ordinary skip)."""
    text = reason.removeprefix("Skipped: ").lstrip()
    for status, prefix in SKIP_PREFIX.items():
        if text.startswith(prefix):
            return status
    return None
