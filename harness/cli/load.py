"""``crucible load``: one load profile, open loop, against a SUT; the run goes to ``results/<run-id>/``.

It starts the SUT (the reference by default; its logs and WAL go to
``<run>/sut/``), runs the profile with ``harness.loadgen.run_load``, stops the
SUT, judges the profile's latency budgets
(``harness.latency_budget.judge_budget``, next to whether this machine
matched the profile's ``hardware_profile``) and writes the run with
``harness.report.write_run``: ``report.json`` (the budget
verdict is its one requirement, ``latency_budget``, with the evidence),
``report.html``, one ``latency-<stage>.hgrm`` per stage, ``latencies.csv``,
``history.jsonl``, ``hardware.json`` and ``load.json`` (counts, throughput per
second, stage coverage). The reference SUT's WAL (a preallocated 64 MiB
segment) is removed after the run unless ``--keep-sut-data``; its logs stay
in ``<run>/sut/logs``. Nothing is drawn on the terminal while requests are
in flight: the generator's CPU stays its own. A summary table follows.

Exit code: 0 every budget holds, 1 a budget is exceeded, 2 unknown (too few
samples, stage stamps missing, requests unanswered, no budget, or the SUT
did not start: nothing was measured), 64 (``os.EX_USAGE``) no run may start:
no such profile, or a key, shape or door it does not know
(``harness.profiles``), named in one line before the SUT starts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_PROFILE = "steady"
EXIT_NO_RUN = 2  #: the SUT did not start or the run broke off: nothing was measured (UNKNOWN)


def hardware_match(profile: dict[str, Any], hw: dict[str, Any]) -> tuple[dict | None, dict[str, Any]]:
    """(the hardware target profile or None, the match as report.json states it)."""
    from harness import hardware as hw_mod
    from harness.profiles import ProfileError, load_profile

    name = profile.get("hardware_profile")
    if not name:
        return None, {}
    try:
        target = load_profile(str(name), "hardware")[0]
    except ProfileError as exc:  # checked at start: the file changed since
        return None, {"profile": str(name), "matched": False, "reasons": [str(exc)]}
    matched, reasons = hw_mod.matches(target, hw)
    return target, {"profile": target.get("name", str(name)), "matched": matched, "reasons": reasons}


def _summary(console: Any, report: dict[str, Any], load: dict[str, Any], run_dir: Path) -> None:
    from rich.markup import escape
    from rich.table import Table

    from harness.cli.certify import STATUS_STYLE

    table = Table(title=f"Crucible load {report['run_id']} ({load['door']})")
    for col in ("stage", "count", "p50 µs", "p99 µs", "p99.9 µs", "max µs"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for stage, s in (report.get("latency") or {}).get("stages", {}).items():
        table.add_row(stage, str(s["count"]), *(f"{s[k]:.1f}" for k in ("p50_us", "p99_us", "p99.9_us", "max_us")))
    console.print(table)
    c = load["counts"]
    console.print(f"offered {load['offered_per_s']}/s · ok {load['ok_per_s']}/s · sent {c['sent']} of "
                  f"{c['scheduled']} · ok {c['ok']} · fail {c['fail']} (backpressure {c['backpressure']}) · "
                  f"info {c['info']} · stage rows {load['stage_rows']}"
                  + (f" of {load['answered_by_sut']}" if load["answered_by_sut"] is not None else ""),
                  highlight=False)
    for note in load["notes"]:
        console.print(f"[dark_orange]note:[/] {escape(note)}", highlight=False)
    row = report["requirements"][0]
    console.print(f"[{STATUS_STYLE.get(row['status'], '')}]{row['status'].upper()}[/] {escape(row['summary'])}",
                  highlight=False)
    for reason in (report.get("hardware_match") or {}).get("reasons", []):
        console.print(f"[dim]  hardware: {escape(reason)}[/]", highlight=False)
    console.print(f"report: {run_dir / 'report.html'} · exit code {report['exit_code']}", highlight=False)


def record(run_dir: Path, *, seed: int, started: str, profile: dict[str, Any], profile_path: str | Path,
           sut: dict[str, Any], durability: str | None, result: Any, ops: Sequence[Any],
           duration_s: float = 0.0) -> dict[str, Any]:
    """Judge a finished run's budgets and write its directory; return the report dict."""
    from harness import hardware as hw_mod
    from harness.latency_budget import histograms, judge_budget, parse_budgets
    from harness.report import write_run
    from harness.report.schema import TestOutcome

    hw = hw_mod.collect()
    target, match = hardware_match(profile, hw)
    samples = result.samples()
    budgets = profile.get("budgets") or {}
    verdict = judge_budget(histograms(samples), budgets, match, expected=result.expected(),
                           unanswered=result.unanswered)
    load = result.summary()
    (run_dir / "load.json").write_text(json.dumps(load, indent=2, default=str) + "\n")
    keys = ", ".join(c.key for c in parse_budgets(budgets)) or "none"
    outcome = TestOutcome(f"load::{profile['name']}", verdict.requirement, f"latency budget ({keys})",
                          "load", verdict.status, verdict.summary, {**verdict.evidence, "load": load},
                          duration_s)
    return write_run(
        run_dir, run_id=run_dir.name, started=started, seed=seed,
        profile={"name": profile["name"], "path": str(profile_path), "settings": profile},
        sut=sut, durability_policy=durability, outcomes=[outcome], ops=ops, samples=samples,
        hardware=hw, hardware_target=target,
        extra_artefacts={"load": "load.json", "sut_logs": "sut/logs"})


