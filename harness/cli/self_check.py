"""``crucible self-check``: how many of the reference's broken variants the profile catches, and false alarms.

A certificate is worth the bugs it catches. This command runs the whole
profile (``run_certify``, the code path of ``crucible certify``) against the
reference:

- ``--clean-seeds K`` times clean, with seeds N, N+1, ...: any requirement
  neither pass nor n/a is a false alarm (named with its seed);
- once per selected broken variant (``harness.detection``; switched on
  through ``CRUCIBLE_SUT_FAULTS``, which the suites pass to the reference):
  the variant is caught when the requirement its row names FAILS.

It writes ``self-check.json`` and ``self-check.md`` (the table, ``caught X
of Y``, ``N false alarms in K runs``) to the results directory, with each
run's own results beside them (``clean-s<seed>/``, ``<variant>/``, each
with its console log), and prints the table. One line per finished run
shows its elapsed time: a run of certify-quick takes about 70 s.

Exit code: 0 every variant caught and no false alarm, 1 otherwise, 64 a
usage error (unknown variant or profile, nothing to run); nothing runs
then. Reference only: the other SUTs have no broken variants, so there is
no ``--sut``. ``-k`` narrows every run to some suite tests (for kit
development: the totals then say little about the profile).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

FAULTS_ENV = "CRUCIBLE_SUT_FAULTS"  #: the suites' switch for the reference's broken variants (suites/_support.py)
ALL, NONE = "all", "none"


def parse_variants(spec: str) -> list[str]:
    """``all``, ``none`` or comma-separated names -> the variant names (``UnknownVariant`` for a bad one)."""
    from harness.detection import BY_VARIANT, select

    if spec == ALL:
        return list(BY_VARIANT)
    if spec == NONE:
        return []
    return [d.variant for d in select(n.strip() for n in spec.split(",") if n.strip())]


@contextlib.contextmanager
def _faults(variant: str) -> Iterator[None]:
    """``CRUCIBLE_SUT_FAULTS`` set to ``variant`` (cleared for the clean reference) for one run."""
    before = os.environ.get(FAULTS_ENV)
    os.environ[FAULTS_ENV] = variant
    try:
        yield
    finally:
        if before is None:
            del os.environ[FAULTS_ENV]
        else:
            os.environ[FAULTS_ENV] = before


def _one_run(out_dir: Path, label: str, variant: str, seed: int, profile: str, keyword: str | None) -> Any:
    """One certification through ``run_certify``, its console kept in ``<label>/console.log``."""
    from rich.console import Console

    from harness.cli.certify import run_certify
    from harness.detection import RunResult
    from harness.report import load

    results = out_dir / label
    results.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(results / "console.log", "w") as log, _faults(variant):
        run_certify(profile=profile, seed=seed, results=results, keyword=keyword,
                    console=Console(file=log, width=120))
    seconds = time.monotonic() - start
    run_dir = (results / "latest").resolve()
    return RunResult.from_report(load(run_dir / "report.json"), variant, seconds, str(run_dir))


def run_self_check(*, profile: str | None = None, seed: int | None = None, variants: str = ALL,
                   clean_seeds: int = 1, results_dir: str | Path | None = None, keyword: str | None = None,
                   out: TextIO = sys.stdout) -> int:
    """Run the self-check; return its exit code (see the module docstring)."""
    from harness.cli.certify_run import DEFAULT_PROFILE, SEED_RANGE
    from harness.detection import UnknownVariant, render, summarize
    from harness.profiles import ProfileError, load_profile
    from harness.report import new_run_id

    profile = profile or DEFAULT_PROFILE
    try:
        names = parse_variants(variants)
        if clean_seeds < 0:
            raise ValueError(f"--clean-seeds {clean_seeds}: must be 0 or more")
        if not names and not clean_seeds:
            raise ValueError("nothing to run: no variant and --clean-seeds 0")
        load_profile(profile)
    except (UnknownVariant, ProfileError, ValueError) as exc:  # one line, before anything runs
        print(f"crucible self-check: {exc}", file=sys.stderr)
        return os.EX_USAGE
    seed = seed if seed is not None else random.SystemRandom().randrange(SEED_RANGE)
    out_dir = Path(results_dir) if results_dir else Path("results") / f"self-check-{new_run_id(seed)}"
    total = clean_seeds + len(names)
    print(f"crucible self-check: profile {profile} · seed {seed} · {clean_seeds} clean run(s), "
          f"{len(names)} variant(s) · {total} runs (certify-quick: about 70 s each) · {out_dir}",
          file=out, flush=True)
    plan = [(f"clean-s{seed + i}", "", seed + i) for i in range(clean_seeds)] + [(n, n, seed) for n in names]
    clean, broken = [], []
    for i, (label, variant, run_seed) in enumerate(plan, 1):
        run = _one_run(out_dir, label, variant, run_seed, profile, keyword)
        (broken if variant else clean).append(run)
        print(f"[{i}/{total}] {label}: {_outcome(run)} ({run.seconds:.0f} s)", file=out, flush=True)
    summary = summarize(clean, broken)
    summary.update(profile=profile, seed=seed, keyword=keyword)
    table = render(summary)
    (out_dir / "self-check.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out_dir / "self-check.md").write_text(f"# Crucible self-check: profile {profile}, seed {seed}\n\n{table}")
    print(f"\n{table}\nwritten: {out_dir / 'self-check.json'}, {out_dir / 'self-check.md'} · "
          f"exit code {summary['exit_code']}", file=out, flush=True)
    return int(summary["exit_code"])


def _outcome(run: Any) -> str:
    """The progress line's verdict: a variant's expected requirement, or a clean run's alarms."""
    from harness.detection import BY_VARIANT, false_alarms

    if run.variant:
        expected = BY_VARIANT[run.variant].requirement
        status = run.statuses.get(expected, "not run")
        return f"{'caught' if status == 'fail' else 'NOT caught'}: {expected} {status.upper()}"
    alarms = false_alarms(run)
    return ("no false alarm" if not alarms
            else "FALSE ALARM: " + ", ".join(f"{a['requirement']} {a['status'].upper()}" for a in alarms))


def _run(args: argparse.Namespace) -> int:
    return run_self_check(profile=args.profile, seed=args.seed, variants=args.variants,
                          clean_seeds=args.clean_seeds, results_dir=args.results_dir, keyword=args.keyword)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("self-check", help="certify the reference clean and with each broken variant: "
                                          "how many the profile catches, and false alarms",
                       description="Run the whole profile against the reference K times clean (false "
                                   "alarms) and once per test-only broken variant (caught when its named "
                                   "requirement fails); write self-check.json and self-check.md "
                                   "(docs/self-check.md). Exit code: 0 all caught and no false alarm, "
                                   "1 otherwise, 64 usage error.")
    p.add_argument("--profile", help="certify-quick (default), certify-full, or a profile YAML path")
    p.add_argument("--seed", type=int, default=None,
                   help="seed N: clean runs use N, N+1, ...; variant runs use N (default: random, printed)")
    p.add_argument("--variants", default=ALL, metavar="A,B|all|none",
                   help="broken variants to run (default: all)")
    p.add_argument("--clean-seeds", type=int, default=1, metavar="K",
                   help="clean runs of the reference, seeds N..N+K-1 (default: 1)")
    p.add_argument("--results", dest="results_dir", metavar="D",
                   help="where to write (default: results/self-check-<run-id>)")
    p.add_argument("-k", dest="keyword", metavar="EXPR",
                   help="only suite tests matching this pytest -k expression (for kit development)")
    p.set_defaults(func=_run)
