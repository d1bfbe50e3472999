"""Matching-rule conformance: did every account see exactly the events its scenario's rule gives?

The input is one result per (scenario, door): the rule it cites
(docs/matching-rules.md), the events each account must see, in order, and
the events it saw (``normalize``: the client-visible fields of replay-format
output dicts; order refs and match ids are the SUT's to number), or the
reason it stayed ``unknown`` (a request that got no answer).

- **fail**: some account's events differ from the rule's; the evidence names
  the rule, the door, the account, where the lists part, and both lists;
- **unknown**: no fail, but a scenario is unknown, or a rule has no judged
  scenario through some door that ran (its coverage is short, named);
- **pass**: every scenario of every rule, through every door, matched.

``evidence["per_rule"]`` is the per-rule table: scenarios passed, failed and
unknown per door.

``check_dense_workload`` judges the dense randomized runs the same way, with
the naive model's events as the expected ones and the situations the run met
(where a correct and a broken order-type rule differ) as its coverage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .verdict import Verdict, first

REQUIREMENT = "matching.rule_conformance"

#: output type -> the fields a client sees and a rule decides, after type and token
_FIELDS = {"accepted": ("side", "qty", "price"), "executed": ("qty", "price", "liquidity"),
           "canceled": ("qty", "reason"), "replaced": ("old_token", "qty", "price"),
           "rejected": ("reason",)}


def normalize(output: Mapping[str, Any], prefix: str = "") -> list:
    """``[type, token, fields...]`` of one output dict; ``prefix`` is cut from its tokens."""
    kind = output.get("type")

    def short(token: Any) -> Any:
        return token[len(prefix):] if isinstance(token, str) and token.startswith(prefix) else token

    fields = _FIELDS.get(kind, ())
    return [kind, short(output.get("token")),
            *(short(output.get(f)) if f == "old_token" else output.get(f) for f in fields)]


def parting(expected: Sequence[list], seen: Sequence[list]) -> int | None:
    """The first index where the two event lists differ (None: equal)."""
    for i, (e, s) in enumerate(zip(expected, seen)):
        if list(e) != list(s):
            return i
    return None if len(expected) == len(seen) else min(len(expected), len(seen))


def _mismatches(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    expected, seen = result["expected"], result.get("seen") or {}
    out = []
    for account in sorted(set(expected) | set(seen)):
        want, got = expected.get(account, []), seen.get(account, [])
        at = parting(want, got)
        if at is not None:
            out.append({"rule": result["rule"], "title": result["title"], "door": result["door"],
                        "account": account, "at": at, "expected": [list(e) for e in want],
                        "seen": [list(s) for s in got]})
    return out


def check_rule_conformance(results: Iterable[Mapping[str, Any]], rules: Sequence[str],
                           requirement: str = REQUIREMENT) -> Verdict:
    """Judge the scenario results (module doc); ``rules`` are the rules that must be covered."""
    results = list(results)
    doors = sorted({r["door"] for r in results})
    table = {(rule, door): {"pass": 0, "fail": 0, "unknown": 0} for rule in rules for door in doors}
    failures, unknowns = [], []
    for r in results:
        cell = table.setdefault((r["rule"], r["door"]), {"pass": 0, "fail": 0, "unknown": 0})
        if r.get("unknown"):
            cell["unknown"] += 1
            unknowns.append(f"{r['rule']} {r['door']}: {r['title']}: {r['unknown']}")
            continue
        bad = _mismatches(r)
        cell["fail" if bad else "pass"] += 1
        failures += bad
    coverage = [{"rule": rule, "door": door, **cell} for (rule, door), cell in sorted(
        table.items(), key=lambda kv: (int(kv[0][0][1:]) if kv[0][0][1:].isdigit() else 0, kv[0]))]
    evidence: dict[str, Any] = {"doors": doors, "scenarios": len(results), "per_rule": coverage,
                                "failures": first(failures), "unknown": first(unknowns)}
    if failures:
        where = sorted({f"{f['rule']} ({f['door']})" for f in failures})
        f0 = failures[0]
        return Verdict.failed(requirement, (
            f"{len(failures)} account streams break the matching rules: {', '.join(where)}; "
            f"first: {f0['rule']} through {f0['door']}, {f0['title']}: account {f0['account']} "
            f"saw {f0['seen'][f0['at']:f0['at'] + 2]} at event {f0['at'] + 1} where the rule "
            f"gives {f0['expected'][f0['at']:f0['at'] + 2]}"), evidence)
    if not results:
        return Verdict.unknown(requirement, "no scenario ran through any door", evidence)
    short = [f"{c['rule']} ({c['door']})" for c in coverage if not c["pass"]]
    if unknowns or short:
        parts = [f"{len(unknowns)} scenarios without an answer"] if unknowns else []
        if short:
            parts.append(f"rules with no judged scenario: {', '.join(short)}")
        return Verdict.unknown(requirement, "; ".join(parts), evidence)
    return Verdict.passed(requirement, (
        f"{len(results)} scenarios over {len(rules)} rules through {', '.join(doors)}: every "
        "account saw exactly the events the rules give"), evidence)


DENSE = "matching.dense_workload"


def check_dense_workload(runs: Iterable[Mapping[str, Any]], minimums: Mapping[str, int],
                         requirement: str = DENSE) -> Verdict:
    """Judge the dense randomized runs, one per door, against the model's events.

    Each run: ``door``, ``expected`` and ``seen`` (account -> events, as
    above), ``situations`` (name -> count, from the model) and ``unknown``
    (why it has no verdict, or None); a failing run also ``reproduction``
    (the shrunk requests, as text). **fail** when some account's events
    differ from the model's; **unknown** when a run got no answer to a request,
    or saw fewer of a situation than ``minimums`` asks (the missing counts
    named), or none ran; else **pass**.
    """
    runs = list(runs)
    evidence: dict[str, Any] = {"runs": [
        {k: r.get(k) for k in ("door", "requests", "situations", "unknown", "reproduction")}
        for r in runs]}
    failures = [dict(m, door=r["door"], reproduction=r.get("reproduction") or [])
                for r in runs if not r.get("unknown")
                for m in _mismatches({"rule": "model", "title": "dense", **r})]
    evidence["failures"] = first(failures)
    if failures:
        f0 = failures[0]
        repro = "; ".join(f0["reproduction"])
        return Verdict.failed(requirement, (
            f"the SUT's events differ from the model's through "
            f"{', '.join(sorted({f['door'] for f in failures}))}: account {f0['account']} saw "
            f"{f0['seen'][f0['at']:f0['at'] + 2]} at event {f0['at'] + 1} where the model gives "
            f"{f0['expected'][f0['at']:f0['at'] + 2]}"
            + (f"; reproduction ({len(f0['reproduction'])} requests): {repro}" if repro else "")),
            evidence)
    if not runs:
        return Verdict.unknown(requirement, "no dense run through any door", evidence)
    problems = [f"{r['door']}: {r['unknown']}" for r in runs if r.get("unknown")]
    for r in runs:
        short = {s: r["situations"].get(s, 0) for s, n in minimums.items()
                 if r["situations"].get(s, 0) < n}
        if short:
            problems.append(f"{r['door']}: too few situations where the rules differ: " + ", ".join(
                f"{s} {got} of {minimums[s]}" for s, got in short.items()))
    if problems:
        return Verdict.unknown(requirement, "; ".join(problems), evidence)
    return Verdict.passed(requirement, (
        f"{sum(r['requests'] for r in runs)} dense requests through "
        f"{', '.join(r['door'] for r in runs)}: every account's events agree with the model, "
        "fill for fill"), evidence)