def run_load_cmd(*, profile: str = DEFAULT_PROFILE, sut: str = "reference", door: str | None = None,
                 seed: int | None = None, duration: float | None = None, results: str | Path = "results",
                 keep_sut_data: bool = False, console: Any = None) -> int:
    """Run one load profile; return the exit code (module doc)."""
    from rich.console import Console
    from rich.markup import escape

    from harness.cli.certify import check_sut
    from harness.cli.certify_run import SEED_RANGE, describe_sut
    from harness.history import History
    from harness.loadgen import LoadError, run_load
    from harness.profiles import ProfileError, load_profile
    from harness.report import make_run_dir, new_run_id, point_latest, utc_now
    from harness.schedule import describe
    from harness.sut import SutError, load_sut
    from harness.sut.reference_load import reference_options

    console = console or Console(stderr=True)
    try:
        check_sut(sut)
        prof, prof_path = load_profile(profile, "load")
    except ProfileError as exc:  # the shape and the budgets are checked with the rest
        console.print(f"crucible load: {exc}", markup=False, highlight=False, soft_wrap=True)
        return os.EX_USAGE
    shape = dict(prof["shape"])
    door = door or str(prof.get("door", "ouch"))
    seed = seed if seed is not None else random.SystemRandom().randrange(SEED_RANGE)
    results = Path(results)
    run_dir = make_run_dir(results, new_run_id(seed))
    started, t_start = utc_now(), time.monotonic()
    cap = f", first {duration:g} s" if duration is not None and duration < shape["duration_s"] else ""
    console.print(f"crucible load: profile {prof['name']} ({describe(shape)}{cap}) · door {door} · sut {sut} · "
                  f"seed {seed} (reproduce with --seed {seed}) · run {run_dir}", highlight=False)
    history = History()
    target_sut = None
    try:
        opts = reference_options(prof) if sut == "reference" else {}
        target_sut = load_sut(sut, run_dir / "sut", seed, **opts)
        target_sut.start()
        result = run_load(target_sut, prof, history, seed, door=door, duration_s=duration)
    except (SutError, LoadError, OSError, ValueError) as exc:
        console.print(f"[bold red]crucible load: no run:[/] {escape(str(exc))}", highlight=False)
        return EXIT_NO_RUN
    finally:
        if target_sut is not None:
            target_sut.stop()
            if sut == "reference" and not keep_sut_data:
                _drop_data(target_sut, run_dir / "sut")
    report = record(run_dir, seed=seed, started=started, profile=prof, profile_path=prof_path,
                    sut={**describe_sut(sut), "door": door}, durability=target_sut.durability,
                    result=result, ops=history.ops, duration_s=time.monotonic() - t_start)
    try:
        point_latest(results, run_dir)
    except OSError as exc:
        console.print(f"could not point {results / 'latest'} at the run: {exc}", highlight=False)
    _summary(console, report, json.loads((run_dir / "load.json").read_text()), run_dir)
    return int(report["exit_code"])


def _drop_data(sut: Any, root: Path) -> None:
    """Remove the SUT's data directories that lie inside ``root`` (never anything else)."""
    import shutil

    for path in sut.data_dirs().values():
        path = Path(path).resolve()
        if path.is_dir() and path.is_relative_to(root.resolve()):
            shutil.rmtree(path, ignore_errors=True)


def _run(args: argparse.Namespace) -> int:
    return run_load_cmd(profile=args.profile, sut=args.sut, door=args.door, seed=args.seed,
                        duration=args.duration, results=args.results, keep_sut_data=args.keep_sut_data)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("load", help="run a load profile open loop against a SUT, judge its latency budget",
                       description="Start the SUT, send the profile's schedule open loop (latency from the "
                                   "intended send time), write report.json, report.html, one .hgrm per "
                                   "stage, history.jsonl and hardware.json to RESULTS/<run-id>/ "
                                   "(docs/load.md). Exit code: 0 budget met, 1 exceeded, 2 unknown "
                                   "(or the SUT did not start), 64 usage or profile error.")
    p.add_argument("--profile", default=DEFAULT_PROFILE,
                   help="steady (default), micro-burst, ramp, cancel-storm, many-symbols, or a YAML path")
    p.add_argument("--sut", default="reference", help="'reference' (default) or a SUT descriptor YAML")
    p.add_argument("--door", choices=("ouch", "http"), help="front door (default: the profile's, else ouch)")
    p.add_argument("--seed", type=int, default=None, help="seed (default: random, printed)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="run only the profile's first S seconds (a ramp keeps its slope)")
    p.add_argument("--results", default="results", help="results directory (default: ./results)")
    p.add_argument("--keep-sut-data", action="store_true",
                   help="keep the reference SUT's WAL in <run>/sut (removed by default: 64 MiB a run)")
    p.set_defaults(func=_run)
