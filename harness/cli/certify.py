"""``crucible certify``: run the conformance suites against a SUT and write ``results/<run-id>/``.

It runs pytest in this process on the suites directory with
``harness.cli.certify_plugin`` (which does the recording and writes the report at
session end), ``--junitxml=<run>/junit.xml`` and no cache. pytest's own
terminal output and stderr go to ``<run>/pytest.log`` (tracebacks, captured
output, usage errors); the terminal shows a rich progress bar with the
current suite and the fault in progress, one line per finished test and per
fault, and the verdict table.

Run id: UTC start time and seed, ``20261125T101500Z-s42``; ``results/latest``
is a symlink to the newest run, replaced atomically.

Exit code: the report's (0 every requirement passes, n/a allowed; 1 any
fails; 2 none fails but some are unknown, or the run did not complete), or
64 (``os.EX_USAGE``) when no run may start: no such profile, SUT descriptor
or suites directory, or a profile with a key or a fault name it does not
know (``harness.profiles``). That error is one line naming the file, the key
and the reason, printed before pytest starts; no run directory is made.

The suites directory is ``--suites DIR`` (for kit development: a suite of
your own), else ``$CRUCIBLE_SUITES``, else ``./suites`` when it has a
``conftest.py``, else the kit's own (``harness.kit``: the wheel's copy, or
the checkout's ``suites/``).

Only the standard library at import time: ``register`` runs for every
``crucible`` command. The shared defaults live in ``certify_run``, which
this module and the plugin import (downward only).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.kit import kit_dir

STATUS_STYLE = {"pass": "bold green", "fail": "bold red", "unknown": "bold dark_orange", "n/a": "dim"}


def find_suites_dir(explicit: str | Path | None = None) -> Path:
    if explicit:
        path = Path(explicit)
        if not path.is_dir():
            raise FileNotFoundError(f"suites directory {explicit} does not exist")
        return path.resolve()
    env = os.environ.get("CRUCIBLE_SUITES")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd() / "suites", kit_dir("suites")]
    for path in candidates:
        if (path / "conftest.py").is_file():
            return path.resolve()
    raise FileNotFoundError("no suites directory (with a conftest.py) in "
                            + ", ".join(str(p) for p in candidates) + "; pass --suites DIR")


class ProgressObserver:
    """A pytest plugin object that drives a rich progress bar from the run's hooks."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, transient=True)
        self.task = self.progress.add_task("collecting", total=None)
        self.suite = ""
        self.faults: list[str] = []  #: in progress
        self.seen_faults: list[str] = []  #: every fault started, in order

    def _describe(self) -> None:
        fault = ", ".join(self.faults) if self.faults else "none"
        self.progress.update(self.task, description=f"[bold]{self.suite or '...'}[/] fault: {fault}")

    def pytest_collection_finish(self, session: Any) -> None:
        self.progress.update(self.task, total=len(session.items))

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.suite = Path(nodeid.split("::")[0]).stem.removeprefix("test_")
        self._describe()

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        self.progress.advance(self.task)

    def pytest_crucible_fault(self, name: str, active: bool) -> None:
        from rich.markup import escape

        if active:
            self.faults.append(name)
            self.seen_faults.append(name)
        elif name in self.faults:
            self.faults.remove(name)
        self.progress.console.print(f"[dim]  fault {'started' if active else 'healed'}: {escape(name)}[/]",
                                    highlight=False)
        self._describe()

    def pytest_crucible_outcome(self, outcome: Any) -> None:
        from rich.markup import escape

        style = STATUS_STYLE.get(outcome.status, "")
        self.progress.console.print(
            f"[{style}]{outcome.status.upper():8}[/] {escape(outcome.nodeid)} "
            f"[dim]({outcome.duration_s:.1f}s)[/] {escape(outcome.summary)}", highlight=False)


def _default_console() -> Any:
    from rich.console import Console

    # A duplicate of stderr's fd: pytest's fd-level capture redirects fds 1 and 2 while a
    # test runs, and would swallow the progress bar.
    stream = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
    return Console(file=stream)


def _summary(console: Any, report: dict[str, Any], run_dir: Path, latest: Path) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"Crucible certification {report['run_id']}", show_lines=False)
    for col in ("status", "requirement", "suite", "summary"):
        table.add_column(col, overflow="fold")
    for row in report["requirements"]:
        table.add_row(f"[{STATUS_STYLE.get(row['status'], '')}]{row['status'].upper()}[/]",
                      escape(row["id"]), escape(row["suite"]), escape(row["summary"]))
    console.print(table)
    style = STATUS_STYLE.get(report["verdict"], "")
    console.print(f"[{style}]{report['verdict'].upper()}[/] {escape(report['verdict_summary'])}", highlight=False)
    console.print(f"sut {escape(str(report['sut'].get('name')))} · profile {escape(str(report['profile'].get('name')))}"
                  f" · seed {report['seed']} · durability {report['durability_policy']}", highlight=False)
    console.print(f"report: {run_dir / 'report.html'} (also {latest}) · exit code {report['exit_code']}",
                  highlight=False)


