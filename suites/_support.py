"""Shared helpers for the conformance suites: the SUT, faults and verdicts.

The suites are Jepsen-shaped: a *workload* (``_load.Load``: seeded
``OrderFlow`` requests through the HTTP door, each recorded in the run's
``History`` as invoke then ok / fail / info), a *nemesis* (``fault``: a
window around a kill, a pause, relay rates, recorded as a nemesis op), and
*artefacts* the checkers judge (``_evidence``: ``wal_records``,
``sequenced_messages``, ``engine_digests``, ``published_outputs``). The bare
door clients for bad input are in ``_doors``. Everything here gathers
evidence; nothing judges it.

One SUT per module (``open_sut`` in a module-scoped fixture) keeps the quick
certification short: a module restarts a component only when its fault
needs it, and starts a second SUT only for a different build (a bus relay, a
lossy filesystem, another durability policy).

The SUT comes from ``harness.sut.load_sut`` and is reached through its
``Sut`` interface alone: a capability it does not offer makes the
requirement N/A.

Detection power: ``CRUCIBLE_SUT_FAULTS`` (comma-separated) switches on the
reference implementation's test-only broken variants (docs/config.md
``faults:``), passed to the reference adapter as its ``faults`` option.
Another SUT ignores it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.checkers.verdict import Verdict, enforce
from harness.history import NEMESIS, History
from harness.sut import load_sut
from harness.sut.base import NotSupported, Sut, SutError

FAULTS_ENV = "CRUCIBLE_SUT_FAULTS"
SETTLE_TIMEOUT_S = 15.0

# ------------------------------------------------------------------ the SUT


def sut_faults() -> tuple[str, ...]:
    """The test-only fault flags asked for through ``CRUCIBLE_SUT_FAULTS``."""
    return tuple(f.strip() for f in os.environ.get(FAULTS_ENV, "").split(",") if f.strip())


def na(reason: str) -> None:
    """Skip as not applicable (the report's ``N/A``)."""
    pytest.skip(f"N/A: {reason}")


def unknown(reason: str) -> None:
    """Skip as UNKNOWN: not enough evidence, never a pass."""
    pytest.skip(f"UNKNOWN: {reason}")


def require_features(sut: Sut, *features: str) -> None:
    """``N/A`` naming the first feature the SUT does not offer."""
    for f in features:
        if not sut.offers(f):
            na(f"{sut.name} does not offer {f!r}")


def _is_reference(sut_name: str | None) -> bool:
    return sut_name in ("reference", "", None)


def _load(sut_name: str | None, run_dir: Path, seed: int, options: dict[str, Any]) -> Sut:
    if _is_reference(sut_name):
        faults = sut_faults()
        if faults:
            options = {**options, "faults": faults}
        return load_sut("reference", run_dir, seed, **options)
    if options:  # reference-only knobs: an external SUT is built as described instead
        try:
            return load_sut(sut_name, run_dir, seed, **options)
        except (TypeError, NotSupported) as exc:
            wanted = options.get("durability")
            if wanted is not None:  # a policy it does not run: that requirement is N/A
                sut = load_sut(sut_name, run_dir, seed)
                if sut.durability != wanted:
                    na(f"{sut.name} runs durability {sut.durability!r}, not {wanted!r} ({exc})")
                return sut
    return load_sut(sut_name, run_dir, seed)


def start_sut(sut: Sut) -> Sut:
    """Start ``sut``; a SUT that does not start is UNKNOWN with the reason."""
    try:
        sut.start()
    except (SutError, NotSupported) as exc:
        sut.stop()
        reason = " | ".join(line for line in str(exc).splitlines() if line)
        unknown(f"the SUT did not start: {reason[:600]}")
    return sut


@contextlib.contextmanager
def open_sut(sut_name: str, run_dir: Path, seed: int, profile: dict | None = None,
             start: bool = True, **options: Any) -> Iterator[Sut]:
    """Build and start one SUT for a module; stop it afterwards.

    ``options`` are ``load_sut`` options (``bus_relay``, ``durability``): the
    reference takes them all; an external SUT that cannot take one is ``N/A``. The
    profile's durability policy applies unless ``options`` names another.
    A SUT that does not start makes every test that needs it UNKNOWN, with
    the reason (for example a test-only fault a node refuses to run).
    ``start=False`` yields it unstarted (start it with ``start_sut``), for a
    fault that must be in place first (the lossy filesystem).
    """
    if profile and profile.get("durability") and "durability" not in options \
            and _is_reference(sut_name):
        options["durability"] = profile["durability"]
    sut = _load(sut_name, run_dir, seed, options)
    if start:
        start_sut(sut)
    try:
        yield sut
    finally:
        sut.stop()


def component(sut: Sut, role: str) -> str | None:
    names = sut.roles().get(role, [])
    return names[0] if names else None


def engines(sut: Sut) -> list[str]:
    """The engine replicas: primary first."""
    return sut.roles().get("primary", []) + sut.roles().get("secondary", [])


def safe_digest(sut: Sut, name: str | None) -> dict | None:
    if name is None or not sut.offers("digest"):
        return None
    try:
        return sut.digest(name)
    except (NotSupported, OSError, ValueError, KeyError):
        return None


def health_ok(sut: Sut, name: str) -> bool:
    """The component's health answer, else (no health endpoint) whether its digest answers."""
    if not sut.offers("health"):
        return safe_digest(sut, name) is not None
    try:
        return sut.health(name)
    except NotSupported:
        return safe_digest(sut, name) is not None
    except (OSError, ValueError, KeyError):
        return False


def wait_for(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


def sequenced_head(sut: Sut) -> int | None:
    """The highest seq the sequencer has handed out (None when it cannot be asked)."""
    d = safe_digest(sut, component(sut, "sequencer"))
    return None if d is None or "next_seq" not in d else int(d["next_seq"]) - 1


def settle(sut: Sut, timeout_s: float = SETTLE_TIMEOUT_S,
           replicas: list[str] | None = None) -> dict[str, Any]:
    """Wait until every engine applied, and the logger made durable, all that was sequenced.

    Returns what was seen (``head``, ``applied`` per engine, ``durable``,
    ``settled``); an unsettled SUT is evidence for the caller, not an error.
    """
    replicas = engines(sut) if replicas is None else replicas
    logger = component(sut, "logger")
    seen: dict[str, Any] = {}

    def done() -> bool:
        head = sequenced_head(sut)
        applied = {e: (safe_digest(sut, e) or {}).get("applied_seq") for e in replicas}
        durable = (safe_digest(sut, logger) or {}).get("durable_seq") if logger else None
        seen.update(head=head, applied=applied, durable=durable)
        if head is None:
            return True  # nothing to wait on: the SUT offers no digests
        return all(a is not None and a >= head for a in applied.values()) and (
            durable is None or durable >= head)

    seen["settled"] = wait_for(done, timeout_s, 0.05)
    return seen


# ------------------------------------------------------------------ faults


@contextlib.contextmanager
def fault(history: History, name: str, **value: Any) -> Iterator[dict]:
    """A nemesis window in the history: invoke at entry, ok (or info on error) at exit."""
    inv = history.invoke(NEMESIS, "fault", {"name": name, **value})
    result: dict[str, Any] = {"name": name, **value}
    try:
        yield result
    except BaseException as exc:
        history.complete(inv, "info", {**result, "error": f"{type(exc).__name__}: {exc}"})
        raise
    history.complete(inv, "ok", result)


def sub_history(history: History, since: int) -> list:
    """Ops recorded from index ``since`` on (one trial of a module's shared history)."""
    return history.ops[since:]


def fold(verdicts: list[Verdict], requirement: str) -> Verdict:
    """``combine`` the parts; a pass keeps the parts' own summaries (they carry the counts)."""
    from harness.checkers import combine

    v = combine(verdicts, requirement=requirement)
    if v.status == "pass":
        counted = [p.summary for p in verdicts if p.status == "pass"]
        v = Verdict.passed(requirement, "; ".join(counted), v.evidence)
    return v


def fold_trials(verdicts: list[Verdict], requirement: str) -> Verdict:
    """``fold`` the trials' verdicts; each trial's evidence, status and summary under ``trials``."""
    v = fold(verdicts, requirement)
    v.evidence["trials"] = [p.evidence | {"status": p.status, "summary": p.summary}
                            for p in verdicts]
    return v


def trials_seen(verdict: Verdict, key: str) -> dict[str, int]:
    """Coverage counts of a ``fold_trials`` verdict: how many trials, and the least ``key`` any showed.

    The least, not the sum: every trial must have shown enough on its own.
    """
    trials = verdict.evidence.get("trials", [])
    return {"trials": len(trials), key: min((int(t.get(key) or 0) for t in trials), default=0)}


def judge(verdict: Verdict) -> Verdict:
    """Record the verdict as the running test's evidence, then pass / fail / skip it."""
    try:
        from harness.cli.certify_plugin import require
    except ImportError:  # the suites without the plugin: enforce only
        return enforce(verdict)
    return require(verdict)