@contextlib.contextmanager
def _in_process_hygiene(suites_dir: Path):
    """Forget the suite modules and sys.path entries a run added, so another run can import afresh."""
    before_modules, before_path = set(sys.modules), list(sys.path)
    try:
        yield
    finally:
        root = str(suites_dir) + os.sep
        for name in set(sys.modules) - before_modules:
            file = getattr(sys.modules[name], "__file__", None) or ""
            if file.startswith(root):
                del sys.modules[name]
        sys.path[:] = before_path


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM ends the run as Ctrl-C does: pytest tears the fixtures down, so every SUT a suite
    started is stopped, not left running with the ports it holds (``kill PID`` of a run)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_sut(sut: str) -> None:
    """A ``--sut`` that names nothing is a usage error, not an UNKNOWN run."""
    from harness.profiles import ProfileError

    if sut != "reference" and not Path(sut).is_file():
        raise ProfileError(sut, "--sut", "no such SUT descriptor; give 'reference' or a descriptor YAML path")


def run_certify(*, sut: str | None = None, profile: str | None = None, seed: int | None = None,
                results: str | Path = "results", keyword: str | None = None,
                suites: str | Path | None = None, console: Any = None,
                observer: ProgressObserver | None = None, extra_pytest_args: Sequence[str] = ()) -> int:
    """Run a certification; return its exit code (see the module docstring)."""
    import pytest

    from harness.cli import certify_plugin
    from harness.cli.certify_run import DEFAULT_PROFILE, DEFAULT_SUT, SEED_RANGE
    from harness.profiles import ProfileError, load_profile
    from harness.report import load, make_run_dir, new_run_id, point_latest, write_run

    sut, profile = sut or DEFAULT_SUT, profile or DEFAULT_PROFILE
    if console is None and observer is not None:
        console = observer.console
    try:
        check_sut(sut)
        profile_data, profile_path = load_profile(profile)
        suites_dir = find_suites_dir(suites)
    except (ProfileError, FileNotFoundError) as exc:  # one line, never wrapped
        print(f"crucible certify: {exc}", file=console.file if console is not None else sys.stderr)
        return os.EX_USAGE
    console = console or _default_console()
    seed = seed if seed is not None else random.SystemRandom().randrange(SEED_RANGE)
    results = Path(results)
    run_dir = make_run_dir(results, new_run_id(seed))
    console.print(f"crucible certify: sut {sut} · profile {profile_data['name']} · seed {seed} "
                  f"(reproduce with --seed {seed}) · suites {suites_dir} · run {run_dir}", highlight=False)
    args = [str(suites_dir), f"--rootdir={suites_dir}", "-p", "no:cacheprovider",
            f"--junitxml={run_dir / 'junit.xml'}", f"--sut={sut}", f"--seed={seed}",
            f"--profile={profile_path}", f"--results-dir={results}", f"--run-id={run_dir.name}", "-rA"]
    if _has_hypothesis():
        args.append(f"--hypothesis-seed={seed}")
    if keyword:
        args += ["-k", keyword]
    args += list(extra_pytest_args)
    observer = observer if observer is not None else ProgressObserver(console)
    with (open(run_dir / "pytest.log", "w") as log, _in_process_hygiene(suites_dir), _sigterm_as_interrupt(),
          observer.progress, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log)):
        code = int(pytest.main(args, plugins=[certify_plugin, observer]))
    if not (run_dir / "report.json").exists():  # pytest stopped before the session ended
        console.print(f"[bold red]pytest exited with code {code} before the run finished; see "
                      f"{run_dir / 'pytest.log'}[/]", highlight=False)
        write_run(run_dir, run_id=run_dir.name, started=_started(run_dir), seed=seed,
                  profile={"name": profile_data["name"], "path": str(profile_path), "settings": profile_data},
                  sut={"name": sut, "kind": "unknown", "descriptor": None},
                  durability_policy=profile_data.get("durability"), outcomes=[],
                  extra_artefacts={"pytest_log": "pytest.log"}, pytest_exit_code=code, pytest_args=args)
        with contextlib.suppress(OSError):  # a real directory named latest: keep the run anyway
            point_latest(results, run_dir)
    report = load(run_dir / "report.json")
    _summary(console, report, run_dir, results / "latest")
    return int(report["exit_code"])


def _started(run_dir: Path) -> str:
    import datetime as dt

    stamp = dt.datetime.fromtimestamp(run_dir.stat().st_mtime, dt.UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _has_hypothesis() -> bool:
    import importlib.util

    return importlib.util.find_spec("hypothesis") is not None


def _run(args: argparse.Namespace) -> int:
    return run_certify(sut=args.sut, profile=args.profile, seed=args.seed, results=args.results,
                       keyword=args.keyword, suites=args.suites)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("certify", help="certify a SUT: run the conformance suites, write results/<run-id>/",
                       description="Run the conformance suites against a SUT and write report.json, "
                                   "report.html, history.jsonl, junit.xml and hardware.json to "
                                   "RESULTS/<run-id>/ (docs/report.md). Exit code: 0 pass, 1 fail, "
                                   "2 unknown, 64 usage or profile error (nothing ran).")
    p.add_argument("--sut", help="'reference' (default) or a SUT descriptor YAML")
    p.add_argument("--profile", help="certify-quick (default), certify-full, or a profile YAML path")
    p.add_argument("--seed", type=int, default=None, help="seed (default: random, printed)")
    p.add_argument("--results", default="results", help="results directory (default: ./results)")
    p.add_argument("-k", dest="keyword", metavar="EXPR", help="only tests matching this pytest -k expression")
    p.add_argument("--suites", metavar="DIR",
                   help="suites directory (for kit development; default: the kit's suites/)")
    p.set_defaults(func=_run)
